"""A recorded replay of every bundled call, with no overrides, reproduces the call.

Each bundled call (the demo, the Vapi and the Retell fixtures) is imported into a fresh store
with the files provider, replayed with the ``recorded`` LLM (the baseline's own replies) through
the real embedded STT and TTS, and compared with its baseline: the fidelity is 1.00 and nothing
diverges. With ``--runs 3`` every run replays the baseline, not only the first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from voicereplay.config import Settings
from voicereplay.models import Call
from voicereplay.pipeline import import_calls, open_provider
from voicereplay.pipeline.comparing import compare_replay
from voicereplay.pipeline.replaying import ReplayOptions, replay_call
from voicereplay.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SIDECARS = (".agent.json", ".assistant.json", ".llm.json", ".knowledge.json")
BUNDLED = sorted(p for folder in ("demo", "vapi", "retell", "knowledge")
                 for p in (FIXTURES / folder).glob("*.json")
                 if not p.name.endswith(SIDECARS))


def _import(path: Path) -> tuple[Store, Call]:
    store = Store.from_settings(Settings.from_env())
    with open_provider("files", directory=path.parent) as source:
        outcomes = import_calls(store, source)
    [outcome] = [o for o in outcomes if Path(o.source).name == path.name]
    assert outcome.ok, outcome.error
    return store, store.get_call(outcome.call_id or "", outcome.provider)


def test_every_bundled_call_is_covered() -> None:
    assert {p.parent.name for p in BUNDLED} == {"demo", "vapi", "retell", "knowledge"}
    assert len(BUNDLED) >= 8


@pytest.mark.models
@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_a_recorded_replay_of_a_bundled_call_scores_fidelity_one(path: Path) -> None:
    store, call = _import(path)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    assert snapshot is not None
    [replay] = replay_call(store, call, snapshot,
                           options=ReplayOptions(model="recorded", seed=7))
    comparison = compare_replay(store, call, replay, write=False)
    assert comparison.divergence is None, comparison.divergence
    assert comparison.fidelity.score == 1.0, comparison.fidelity


@pytest.mark.models
def test_every_run_of_a_recorded_batch_replays_the_baseline() -> None:
    store, call = _import(FIXTURES / "demo" / "demo-refund.json")
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    assert snapshot is not None
    replays = replay_call(store, call, snapshot,
                          options=ReplayOptions(model="recorded", seed=7, runs=3))
    baseline = [t.text for t in call.turns if t.role == "agent"]
    assert len(replays) == 3
    for replay in replays:
        assert [t.text for t in replay.turns if t.role == "agent"] == baseline
        comparison = compare_replay(store, call, replay, batch=replays, write=False)
        assert comparison.divergence is None
        assert comparison.fidelity.score == 1.0
        assert comparison.fidelity.flakiness
        assert all(f.disagreement == 0 and f.tool_disagreement == 0
                   for f in comparison.fidelity.flakiness)
