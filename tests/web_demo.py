"""A store holding the demo call and one replay of it made with the fake backends (fast, no
models): what the web page and browser tests look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voicereplay import pipeline
from voicereplay.config import Settings
from voicereplay.pipeline import CallRef, ReplayRequest
from voicereplay.store import Store

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"
FAKES: dict[str, Any] = {"stt": "fake-stt", "tts": "fake-tts", "caller_tts": "fake-tts",
                         "llm": "fake-llm"}


def demo_request(**fields: Any) -> ReplayRequest:
    """Replay the demo call with the fake backends (the fake LLM calls check_status on the
    order question where the call called issue_refund: agent turn 4)."""
    return ReplayRequest(call=CallRef(call_id=DEMO_CALL, directory=pipeline.demo_dir()),
                         **{**FAKES, **fields})


def replayed_demo(home: Path, **fields: Any) -> tuple[Settings, Store, str]:
    """Settings and store at ``home`` with the demo call and one replay; the replay's id."""
    settings = Settings.for_home(home)
    store = Store.from_settings(settings)
    results = pipeline.run_call(store, demo_request(**fields), settings=settings)
    return settings, store, results[0].replay.id
