"""Six tagged copies of the demo call, for batch tests (CLI, web pages, browser).

Their prompts end with ``[batch: good]``, ``[batch: bad]`` or ``[batch: same]``, which tells
``batch-llm`` (tests/fakes/batch_llm.py) what the candidate does with each: two get fixed, two
get broken, two stay the same.
"""

from __future__ import annotations

from pathlib import Path

from tests.fakes import batch_llm
from tests.web_demo import DEMO_CALL
from voicereplay import pipeline
from voicereplay.config import Settings
from voicereplay.pipeline import CallRef, Secrets
from voicereplay.pipeline.calling import ensure_call
from voicereplay.snapshot import Overrides
from voicereplay.store import Store

__all__ = ["ALL", "KINDS", "batch_home", "keys", "store_batch_calls", "store_tagged_copies"]

batch_llm.register()

KINDS = {"good": ["batch-good-1", "batch-good-2"], "bad": ["batch-bad-1", "batch-bad-2"],
         "same": ["batch-same-1", "batch-same-2"]}
ALL = [c for ids in KINDS.values() for c in ids]


def keys(ids: list[str]) -> set[str]:
    """The aggregate's call keys of ``ids``."""
    return {f"vapi:{c}" for c in ids}


def store_batch_calls(store: Store, settings: Settings) -> None:
    """Import the demo call into ``store`` and store its six tagged copies."""
    call = ensure_call(store, CallRef(call_id=DEMO_CALL, directory=pipeline.demo_dir()),
                       settings=settings, secrets=Secrets(), say=lambda _p: None)
    base = store.snapshot_for_call(call.call_id, call.provider)
    assert base is not None and base.system_prompt
    for kind, ids in KINDS.items():
        tagged = base.apply(Overrides(system_prompt=f"{base.system_prompt}\n[batch: {kind}]"))
        for call_id in ids:
            store.save_call(call.model_copy(update={"call_id": call_id}), tagged)


def batch_home(home: Path) -> Settings:
    """A store at ``home`` with the demo call and its six tagged copies."""
    settings = Settings.for_home(home)
    store_tagged_copies(settings)
    return settings


def store_tagged_copies(settings: Settings) -> None:
    """Import the demo call into the store at ``settings`` and store its six tagged copies."""
    with Store.from_settings(settings) as store:
        store_batch_calls(store, settings)
