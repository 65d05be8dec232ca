"""Searching and filtering stored calls (the calls page and ``GET /api/calls``), on SQLite and on
a real PostgreSQL (``store_url``): ``q`` over id, customer number and transcript, ended reason,
flagged analysis, has replays — and that the migration fills the search text of older calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.test_store import T0, make_call, make_snapshot
from voicereplay.models import Analysis, Replay, Turn
from voicereplay.store import Store

pytestmark = pytest.mark.servers


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    with Store(store_url, tmp_path / "artifacts") as s:
        yield s


def ids(calls: list[Any]) -> list[str]:
    return sorted(c.call_id for c in calls)


def _fill(store: Store) -> None:
    store.save_call(make_call(store, "call-refund-7f3a", customer_number="+15550001111",
                              ended_reason="customer-ended-call",
                              analysis=Analysis(success=False),
                              turns=[Turn(role="agent", text="Hello, how can I help?"),
                                     Turn(role="user", text="I want a REFUND for order 4417.")]),
                    make_snapshot())
    store.save_call(make_call(store, "call-booking-2b", customer_number="+4930123456",
                              ended_reason="assistant-ended-call",
                              analysis=Analysis(success=True),
                              turns=[Turn(role="agent", text="Grüße! Wann passt es Ihnen?"),
                                     Turn(role="user", text="Dienstag, 100% sicher_ja")]))
    store.save_call(make_call(store, "call-quiet-9", customer_number=None,
                              ended_reason="silence-timed-out", analysis=Analysis(),
                              turns=[Turn(role="tool_result", text="refund tool output")]))


def test_q_searches_id_number_and_spoken_text_case_insensitively(store: Store) -> None:
    _fill(store)
    assert ids(store.list_calls(q="refund")) == ["call-refund-7f3a"]  # id and user text
    assert ids(store.list_calls(q="7F3A")) == ["call-refund-7f3a"]  # part of the id, any case
    assert ids(store.list_calls(q="call-b")) == ["call-booking-2b"]  # an id prefix
    assert ids(store.list_calls(q="order 4417")) == ["call-refund-7f3a"]
    assert ids(store.list_calls(q="+4930")) == ["call-booking-2b"]  # the customer's number
    assert ids(store.list_calls(q="GRÜ")) == ["call-booking-2b"]  # Unicode case folds too
    # LIKE wildcards are matched literally, not as patterns.
    assert ids(store.list_calls(q="100%")) == ["call-booking-2b"]
    assert ids(store.list_calls(q="%")) == ["call-booking-2b"]
    assert ids(store.list_calls(q="sicher_ja")) == ["call-booking-2b"]
    assert ids(store.list_calls(q="r_f")) == []
    # Tool results are not the spoken transcript.
    assert ids(store.list_calls(q="tool output")) == []
    assert ids(store.list_calls(q="   ")) == ids(store.list_calls())  # blank: no filter
    assert store.count_calls(q="call") == 3 and store.count_calls(q="refund") == 1
    # A re-import with other words is found by its new words only.
    changed = store.calls.get("call-booking-2b").model_copy(update={
        "turns": [Turn(role="user", text="Donnerstag bitte")]})
    assert store.save_call(changed) == "updated"
    assert ids(store.list_calls(q="donnerstag")) == ["call-booking-2b"]
    assert ids(store.list_calls(q="dienstag")) == []


def test_ended_reason_flagged_and_has_replays(store: Store) -> None:
    _fill(store)
    assert ids(store.list_calls(ended_reason="silence-timed-out")) == ["call-quiet-9"]
    assert ids(store.list_calls(flagged=True)) == ["call-refund-7f3a"]
    assert ids(store.list_calls(flagged=False)) == ["call-booking-2b", "call-quiet-9"]
    assert ids(store.list_calls(success=False)) == ["call-refund-7f3a"]
    assert ids(store.list_calls(has_replays=True)) == []
    snapshot = make_snapshot()
    store.replays.save(Replay(id="r" * 32, call_provider="vapi", call_id="call-refund-7f3a",
                              snapshot_id=snapshot.id, created_at=T0), snapshot)
    assert ids(store.list_calls(has_replays=True)) == ["call-refund-7f3a"]
    assert ids(store.list_calls(has_replays=False)) == ["call-booking-2b", "call-quiet-9"]
    # Filters combine; count agrees with list.
    assert ids(store.list_calls(q="call", has_replays=False, flagged=False,
                                ended_reason="assistant-ended-call")) == ["call-booking-2b"]
    assert store.count_calls(has_replays=False, q="call") == 2
    assert store.count_calls(flagged=True, has_replays=True, provider="vapi") == 1
    assert store.count_calls(flagged=True, provider="retell") == 0


def test_the_migration_fills_the_search_text_of_stored_calls(store: Store) -> None:
    _fill(store)
    with store.engine.begin() as conn:  # as a store from before revision 0006 left them
        conn.execute(sa.text("update alembic_version set version_num = '0005_job_progress'"))
        conn.execute(sa.text("alter table calls add column data json"))
        conn.execute(sa.text("update calls set data = (select data from call_data "
                             "where call_data.call_pk = calls.id)"))
        conn.execute(sa.text("drop table call_data"))
        conn.execute(sa.text("drop table call_search"))
        conn.execute(sa.text("drop table events"))  # 0007 came later
        conn.execute(sa.text('alter table jobs drop column "trigger"'))  # and 0008
        conn.execute(sa.text("alter table jobs drop column result"))
        conn.execute(sa.text("drop index ix_jobs_batch_id"))  # and 0009
        conn.execute(sa.text("alter table jobs drop column batch_id"))
        conn.execute(sa.text("drop table batches"))
    url, root = store.url, store.artifacts.root
    store.close()
    with Store(url, root) as again:
        assert again.get_call("call-refund-7f3a").turns[1].text.startswith("I want a REFUND")
        assert again.count_calls() == 3
        assert ids(again.list_calls(q="order 4417")) == ["call-refund-7f3a"]
        assert ids(again.list_calls(q="+1555")) == ["call-refund-7f3a"]


def test_a_recording_file_is_found_without_reading_the_call(store: Store) -> None:
    call = make_call(store, "call-audio")
    store.save_call(call)
    stereo = store.calls.recording_file("call-audio", "vapi", "stereo")
    assert stereo == call.recordings[0].path and Path(stereo).is_file()
    assert store.calls.recording_file("call-audio", "vapi", "customer") is None  # not fetched
    assert store.calls.recording_file("call-audio", "retell", "stereo") is None
    assert store.calls.recording_file("nope", "vapi", "stereo") is None
