"""PII redaction for saved scenarios (``voicereplay save --redact``). Work in progress."""
