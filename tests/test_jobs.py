"""Running replay jobs in-process: claim → replay → complete exactly once, with the fake backends.

The job runner (voicereplay.pipeline.jobs) and the queue (voicereplay.pipeline.queue, Huey on
SQLite) are driven directly here; real worker processes are in test_job_workers.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from huey import SqliteHuey

from tests.fakes.scripted_llm import ScriptedLLM
from voicereplay import pipeline
from voicereplay.config import Settings
from voicereplay.errors import StageError
from voicereplay.pipeline import CallRef, ReplayRequest
from voicereplay.pipeline.history import call_history
from voicereplay.pipeline.jobs import (
    Worker,
    attempt_batch,
    request_key,
    run_job,
    submit_replay,
)
from voicereplay.pipeline.queue import JobQueue, open_huey, queue_backend
from voicereplay.simulate.stages import LLMS
from voicereplay.store import Store
from voicereplay.store.tables import utcnow

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"
FAKES = {"stt": "fake-stt", "tts": "fake-tts", "caller_tts": "fake-tts", "llm": "fake-llm"}


def demo_request(**fields: Any) -> ReplayRequest:
    return ReplayRequest(call=CallRef(call_id=DEMO_CALL, directory=pipeline.demo_dir()),
                         **{**FAKES, "report": {"figures": None}, **fields})


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store.from_settings(settings)


@pytest.fixture
def worker(settings: Settings) -> Worker:
    return Worker(settings, id="w1", lease=30)


def folders(store: Store) -> list[str]:
    root = store.artifacts.root / "replays"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def _always_rate_limited(**_: Any) -> ScriptedLLM:
    llm = ScriptedLLM(default="never", failures=10**6, error=lambda: StageError(
        "llm: 429 Too Many Requests", stage="llm", retryable=True, retry_after=7.0))
    llm.max_retries = 0
    return llm


@pytest.fixture(autouse=True)
def _rate_limited_backend() -> None:
    LLMS.register("always-429", _always_rate_limited)


# -- one attempt --------------------------------------------------------------------------------
def test_a_job_runs_its_request_and_links_the_replays(store: Store, worker: Worker) -> None:
    job, created = submit_replay(store, demo_request(runs=2, report={"figures": "svg"}))
    assert created and job.status == "PENDING" and job.call_id == DEMO_CALL
    seen: list[str] = []
    outcome = run_job(store, job.id, worker, on_progress=lambda p: seen.append(p.stage))
    assert outcome.status == "completed" and outcome.job is not None
    done = outcome.job
    assert done.status == "COMPLETED" and done.attempt == 1 and len(done.replay_ids) == 2
    assert done.call_provider == "vapi" and done.call_id == DEMO_CALL
    assert {"import", "replay", "compare"} <= set(seen)
    for replay_id in done.replay_ids:
        replay = store.replays.get(replay_id)
        assert replay.job_id == job.id and replay.batch_id == f"{job.id[:12]}a1"
    assert folders(store) == [f"{job.id[:12]}a1-0", f"{job.id[:12]}a1-1"]
    assert (store.artifacts.root / "replays" / f"{job.id[:12]}a1-0" / "report.json").exists()
    # a finished job is not run again, however often it is delivered
    assert run_job(store, job.id, worker).status == "skipped"
    assert len(store.replays.list(job_id=job.id)) == 2


def test_the_same_request_is_the_same_job(store: Store) -> None:
    first, created = submit_replay(store, demo_request(seed=1))
    again, created_again = submit_replay(store, demo_request(seed=1))
    other, created_other = submit_replay(store, demo_request(seed=2))
    assert created and not created_again and again.id == first.id
    assert created_other and other.id != first.id
    assert request_key(demo_request(seed=1)) == first.idempotency_key
    assert "sk-" not in str(first.request)


def test_a_superseded_attempt_is_refused_and_leaves_nothing(store: Store,
                                                            worker: Worker) -> None:
    """Worker A's lease lapses mid-replay (a long GC pause, a network partition): the reaper
    hands the job on; A's result is refused and its replays and folders are removed, and the
    job completes once, with B's replay."""
    job, _ = submit_replay(store, demo_request())
    reaped: list[int] = []

    def lapse(progress: pipeline.Progress) -> None:
        if progress.stage == "replay" and not reaped:
            reaped.append(store.jobs.reap(now=utcnow() + timedelta(hours=1)))

    first = run_job(store, job.id, worker, on_progress=lapse)
    assert reaped == [1] and first.status == "superseded"
    assert store.replays.list(job_id=job.id) == [] and folders(store) == []
    second = run_job(store, job.id, Worker(worker.settings, id="w2", lease=30))
    assert second.status == "completed" and second.job is not None
    assert second.job.attempt == 2 and second.job.worker_id == "w2"
    [replay] = store.replays.list(job_id=job.id)
    assert replay.id == second.job.replay_ids[0] and replay.batch_id == f"{job.id[:12]}a2"
    assert folders(store) == [f"{job.id[:12]}a2-0"]


