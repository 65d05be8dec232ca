"""Real `voicereplay worker` processes: draining a queue together, SIGTERM, and SIGKILL mid-replay.

Each worker is the real command in its own process (``python -m voicereplay worker``), loading
the test backends as a plugin (``VOICEREPLAY_PLUGINS=tests.fakes.backends``) the way a user's
worker loads theirs. Waits poll the store with generous limits that only guard against a hang;
nothing here asserts how long anything took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from huey import PostgresHuey, RedisHuey, SqliteHuey

from tests.conftest import REPO
from voicereplay import pipeline
from voicereplay.config import Settings
from voicereplay.pipeline import CallRef, ReplayRequest
from voicereplay.pipeline.queue import JobQueue, queue_backend
from voicereplay.store import Store
from voicereplay.store.jobs import Job

pytestmark = pytest.mark.integration

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"
HANG = 180.0  # seconds before a wait gives up: a hang guard, not a speed check


def demo_request(llm: str = "fake-llm", **fields: Any) -> ReplayRequest:
    return ReplayRequest(call=CallRef(call_id=DEMO_CALL, directory=pipeline.demo_dir()),
                         stt="fake-stt", tts="fake-tts", caller_tts="fake-tts", llm=llm,
                         report={"figures": None}, **fields)


class Workers:
    """Starts `voicereplay worker` processes on one store and stops them at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "voicereplay", "worker", *args],
                                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        self.procs.append(proc)
        return proc

    def log(self, n: int) -> str:
        return (self.logs / f"worker-{n}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.servers),
    pytest.param("redis", marks=pytest.mark.servers),
])
def queue_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of the test and of its workers: one home and, by the parameter, the
    embedded SQLite store and queue; a real PostgreSQL server as the store and the queue
    (PostgresHuey); or a real redis-server as the queue (RedisHuey)."""
    env = {"VOICEREPLAY_HOME": str(tmp_path / "home"), "VOICEREPLAY_JOB_LEASE": "3"}
    if request.param == "postgres":
        env["VOICEREPLAY_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    elif request.param == "redis":
        env["VOICEREPLAY_REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


@pytest.fixture
def settings(queue_env: dict[str, str]) -> Settings:
    return Settings.from_env(queue_env)


@pytest.fixture
def workers(queue_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VOICEREPLAY_") and not k.endswith("_API_KEY")}
    env.update(queue_env, VOICEREPLAY_PLUGINS="tests.fakes.backends",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    group = Workers(env, tmp_path)
    yield group
    group.stop_all()


def wait_for(what: str, check: Callable[[], Any], workers: Workers) -> Any:
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        for n, proc in enumerate(workers.procs):
            if proc.poll() not in (None, -signal.SIGKILL, 0):
                pytest.fail(f"worker {n} exited {proc.returncode}:\n{workers.log(n)}")
        time.sleep(0.2)
    logs = "\n".join(workers.log(n) for n in range(len(workers.procs)))
    pytest.fail(f"gave up waiting for {what}:\n{logs}")


def replay_folders(store: Store) -> list[str]:
    root = store.artifacts.root / "replays"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def assert_completed_once(store: Store, job: Job, runs: int = 1) -> None:
    done = store.jobs.get(job.id)
    assert done.status == "COMPLETED", done
    replays = store.replays.list(job_id=job.id, limit=None)
    assert sorted(r.id for r in replays) == sorted(done.replay_ids) and len(replays) == runs
    assert {r.batch_id for r in replays} == {f"{job.id[:12]}a{done.attempt}"}


def test_two_workers_drain_twenty_jobs_each_completed_once(settings: Settings,
                                                          workers: Workers) -> None:
    store = Store.from_settings(settings)
    queue = JobQueue(store, settings)
    assert isinstance(queue.huey, {"sqlite": SqliteHuey, "postgres": PostgresHuey,
                                   "redis": RedisHuey}[queue_backend(settings)])
    first, second = workers.start("--concurrency", "3"), workers.start("--concurrency", "3")
    wait_for("both workers to listen", lambda: all(
        "thread(s)" in workers.log(n) for n in (0, 1)), workers)
    jobs = [queue.submit(demo_request(seed=n))[0] for n in range(20)]
    wait_for("20 completed jobs",
             lambda: len(store.jobs.list(status="COMPLETED", limit=None)) == 20, workers)
    for job in jobs:
        assert_completed_once(store, job)
    assert len(store.replays.list(limit=None)) == 20
    assert len(replay_folders(store)) == 20
    ran_by = {store.jobs.get(j.id).worker_id for j in jobs}
    assert len(ran_by) == 2, ran_by  # both processes took jobs
    workers.stop_all()
    assert first.returncode == 0 and second.returncode == 0


def test_sigkill_mid_replay_the_job_completes_exactly_once(settings: Settings,
                                                          workers: Workers) -> None:
    """Two runs: the worker is killed while replaying run 2, after run 1 was stored."""
    store = Store.from_settings(settings)
    job, _ = JobQueue(store, settings).submit(demo_request(llm="slow-llm", runs=2))
    doomed = workers.start("--concurrency", "1")
    wait_for("run 1 stored and run 2 under way", lambda: (
        store.jobs.get(job.id).stage == "replay"
        and store.replays.list(job_id=job.id)), workers)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed = store.jobs.get(job.id)
    assert killed.status == "RUNNING" and killed.attempt == 1  # nobody has noticed yet
    assert f"{job.id[:12]}a1-0" in replay_folders(store)  # what the killed attempt left
    workers.start("--concurrency", "1")
    wait_for("the job to complete", lambda: store.jobs.get(job.id).status == "COMPLETED",
             workers)
    done = store.jobs.get(job.id)
    assert done.attempt == 2 and done.worker_id != killed.worker_id
    assert_completed_once(store, job, runs=2)
    assert replay_folders(store) == [f"{job.id[:12]}a2-0", f"{job.id[:12]}a2-1"]  # no orphans
    [entry] = pipeline_history(store)
    assert entry.status == "COMPLETED" and entry.replay_ids == done.replay_ids


def pipeline_history(store: Store) -> list[Any]:
    from voicereplay.pipeline.history import call_history

    return call_history(store, DEMO_CALL)


def stop_mid_replay(settings: Settings, workers: Workers, stop: signal.Signals) -> None:
    store = Store.from_settings(settings)
    job, _ = JobQueue(store, settings).submit(demo_request(llm="slow-llm"))
    proc = workers.start("--concurrency", "2")
    wait_for("the replay to be under way",
             lambda: store.jobs.get(job.id).stage == "replay", workers)
    proc.send_signal(stop)
    assert proc.wait(timeout=HANG) == 0
    assert "handed back" in workers.log(0)
    back = store.jobs.get(job.id)
    assert back.status == "PENDING" and back.attempt == 0, back
    assert replay_folders(store) == [] and store.replays.list(limit=None) == []
    workers.start("--concurrency", "1")  # the job was delivered again for the next worker
    wait_for("the job to complete", lambda: store.jobs.get(job.id).status == "COMPLETED",
             workers)
    assert_completed_once(store, job)
    assert store.jobs.get(job.id).attempt == 1  # the handed-back attempt did not count


def test_sigterm_hands_the_running_job_back_and_exits_cleanly(settings: Settings,
                                                               workers: Workers) -> None:
    stop_mid_replay(settings, workers, signal.SIGTERM)


@pytest.mark.parametrize("queue_env", ["sqlite"], indirect=True)
def test_ctrl_c_does_the_same(settings: Settings, workers: Workers) -> None:
    stop_mid_replay(settings, workers, signal.SIGINT)
