"""One router per resource: JSON under ``/api/`` (``api_*``), audio and report files
(``files``), sign-in (``auth``), the pages (``pages_*``; a batch's exports too), saved
``scenarios`` and provider ``webhooks``."""

from fastapi import APIRouter

from voicereplay.web.routes import (
    api_batches,
    api_calls,
    api_jobs,
    api_replays,
    auth,
    files,
    pages_batches,
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
    api_batches.router,
    files.router,
    auth.router,
    pages_calls.router,
    pages_batches.router,
    pages_replays.router,
    scenarios.router,
    waveforms.router,
    webhooks.router,
]