def test_what_a_killed_attempt_left_is_removed_by_the_next(store: Store,
                                                          worker: Worker) -> None:
    job, _ = submit_replay(store, demo_request())
    dead = store.jobs.claim(job.id, "killed-worker", lease=5)
    assert dead is not None
    orphan = store.artifacts.root / "replays" / f"{attempt_batch(dead)}-0"
    orphan.mkdir(parents=True)
    (orphan / "agent.wav").write_bytes(b"RIFF half written")
    assert store.jobs.reap(now=utcnow() + timedelta(seconds=6)) == 1
    outcome = run_job(store, job.id, worker)
    assert outcome.status == "completed" and outcome.job is not None
    assert outcome.job.attempt == 2
    assert folders(store) == [f"{job.id[:12]}a2-0"]


def test_a_stopping_worker_hands_its_job_back(store: Store, worker: Worker) -> None:
    job, _ = submit_replay(store, demo_request())

    def stop(progress: pipeline.Progress) -> None:
        if progress.stage == "replay":
            worker.stopping.set()  # SIGTERM arrived

    outcome = run_job(store, job.id, worker, on_progress=stop)
    assert outcome.status == "released"
    back = store.jobs.get(job.id)
    assert back.status == "PENDING" and back.attempt == 0 and back.worker_id is None
    assert "stopping worker" in (back.progress or "")
    assert folders(store) == [] and store.replays.list(job_id=job.id) == []
    worker.stopping.clear()
    assert run_job(store, job.id, worker).status == "completed"


def test_cancelling_a_running_job_discards_its_result(store: Store, worker: Worker) -> None:
    job, _ = submit_replay(store, demo_request())

    def cancel(progress: pipeline.Progress) -> None:
        if progress.stage == "compare":
            store.jobs.cancel(job.id)

    outcome = run_job(store, job.id, worker, on_progress=cancel)
    assert outcome.status == "superseded"
    assert store.jobs.get(job.id).status == "CANCELLED"
    assert folders(store) == [] and store.replays.list(job_id=job.id) == []


# -- failures -----------------------------------------------------------------------------------
def test_a_permanent_failure_fails_at_once_with_the_reason(store: Store,
                                                          worker: Worker) -> None:
    job, _ = submit_replay(store, demo_request(llm="no-such-backend"))
    outcome = run_job(store, job.id, worker)
    assert outcome.status == "failed" and outcome.job is not None
    assert outcome.job.status == "FAILED" and outcome.job.attempt == 1
    assert outcome.job.error_type == "ConfigError"
    assert "no-such-backend" in (outcome.job.error or "")
    assert folders(store) == []
    [entry] = call_history(store, DEMO_CALL, status="failed")
    assert entry.kind == "job" and "no-such-backend" in (entry.error or "")


