"""The jobs table: idempotent enqueue, claims by conditional update, exactly-once completion."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from voicereplay.config import Settings
from voicereplay.errors import NotStoredError
from voicereplay.store import Store
from voicereplay.store.tables import utcnow

REQUEST = {"call": {"call_id": "c1"}, "model": "recorded"}


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """The store on SQLite and on a real PostgreSQL (``store_url`` is parametrized)."""
    settings = replace(Settings.for_home(tmp_path / "home"), database_url=store_url)
    with Store.from_settings(settings) as store:
        yield store


def test_enqueueing_a_key_twice_returns_the_stored_job(store: Store) -> None:
    job, created = store.jobs.enqueue("replay", REQUEST, "call:c1|snap:s|req:h")
    again, created_again = store.jobs.enqueue("replay", {"other": 1}, "call:c1|snap:s|req:h")
    assert created and not created_again
    assert again.id == job.id and again.request == REQUEST
    assert (job.status, job.attempt, job.max_attempts) == ("PENDING", 0, 3)
    assert store.jobs.get(job.id[:8]) == job
    assert [j.id for j in store.jobs.list(status="PENDING")] == [job.id]
    with pytest.raises(NotStoredError):
        store.jobs.get("nosuchjob")


def test_concurrent_enqueues_of_one_key_make_one_job(store: Store) -> None:
    barrier = threading.Barrier(4)
    ids: list[str] = []

    def enqueue() -> None:
        barrier.wait(timeout=30)
        ids.append(store.jobs.enqueue("replay", REQUEST, "same-key")[0].id)

    threads = [threading.Thread(target=enqueue) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 4 and len(set(ids)) == 1
    assert len(store.jobs.list()) == 1


def test_only_one_of_many_workers_claims_a_job(store: Store) -> None:
    job, _ = store.jobs.enqueue("replay", REQUEST, "k")
    barrier = threading.Barrier(6)
    won: list[str] = []

    def claim(worker: str) -> None:
        barrier.wait(timeout=30)
        if store.jobs.claim(job.id, worker, lease=60) is not None:
            won.append(worker)

    threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    running = store.jobs.get(job.id)
    assert (running.status, running.attempt, running.worker_id) == ("RUNNING", 1, won[0])
    assert running.started_at is not None and running.lease_expires_at is not None


def test_a_dead_workers_job_completes_exactly_once(store: Store) -> None:
    job, _ = store.jobs.enqueue("replay", REQUEST, "k")
    start = utcnow()
    first = store.jobs.claim(job.id, "worker-a", lease=30, now=start)
    assert first is not None
    # while the lease holds, nobody else may take it, and a heartbeat extends it
    assert store.jobs.claim(job.id, "worker-b", lease=30, now=start + timedelta(seconds=10)) \
        is None
    assert store.jobs.heartbeat(first, lease=30, now=start + timedelta(seconds=20))
    assert store.jobs.claim(job.id, "worker-b", lease=30, now=start + timedelta(seconds=40)) \
        is None
    # worker-a goes silent (SIGKILL): its lease runs out and worker-b takes over
    later = start + timedelta(seconds=60)
    second = store.jobs.claim(job.id, "worker-b", lease=30, now=later)
    assert second is not None and second.attempt == 2 and second.worker_id == "worker-b"
    # worker-a comes back: its heartbeat and its result are refused
    assert not store.jobs.heartbeat(first, lease=30, now=later)
    assert store.jobs.complete(first, ["replay-from-a"]) is None
    done = store.jobs.complete(second, ["replay-from-b"])
    assert done is not None and done.status == "COMPLETED"
    assert done.replay_ids == ["replay-from-b"] and done.finished_at is not None
    # and a completed job is never claimed or completed again
    assert store.jobs.claim(job.id, "worker-c", lease=30, now=later + timedelta(hours=1)) \
        is None
    assert store.jobs.complete(second, ["again"]) is None
    assert store.jobs.get(job.id).replay_ids == ["replay-from-b"]


def test_the_reaper_returns_expired_jobs_and_fails_exhausted_ones(store: Store) -> None:
    now = utcnow()
    retry, _ = store.jobs.enqueue("replay", REQUEST, "retry", max_attempts=2)
    last, _ = store.jobs.enqueue("replay", REQUEST, "last", max_attempts=1)
    fresh, _ = store.jobs.enqueue("replay", REQUEST, "fresh")
    assert store.jobs.claim(retry.id, "w", lease=5, now=now)
    assert store.jobs.claim(last.id, "w", lease=5, now=now)
    assert store.jobs.claim(fresh.id, "w", lease=600, now=now)
    assert store.jobs.reap(now=now + timedelta(seconds=30)) == 2
    assert store.jobs.get(retry.id).status == "PENDING"
    exhausted = store.jobs.get(last.id)
    assert exhausted.status == "FAILED" and exhausted.error_type == "LeaseExpired"
    assert store.jobs.get(fresh.id).status == "RUNNING"


def test_failures_retry_until_attempts_run_out(store: Store) -> None:
    job, _ = store.jobs.enqueue("replay", REQUEST, "k", max_attempts=2)
    one = store.jobs.claim(job.id, "w", lease=60)
    assert one is not None
    retried = store.jobs.fail(one, "ProviderUnavailable", "Vapi answered 503", retry=True)
    assert retried is not None and retried.status == "PENDING"
    two = store.jobs.claim(job.id, "w", lease=60)
    assert two is not None and two.attempt == 2
    failed = store.jobs.fail(two, "ProviderUnavailable", "Vapi answered 503", retry=True)
    assert failed is not None and failed.status == "FAILED"
    assert (failed.error_type, failed.error) == ("ProviderUnavailable", "Vapi answered 503")
    assert store.jobs.claim(job.id, "w", lease=60) is None  # no attempt left


def test_an_error_message_with_a_nul_character_is_recorded(store: Store) -> None:
    # provider text may hold NUL, which PostgreSQL text refuses: the failure must still be saved
    job, _ = store.jobs.enqueue("replay", REQUEST, "k")
    running = store.jobs.claim(job.id, "w", lease=60)
    assert running is not None
    failed = store.jobs.fail(running, "ProviderError", "Vapi said \x00no", retry=False)
    assert failed is not None and (failed.status, failed.error) == ("FAILED", "Vapi said no")


def test_a_cancelled_job_refuses_its_running_attempts_result(store: Store) -> None:
    job, _ = store.jobs.enqueue("replay", REQUEST, "k")
    running = store.jobs.claim(job.id, "w", lease=60)
    assert running is not None
    cancelled = store.jobs.cancel(job.id)
    assert cancelled is not None and cancelled.status == "CANCELLED"
    assert store.jobs.complete(running, ["r"]) is None
    assert store.jobs.cancel(job.id) is None  # finished jobs stay as they are
    assert store.jobs.get(job.id).status == "CANCELLED"


def test_workers_with_their_own_connections_race_for_one_job(store_url: str,
                                                             tmp_path: Path) -> None:
    # One Store per thread, as separate worker processes (or machines) have: nothing in-process
    # serializes their writes, only the database (SQLite's write lock, PostgreSQL's row locks).
    settings = replace(Settings.for_home(tmp_path / "home"), database_url=store_url)
    stores = [Store.from_settings(settings) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    enqueued: list[str] = []
    claimed: list[str] = []
    errors: list[BaseException] = []

    def worker(n: int, store: Store) -> None:
        try:
            barrier.wait(timeout=30)
            job, _ = store.jobs.enqueue("replay", REQUEST, "one-key")
            enqueued.append(job.id)
            barrier.wait(timeout=30)
            if store.jobs.claim(job.id, f"w{n}", lease=60) is not None:
                claimed.append(f"w{n}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n, s)) for n, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(enqueued) == 4 and len(set(enqueued)) == 1 and len(claimed) == 1
        job = stores[0].jobs.get(enqueued[0])
        assert (job.status, job.attempt, job.worker_id) == ("RUNNING", 1, claimed[0])
        assert len(stores[1].jobs.list()) == 1
    finally:
        for store in stores:
            store.close()
