"""The jobs commands as a user types them: `call --background`, `jobs list|show|cancel|retry`,
`replays list --status`, with the fake backends (a worker is driven in-process here; real worker
processes are in test_job_workers.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from voicereplay import pipeline
from voicereplay.cli import app
from voicereplay.config import Settings
from voicereplay.pipeline.jobs import Worker
from voicereplay.pipeline.queue import JobQueue
from voicereplay.store import Store

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"
runner = CliRunner()


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def background(*extra: str) -> Any:
    return cli("call", DEMO_CALL, "--dir", str(pipeline.demo_dir()), "--stt", "fake-stt",
               "--tts", "fake-tts", "--caller-tts", "fake-tts", "--figures", "svg",
               "--background", *extra)


def run_worker_once() -> list[Any]:
    """What a `voicereplay worker` thread does with every message queued now."""
    settings = Settings.from_env()
    queue = JobQueue(Store.from_settings(settings), settings, worker=Worker(settings))
    results = []
    while (task := queue.huey.dequeue()) is not None:
        results.append(queue.huey.execute(task))
    return [r for r in results if r is not None]


def test_background_submits_a_job_a_worker_runs() -> None:
    submitted = background("--llm-backend", "fake-llm")
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    assert len(job_id) == 32 and "submitted job" in submitted.stderr
    again = background("--llm-backend", "fake-llm")
    assert again.stdout.strip() == job_id and "already job" in again.stderr
    listed = json.loads(cli("jobs", "list", "--json").stdout)
    assert [(j["id"], j["status"]) for j in listed] == [(job_id, "PENDING")]
    assert run_worker_once() == [{"status": "completed"}]
    shown = cli("jobs", "show", job_id[:8])
    assert shown.exit_code == 0 and "COMPLETED" in shown.stdout
    assert "voicereplay replays show" in shown.stdout  # what to do next
    [job] = json.loads(cli("jobs", "list", "--status", "completed", "--json").stdout)
    [replay_id] = job["replay_ids"]
    assert json.loads(cli("replays", "show", replay_id, "--json").stdout)["job_id"] == job_id
    history = json.loads(cli("replays", "list", DEMO_CALL, "--status", "completed",
                             "--json").stdout)
    assert [(e["kind"], e["id"], e["replay_ids"]) for e in history] == [
        ("job", job_id, [replay_id])]


def test_a_failed_job_shows_its_error_and_can_be_retried() -> None:
    job_id = background("--llm-backend", "no-such-llm").stdout.strip()
    assert run_worker_once() == [{"status": "failed"}]
    failed = json.loads(cli("replays", "list", "--status", "failed", "--json").stdout)
    assert [e["id"] for e in failed] == [job_id]
    assert "no-such-llm" in failed[0]["error"]
    shown = cli("jobs", "show", job_id)
    assert "ConfigError" in shown.stdout and f"jobs retry {job_id[:12]}" in shown.stdout
    retried = cli("jobs", "retry", job_id)
    assert retried.exit_code == 0 and "pending again" in retried.stdout
    assert json.loads(cli("jobs", "show", job_id, "--json").stdout)["status"] == "PENDING"
    refused = cli("jobs", "retry", job_id)
    assert refused.exit_code == 2 and "only failed or cancelled" in refused.stderr


def test_cancel_a_pending_job_and_it_never_runs() -> None:
    job_id = background("--llm-backend", "fake-llm").stdout.strip()
    cancelled = cli("jobs", "cancel", job_id[:10])
    assert cancelled.exit_code == 0 and "was PENDING" in cancelled.stdout
    assert run_worker_once() == [{"status": "skipped"}]
    assert json.loads(cli("jobs", "show", job_id, "--json").stdout)["status"] == "CANCELLED"
    again = cli("jobs", "cancel", job_id)
    assert again.exit_code == 2 and "CANCELLED" in again.stderr


@pytest.mark.parametrize(("args", "code", "message"), [
    (("jobs", "show", "0123456789ab"), 4, "job"),
    (("jobs", "cancel", "nope"), 4, ""),
    (("jobs", "list", "--status", "stuck"), 2, "--status 'stuck'"),
    (("replays", "list", "--status", "stuck"), 2, "--status 'stuck'"),
])
def test_bad_input_is_one_line_with_its_exit_code(args: tuple[str, ...], code: int,
                                                   message: str) -> None:
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_keys_are_never_put_in_a_job() -> None:
    result = background("--llm-backend", "fake-llm", "--llm-api-key", "sk-secret-123")
    assert result.exit_code == 2 and "never stored in a job" in result.stderr
    assert "sk-secret-123" not in result.output
    assert json.loads(cli("jobs", "list", "--json").stdout) == []


def test_a_bad_redis_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEREPLAY_REDIS_URL", "http://not-redis")
    result = background("--llm-backend", "fake-llm")
    assert result.exit_code == 2 and "VOICEREPLAY_REDIS_URL" in result.stderr


def test_follow_waits_for_the_job_and_exits_by_its_outcome(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """`jobs show --follow` looks until the job finishes (here a worker runs it between two
    looks); exit 0 when it completed, 1 when it failed."""
    from voicereplay.cli import jobs as jobs_cli

    good = background("--llm-backend", "fake-llm").stdout.strip()
    bad = background("--llm-backend", "no-such-llm").stdout.strip()
    monkeypatch.setattr(jobs_cli, "FOLLOW_EVERY", 0)
    monkeypatch.setattr(jobs_cli.time, "sleep", lambda _s: run_worker_once())
    followed = cli("jobs", "show", good, "--follow")
    assert followed.exit_code == 0 and "COMPLETED" in followed.stdout
    failed = cli("jobs", "show", bad, "--follow")
    assert failed.exit_code == 1 and "FAILED" in failed.stdout
