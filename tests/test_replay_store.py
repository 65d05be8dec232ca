"""Stored replays: saved with their snapshot, read back by id or prefix, listed per call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voicereplay.errors import NotStoredError
from voicereplay.models import Call, Replay, ReplayTurn, StageTimings
from voicereplay.snapshot import AgentSnapshot, ModelConfig, Overrides
from voicereplay.store import Store


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """The store on SQLite and on a real PostgreSQL (``store_url`` is parametrized)."""
    with Store(store_url, tmp_path / "artifacts") as store:
        store.save_call(Call(provider="vapi", call_id="call-1"))
        store.save_call(Call(provider="retell", call_id="call-2"))
        yield store


def _replay(replay_id: str, snapshot: AgentSnapshot, *, call_id: str = "call-1",
            provider: str = "vapi", minutes: int = 0, run: int = 0) -> Replay:
    return Replay(
        id=replay_id, call_provider=provider, call_id=call_id,  # type: ignore[arg-type]
        snapshot_id=snapshot.id, batch_id="batch-a", run_index=run,
        created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        duration=12.5, wall_seconds=3.0,
        turns=[ReplayTurn(role="agent", text="Hello", start=0.5, end=1.5, origin="llm",
                          timings=StageTimings(llm_ttft=0.2, response=0.9))],
    )


def test_save_get_and_list_replays(store: Store) -> None:
    base = AgentSnapshot(system_prompt="p", model=ModelConfig(name="m"))
    fixed = base.apply(Overrides(system_prompt="fixed"))
    store.replays.save(_replay("aaaaaaa1", fixed, minutes=1, run=0), fixed)
    store.replays.save(_replay("aaaaaaa2", fixed, minutes=1, run=1), fixed)
    store.replays.save(_replay("bbbbbbb1", base, call_id="call-2", provider="retell"), base)

    got = store.replays.get("bbbbbb")  # a prefix
    assert got.call_id == "call-2" and got.turns[0].timings is not None
    assert got.turns[0].timings.response == 0.9
    assert store.get_snapshot(fixed.id).system_prompt == "fixed"  # saved with the replay

    history = store.replays.list(call_id="call-1")
    assert [r.id for r in history] == ["aaaaaaa1", "aaaaaaa2"]
    assert {r.call_provider for r in store.replays.list()} == {"vapi", "retell"}
    assert [r.id for r in store.replays.list(provider="retell")] == ["bbbbbbb1"]

    with pytest.raises(NotStoredError, match="ambiguous"):
        store.replays.get("aaaaaaa")
    with pytest.raises(NotStoredError, match="replays list"):
        store.replays.get("zzzzzzzz")


def test_a_replay_of_an_unstored_call_stores_nothing(store: Store) -> None:
    snap = AgentSnapshot(system_prompt="x")
    with pytest.raises(NotStoredError, match="calls import"):
        store.replays.save(_replay("cccccccc", snap, call_id="nope"), snap)
    assert store.replays.list() == []
    with pytest.raises(NotStoredError):
        store.get_snapshot(snap.id)
