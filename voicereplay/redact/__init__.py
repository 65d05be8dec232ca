"""PII redaction for saved scenarios (``voicereplay save --redact``), offline and verified.

The public API (what the scenario writer and the CLI call):

* :func:`find_pii` ``(text, *, extra_names=(), extra_patterns=()) -> list[Span]`` — phone
  numbers, e-mails, card/account numbers, street addresses, dates of birth, names… found by
  Presidio on a local spaCy model, in written *and* spoken forms ("four one five …",
  "maria at example dot com"), plus the user's names and regular expressions
  (:mod:`.detect`, :mod:`.spoken`, :mod:`.presidio`);
* :class:`Redactor` — one per scenario: ``learn(*texts_or_json)`` first, then
  ``redact_text(text, where=…)`` and ``redact_value(json, where=…)`` replace every known value
  with the same typed placeholder (``<PHONE_NUMBER_1>``) everywhere; ``report`` is the
  :class:`RedactionReport` (:mod:`.redactor`);
* :func:`redact_audio` ``(samples, rate, words, spans, *, pad=0.3, mode="mute"|"tone")`` mutes
  the timed words behind the spans; :func:`verify_audio` ``(samples, rate, values, stt)``
  transcribes the result again and returns the values still heard; :func:`redact_segment`
  does both for one caller segment with a Redactor, muting the whole segment when anything is
  still heard (:mod:`.audio`);
* :class:`RedactionReport` — where, what type, which detector, which placeholder; never the
  value (``to_json()``, ``render()`` for a terminal) (:mod:`.report`).

Presidio and the spaCy model load once per process, on first use (a few seconds).
"""

from voicereplay.redact.audio import redact_audio, redact_segment, redaction_ranges, verify_audio
from voicereplay.redact.detect import DEFAULT_ENTITIES, Span, UserPattern, find_pii
from voicereplay.redact.redactor import KnownValue, Redactor
from voicereplay.redact.report import AudioRedaction, Leak, Redaction, RedactionReport

__all__ = [
    "DEFAULT_ENTITIES",
    "AudioRedaction",
    "KnownValue",
    "Leak",
    "Redaction",
    "RedactionReport",
    "Redactor",
    "Span",
    "UserPattern",
    "find_pii",
    "redact_audio",
    "redact_segment",
    "redaction_ranges",
    "verify_audio",
]
