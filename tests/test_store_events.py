"""The events table (store.events) on SQLite and PostgreSQL: stored once per
(provider, call id, event type), redeliveries counted, processing marked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from voicereplay.config import Settings
from voicereplay.errors import NotStoredError
from voicereplay.store import Store
from voicereplay.store.tables import utcnow

BODY = '{"message":{"type":"end-of-call-report","call":{"id":"c1"},"url":"https://x/?sig=1"}}'


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """The store on SQLite and on a real PostgreSQL (``store_url`` is parametrized)."""
    settings = replace(Settings.for_home(tmp_path / "home"), database_url=store_url)
    with Store.from_settings(settings) as store:
        yield store


def test_an_event_is_stored_once_and_redeliveries_are_counted(store: Store) -> None:
    first_at = utcnow()
    event, new = store.events.record("vapi", "end-of-call-report", "c1", BODY,
                                     {"user-agent": "vapi"}, now=first_at)
    assert new and event.status == "PENDING" and event.deliveries == 1
    assert event.body == BODY and event.headers == {"user-agent": "vapi"}
    # a redelivery: a new presigned URL in the body, same (provider, call, type)
    again, new = store.events.record("vapi", "end-of-call-report", "c1",
                                     BODY.replace("sig=1", "sig=2"),
                                     now=first_at + timedelta(seconds=30))
    assert not new and again.id == event.id and again.deliveries == 2
    assert again.body == BODY  # the first body is kept
    assert again.received_at == event.received_at
    assert again.last_received_at == first_at + timedelta(seconds=30)
    # another type, call or provider is another event
    assert store.events.record("vapi", "status-update", "c1", BODY)[1]
    assert store.events.record("vapi", "end-of-call-report", "c2", BODY)[1]
    assert store.events.record("retell", "end-of-call-report", "c1", BODY)[1]
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from events")).scalar() == 4


def test_concurrent_deliveries_of_one_event_store_one_row(store: Store) -> None:
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def deliver() -> None:
        barrier.wait()
        results.append(store.events.record("retell", "call_ended", "r1", "{}")[1])

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    found = store.events.find("retell", "r1", "call_ended")
    assert found is not None and found.deliveries == 4


def test_events_are_listed_oldest_first_and_marked(store: Store) -> None:
    start = utcnow()
    a, _ = store.events.record("vapi", "status-update", "c1", "{}", now=start)
    b, _ = store.events.record("retell", "call_analyzed", "r1", "{}",
                               now=start + timedelta(seconds=1))
    assert [e.id for e in store.events.list(status="PENDING")] == [a.id, b.id]
    assert [e.id for e in store.events.list(provider="retell")] == [b.id]
    done = store.events.mark(a.id, "FAILED", error="recording 404", job_id="j1")
    assert (done.status, done.error, done.job_id) == ("FAILED", "recording 404", "j1")
    assert done.processed_at is not None
    assert [e.id for e in store.events.list(status="PENDING")] == [b.id]
    assert store.events.get(a.id) == done
    with pytest.raises(NotStoredError):
        store.events.mark("nope", "PROCESSED")
    with pytest.raises(NotStoredError):
        store.events.get("nope")


def test_a_nul_character_in_a_body_does_not_break_postgres(store: Store) -> None:
    event, _ = store.events.record("vapi", "status-update", "c9", '{"a":"x\x00y"}')
    assert store.events.get(event.id).body == '{"a":"xy"}'