def test_a_transient_failure_retries_with_backoff_until_attempts_run_out(
        store: Store, worker: Worker) -> None:
    job, _ = submit_replay(store, demo_request(llm="always-429"), max_attempts=2)
    first = run_job(store, job.id, worker)
    assert first.status == "retry" and first.retry_in == 7.0  # the server's Retry-After
    assert first.job is not None and first.job.status == "PENDING"
    assert "429" in (first.job.error or "") and first.job.error_type == "StageError"
    second = run_job(store, job.id, worker)
    assert second.status == "failed" and second.job is not None
    assert second.job.status == "FAILED" and second.job.attempt == 2
    assert folders(store) == [] and store.replays.list(job_id=job.id) == []


def test_a_stored_request_that_no_longer_validates_fails_cleanly(store: Store,
                                                                worker: Worker) -> None:
    job, _ = store.jobs.enqueue("replay", {"call": {"call_id": "x"}, "runs": 0}, "bad-key")
    outcome = run_job(store, job.id, worker)
    assert outcome.status == "failed" and outcome.job is not None
    assert outcome.job.error_type == "RequestError" and "runs" in (outcome.job.error or "")


# -- the queue ----------------------------------------------------------------------------------
def test_the_embedded_queue_is_sqlite_in_the_home(settings: Settings) -> None:
    huey = open_huey(settings)
    assert isinstance(huey, SqliteHuey) and queue_backend(settings) == "sqlite"
    assert Path(huey.storage.filename) == settings.home / "queue.db"
    # WAL with synchronous=NORMAL, as the store: a message is not one fsync (1 = NORMAL)
    assert huey.storage.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert huey.storage.conn.execute("PRAGMA synchronous").fetchone()[0] == 1


def run_queued(queue: JobQueue) -> list[dict[str, Any]]:
    """Execute every message the queue holds now (what a consumer thread does); a delayed
    message is moved to Huey's schedule instead (its result is None)."""
    results = []
    while (task := queue.huey.dequeue()) is not None:
        result = queue.huey.execute(task)
        if result is not None:
            results.append(result)
    return results


def test_submit_delivers_once_and_a_worker_runs_it(store: Store, settings: Settings,
                                                   worker: Worker) -> None:
    queue = JobQueue(store, settings, worker=worker)
    job, created = queue.submit(demo_request())
    again, created_again = queue.submit(demo_request())
    assert created and not created_again and again.id == job.id
    assert queue.huey.pending_count() == 1  # the known key is not delivered twice
    assert store.jobs.get(job.id).delivered_at is not None
    assert run_queued(queue) == [{"status": "completed"}]
    assert store.jobs.get(job.id).status == "COMPLETED"


def test_a_retry_is_a_delayed_delivery(store: Store, settings: Settings,
                                       worker: Worker) -> None:
    queue = JobQueue(store, settings, worker=worker)
    job, _ = queue.submit(demo_request(llm="always-429"))
    assert run_queued(queue) == [{"status": "retry"}]
    assert queue.huey.pending_count() == 0 and queue.huey.scheduled_count() == 1
    pending = store.jobs.get(job.id)
    assert pending.delivered_at is not None and pending.delivered_at > utcnow()


def test_the_sweep_reaps_expired_leases_and_delivers_again(store: Store, settings: Settings,
                                                           worker: Worker) -> None:
    queue = JobQueue(store, settings, worker=worker)
    job, _ = queue.submit(demo_request())
    assert queue.huey.dequeue() is not None  # a consumer took the message …
    assert store.jobs.claim(job.id, "killed", lease=5) is not None  # … claimed, then died
    running = queue.sweep()
    assert running.reaped == 0 and running.delivered == []
    assert running.next_wake is not None and running.next_wake <= 6  # woken when it lapses
    later = queue.sweep(now=utcnow() + timedelta(seconds=10))
    assert later.reaped == 1 and later.delivered == [job.id]
    assert run_queued(queue)[-1] == {"status": "completed"}
    done = store.jobs.get(job.id)
    assert done.status == "COMPLETED" and done.attempt == 2


