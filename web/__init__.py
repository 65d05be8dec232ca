"""The web face of voicereplay (FastAPI pages, JSON API, webhooks) — built in a later issue."""
