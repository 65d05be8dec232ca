"""A batch run by real `voicereplay worker` processes sharing one store: SQLite, and a real
PostgreSQL server (store and queue) — the multi-machine setup of the README's compose example,
on one machine.

`batch run --background` only submits; two worker processes (loading the test backends as
plugins) drain the batch; one is killed with SIGKILL mid-batch and its jobs still complete
once. Waits only guard against a hang; nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.batch_demo import ALL, KINDS, keys, store_tagged_copies
from tests.fakes import batch_llm
from tests.test_job_workers import Workers, wait_for
from voicereplay.cli import app
from voicereplay.config import Settings
from voicereplay.pipeline.batch_reports import batch_report
from voicereplay.store import Store

pytestmark = pytest.mark.integration

batch_llm.register()
runner = CliRunner()
FAKES = ["--stt", "fake-stt", "--tts", "fake-tts", "--caller-tts", "fake-tts",
         "--llm-backend", "batch-llm", "--figures", "svg"]
PLUGINS = "tests.fakes.backends,tests.fakes.batch_llm"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
def env(request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"VOICEREPLAY_HOME": str(tmp_path / "home"), "VOICEREPLAY_JOB_LEASE": "3"}
    if request.param == "postgres":
        values["VOICEREPLAY_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    for name, value in values.items():  # the CLI in this process sees the same store
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    from tests.conftest import REPO

    process_env = {k: v for k, v in os.environ.items()
                   if not k.startswith("VOICEREPLAY_") and not k.endswith("_API_KEY")}
    process_env.update(env, VOICEREPLAY_PLUGINS=PLUGINS, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), process_env.get("PYTHONPATH")])))
    group = Workers(process_env, tmp_path)
    yield group
    group.stop_all()


def test_worker_processes_drain_a_batch_and_survive_a_killed_worker(
        env: dict[str, str], workers: Workers, tmp_path: Path) -> None:
    settings = Settings.from_env(env)
    store_tagged_copies(settings)
    checks = tmp_path / "checks.yaml"
    checks.write_text("- type: tool_not_called\n  tool: issue_refund\n")
    result = runner.invoke(app, ["batch", "run", *ALL, *FAKES, "--temperature",
                                 str(batch_llm.CANDIDATE_TEMPERATURE), "--checks",
                                 str(checks), "--name", "on-workers", "--background"])
    assert result.exit_code == 0, result.stderr
    batch_id = result.stdout.strip()
    store = Store.from_settings(settings)
    batch = store.batches.get(batch_id)

    doomed = workers.start("--concurrency", "1")
    wait_for("the first worker to take a job", lambda: any(
        j.status == "RUNNING" for j in store.jobs.list(batch_id=batch_id, limit=None)), workers)
    doomed.send_signal(signal.SIGKILL)
    workers.start("--concurrency", "2")
    report = wait_for("the batch to finish", lambda: (
        r if (r := batch_report(store, batch)).status.done else None), workers)

    assert report.status.completed == 6 and report.aggregate is not None
    for call_id in ALL:  # each call replayed once, whatever the killed worker held
        job = next(c for c in report.calls if c.call_id == call_id)
        assert len(store.replays.list(job_id=job.job_id, limit=None)) == 1
    check = report.aggregate.checks[0]
    assert set(check.failing) == keys(KINDS["bad"])
    assert set(check.improved) == keys(KINDS["good"] + KINDS["same"])

    shown = runner.invoke(app, ["batch", "show", "on-workers", "--json"])
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["status"]["completed"] == 6
    store.close()


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)  # the store is not what it tests
def test_ctrl_c_stops_a_batch_run_and_the_same_command_finishes_it(
        env: dict[str, str], workers: Workers, tmp_path: Path) -> None:
    """The real command in its own process, with a slow LLM: SIGINT after the first call,
    exit 130 with the resume hint; running it again replays only the calls not done."""
    import subprocess
    import sys

    from tests.conftest import REPO

    settings = Settings.from_env(env)
    store_tagged_copies(settings)
    args = [sys.executable, "-m", "voicereplay", "batch", "run", *ALL[:4], "--stt", "fake-stt",
            "--tts", "fake-tts", "--caller-tts", "fake-tts", "--llm-backend", "slow-llm",
            "--figures", "svg", "--concurrency", "1"]
    store = Store.from_settings(settings)
    proc = subprocess.Popen(args, env=workers.env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_for("the first call to finish", lambda: any(
            j.status == "COMPLETED" for j in store.jobs.list(kind="replay", limit=None)),
            workers)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert "run the same command again to continue" in err.decode()
    jobs = store.jobs.list(kind="replay", limit=None)
    done_before = {j.id: j.replay_ids for j in jobs if j.status == "COMPLETED"}
    assert 1 <= len(done_before) < 4
    assert not any(j.status == "RUNNING" for j in jobs)  # handed back, not left to a lease

    again = subprocess.run(args, env=workers.env, cwd=REPO, capture_output=True, timeout=300,
                           check=False)
    assert again.returncode == 0, again.stderr.decode()
    assert f"{len(done_before)} of 4 calls already done" in again.stderr.decode()
    for job_id, replay_ids in done_before.items():
        assert store.jobs.get(job_id).replay_ids == replay_ids
    assert sum(len(store.replays.list(call_id=c, limit=None)) for c in ALL[:4]) == 4
    store.close()
