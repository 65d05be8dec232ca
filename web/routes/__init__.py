"""One router per resource: JSON under ``/api/`` (``api_*``), audio and report files
(``files``), sign-in (``auth``), the pages (``pages_*``), saved ``scenarios`` and provider
``webhooks``."""

from fastapi import APIRouter

from voicereplay.web.routes import (
    api_calls,
    api_jobs,
    api_replays,
    auth,
    files,
    pages_calls,
    pages_replays,
    scenarios,
    waveforms,
    webhooks,
)

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [
    api_calls.router,
    api_replays.router,
    api_jobs.router,
    files.router,
    auth.router,
    pages_calls.router,
    pages_replays.router,
    scenarios.router,
    waveforms.router,
    webhooks.router,
]