def test_a_pending_job_whose_delivery_was_lost_is_delivered_again(
        store: Store, settings: Settings, worker: Worker) -> None:
    queue = JobQueue(store, settings, worker=worker, redeliver_after=60)
    job, _ = queue.submit(demo_request())
    queue.huey.flush()  # the message is gone (at-most-once delivery)
    assert queue.sweep().delivered == []  # not overdue yet
    assert queue.sweep(now=utcnow() + timedelta(seconds=61)).delivered == [job.id]
    assert run_queued(queue) == [{"status": "completed"}]


def test_retry_runs_a_failed_job_again_with_fresh_attempts(store: Store, settings: Settings,
                                                          worker: Worker) -> None:
    queue = JobQueue(store, settings, worker=worker)
    job, _ = queue.submit(demo_request(llm="no-such-backend"))
    assert run_queued(queue) == [{"status": "failed"}]
    assert queue.retry(job.id) is not None
    again = store.jobs.get(job.id)
    assert again.status == "PENDING" and again.attempt == 0 and again.error is None
    assert queue.retry(job.id) is None  # pending: nothing to retry
    assert run_queued(queue) == [{"status": "failed"}]



def test_threads_asking_a_registry_at_once_all_see_its_built_ins() -> None:
    """Worker threads looked up the 'files' provider while another thread was still importing
    the built-ins, and were told it did not exist (seen with 2 workers × 3 threads)."""
    import threading

    from tests.fakes.slow_registry import SLOW

    found: list[object] = []
    barrier = threading.Barrier(4)

    def look() -> None:
        barrier.wait()
        found.append(SLOW.factory("slow")())

    threads = [threading.Thread(target=look) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == ["built-in"] * 4


@pytest.mark.integration
def test_a_call_still_in_progress_is_retried_until_it_has_ended(
        store: Store, settings: Settings, worker: Worker,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake Vapi API over real HTTP says the call is in progress; the job retries (the
    provider's key comes from the worker's environment) and completes once it has ended."""
    from tests.fakes.server import serve
    from tests.fakes.vapi_api import make_vapi_app

    app = make_vapi_app([pipeline.demo_dir()])
    data = app.state.data
    with serve(app) as server:
        ended = dict(data.calls[DEMO_CALL])
        data.calls[DEMO_CALL] = {**ended, "status": "in-progress", "endedAt": None,
                                 "endedReason": None}
        monkeypatch.setenv("VAPI_API_KEY", "test-vapi-key")
        keyed = Worker(Settings.from_env(), id="w1", lease=30)
        request = ReplayRequest(call=CallRef(call_id=DEMO_CALL, provider="vapi",
                                             base_url=server.url), **FAKES)
        job, _ = submit_replay(store, request)
        first = run_job(store, job.id, keyed)
        assert first.status == "retry" and first.job is not None
        assert first.job.error_type == "CallNotEnded" and "in-progress" in (first.job.error or "")
        data.calls[DEMO_CALL] = ended  # the call ends
        second = run_job(store, job.id, keyed)
        assert second.status == "completed" and second.job is not None
        assert second.job.attempt == 2
        assert store.get_call(DEMO_CALL).status == ended["status"]  # the stored copy updated


def test_the_configured_llm_key_only_goes_to_the_configured_endpoint() -> None:
    """A job or a web form may name any LLM URL; the server's VOICEREPLAY_LLM_API_KEY must not
    follow it there."""
    from voicereplay.pipeline.calling import replay_options
    from voicereplay.pipeline.request import Secrets

    settings = Settings.from_env({"VOICEREPLAY_LLM_BASE_URL": "https://llm.example/v1",
                                  "VOICEREPLAY_LLM_API_KEY": "sk-server"})

    def key(url: str | None) -> str | None:
        return replay_options(demo_request(llm=None, llm_base_url=url), settings,
                              Secrets()).llm_api_key

    assert key(None) == "sk-server" and key("https://llm.example/v1/") == "sk-server"
    assert key("https://attacker.example/v1") is None
    assert replay_options(demo_request(llm_base_url="https://other.example/v1"), settings,
                          Secrets(llm_api_key="sk-mine")).llm_api_key == "sk-mine"
