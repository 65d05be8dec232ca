"""Flagged calls in process: event jobs, one replay per (call, rule, candidate snapshot), flags
from the API and the call page, recovering stored events, notification jobs (retried, never
the replay's failure) and the backfill sync. Jobs are run by hand with
:func:`~voicereplay.pipeline.jobs.run_job` and the queue's runners, so each step is checked on
its own; the real `serve` path is in test_webhook_e2e.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.fakes.server import RunningServer, serve
from tests.fakes.vapi_api import FakeVapiData, make_vapi_app
from tests.fakes.webhooks import DEMO, DEMO_CALL, Receiver, Storage, vapi_report
from voicereplay.cli import app as cli_app
from voicereplay.config import Settings
from voicereplay.jobs.sync import PeriodicSync
from voicereplay.pipeline import import_calls
from voicereplay.pipeline.jobs import JobOutcome, Worker, run_job
from voicereplay.pipeline.queue import JOB_RUNNERS, JobQueue
from voicereplay.pipeline.triggers import flag_call, notification_jobs, queue_event
from voicereplay.pipeline.webhooks import receive
from voicereplay.providers.files import FilesProvider
from voicereplay.store import Store
from voicereplay.store.jobs import Job
from voicereplay.web import create_app

FAKES = "".join(f"      {key}: {value}\n" for key, value in (
    ("stt", "fake-stt"), ("tts", "fake-tts"), ("caller_tts", "fake-tts"), ("llm", "fake-llm")))


def rules_text(receiver: str = "http://127.0.0.1:9/hook", *, when: str = "success: false",
               prompt: Path = DEMO / "fixed-prompt.txt", extra: str = "") -> str:
    return (f"version: 1\nrules:\n  - name: failed-calls\n    when:\n      {when}\n"
            f"    replay:\n      prompt_file: {prompt}\n{FAKES}"
            f"    notify:\n      - url: {receiver}/team\n{extra}")


@dataclass
class Env:
    settings: Settings
    store: Store
    queue: JobQueue
    storage: Storage
    storage_server: RunningServer
    rules: Path

    def run(self, job: Job | str) -> JobOutcome:
        job_id = job if isinstance(job, str) else job.id
        return run_job(self.store, job_id, Worker(self.settings), runners=JOB_RUNNERS,
                       submit=self.queue.submit_job)

    def cli_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The CLI in this test sees this store."""
        monkeypatch.setenv("VOICEREPLAY_HOME", str(self.settings.home))
        monkeypatch.setenv("VOICEREPLAY_DATABASE_URL", self.settings.database_url)
        monkeypatch.setenv("VOICEREPLAY_RULES", str(self.rules))

    def post(self, body: dict[str, Any]) -> Job:
        """Receive a Vapi report as the endpoint does; its event job."""
        import json

        receipt = receive("vapi", self.store, self.settings, json.dumps(body).encode(),
                          {"x-vapi-secret": "s"}, submit=self.queue.submit_job)
        assert receipt.status == "stored"
        [job] = self.store.jobs.list(kind="event", limit=None)[:1]
        return job


@pytest.fixture
def env(tmp_path: Path, store_url: str) -> Iterator[Env]:
    """On SQLite, and on a real PostgreSQL (the store and the queue) for the servers lane."""
    storage = Storage()
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text(), encoding="utf-8")
    settings = Settings.from_env({"VOICEREPLAY_HOME": str(tmp_path / "home"),
                                  "VOICEREPLAY_DATABASE_URL": store_url,
                                  "VOICEREPLAY_VAPI_WEBHOOK_SECRET": "s",
                                  "VOICEREPLAY_RULES": str(rules),
                                  "VOICEREPLAY_JOB_ATTEMPTS": "1"})
    store = Store.from_settings(settings)
    with serve(storage.app) as storage_server:
        yield Env(settings, store, JobQueue(store, settings), storage, storage_server, rules)


def test_an_event_job_stores_the_call_and_queues_one_replay_per_rule_and_snapshot(env: Env
                                                                                  ) -> None:
    event_job = env.post(vapi_report(env.storage, env.storage_server.url))
    outcome = env.run(event_job)
    assert outcome.status == "completed", outcome.job
    assert outcome.job is not None and outcome.job.result is not None
    [triggered] = outcome.job.result["triggered"]
    assert triggered["rule"] == "failed-calls" and triggered["new"] is True
    call = env.store.get_call(DEMO_CALL, "vapi")
    assert call.analysis.success is False and {r.kind for r in call.recordings} >= {"stereo"}
    snapshot = env.store.snapshot_for_call(DEMO_CALL, "vapi")
    assert snapshot is not None and snapshot.system_prompt  # the report's resolved assistant
    [replay_job] = env.store.jobs.list(kind="replay", limit=None)
    assert replay_job.id == triggered["job_id"]
    assert replay_job.trigger == {"rule": "failed-calls", "event_id": env.store.events.list(
        limit=None)[0].id, "source": "end-of-call-report"}
    assert replay_job.request["system_prompt"] == (DEMO / "fixed-prompt.txt").read_text()

    # The same event processed again: the same replay job, not a second one.
    def reprocess(n: int) -> JobOutcome:
        job, _ = env.queue.submit_job("event", dict(event_job.request), f"again-{n}")
        return env.run(job)

    again = reprocess(1)
    assert again.job is not None and again.job.result is not None
    assert again.job.result["triggered"] == [{**triggered, "new": False}]
    # A new candidate prompt is a new snapshot, so a new replay.
    changed = env.rules.parent / "candidate.txt"
    changed.write_text("You are Sam. Never refund unless asked.", encoding="utf-8")
    env.rules.write_text(rules_text(prompt=changed), encoding="utf-8")
    third = reprocess(2)
    assert third.job is not None and third.job.result is not None
    assert third.job.result["triggered"][0]["new"] is True
    assert len(env.store.jobs.list(kind="replay", limit=None)) == 2


def test_a_call_no_rule_matches_queues_nothing_and_status_updates_are_only_recorded(env: Env
                                                                                   ) -> None:
    env.rules.write_text(rules_text(when="ended_reason: [silence-timed-out]"),
                         encoding="utf-8")
    outcome = env.run(env.post(vapi_report(env.storage, env.storage_server.url)))
    assert outcome.status == "completed"
    assert outcome.job is not None and outcome.job.result == {
        "event_id": env.store.events.list(limit=None)[0].id,
        "event_type": "end-of-call-report", "triggered": []}
    assert env.store.jobs.list(kind="replay", limit=None) == []

    import json

    status = {"message": {"type": "status-update", "status": "in-progress",
                          "call": {"id": "c-live"}}}
    receipt = receive("vapi", env.store, env.settings, json.dumps(status).encode(),
                      {"x-vapi-secret": "s"}, submit=env.queue.submit_job)
    assert receipt.status == "stored"
    event = env.store.events.get(receipt.event_id or "")
    assert (event.event_type, event.status) == ("status-update:in-progress", "PROCESSED")
    assert env.store.jobs.list(kind="event", call_id="c-live", limit=None) == []


def test_a_stored_event_whose_job_was_never_queued_is_recovered_by_the_sweep(env: Env) -> None:
    import json

    body = json.dumps(vapi_report(env.storage, env.storage_server.url))
    # as if the process stopped between storing the event and queueing its job
    event, _ = env.store.events.record("vapi", "end-of-call-report", DEMO_CALL, body)
    assert env.store.jobs.list(kind="event", limit=None) == []
    env.queue.sweep()
    [job] = env.store.jobs.list(kind="event", limit=None)
    assert job.request == {"event_id": event.id} and job.delivered_at is not None
    env.queue.sweep()  # queued once, however often the sweep runs
    assert len(env.store.jobs.list(kind="event", limit=None)) == 1
    assert env.run(job).status == "completed"
    assert env.store.events.get(event.id).status == "PROCESSED"


def _stored_demo(env: Env) -> None:
    with FilesProvider(DEMO) as files:
        [outcome] = import_calls(env.store, files, [DEMO_CALL])
    assert outcome.ok


def test_flagging_a_call_runs_the_rules_with_flagged_true(env: Env,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    _stored_demo(env)
    env.rules.write_text(rules_text(when="flagged: true"), encoding="utf-8")
    call = env.store.get_call(DEMO_CALL, "vapi")
    with TestClient(create_app(env.settings, store=env.store)) as client:
        missing = client.post("/api/calls/nope-nope/flag", json={"reason": "x"})
        assert missing.status_code == 404 and missing.json()["error"]["type"] == \
            "NotStoredError"
        answer = client.post(f"/api/calls/{DEMO_CALL}/flag", json={"reason": "refund bug"})
        assert answer.status_code == 202, answer.text
        flagged = answer.json()
        assert flagged["provider"] == "vapi" and flagged["job_id"]
        again = client.post(f"/api/calls/{DEMO_CALL}/flag", json={})
        assert (again.json()["event_id"], again.json()["job_id"]) == (
            flagged["event_id"], flagged["job_id"])  # flagged once
        outcome = env.run(flagged["job_id"])
        assert outcome.status == "completed"
        [replay_job] = env.store.jobs.list(kind="replay", limit=None)
        assert replay_job.trigger is not None and replay_job.trigger["source"] == "flag"
        page = client.get(f"/calls/vapi/{DEMO_CALL}")
        assert 'class="flagged"' in page.text and 'id="flag-button"' not in page.text
    event = env.store.events.get(flagged["event_id"])
    assert '"reason": "refund bug"' in event.body
    assert call.call_id == DEMO_CALL
    env.cli_env(monkeypatch)
    checked = CliRunner().invoke(cli_app, ["rules", "check", DEMO_CALL])
    assert checked.exit_code == 0, checked.output
    assert "✓ the call is flagged" in checked.output  # the stored flag, no --flagged


def test_the_flag_button_on_the_call_page_flags_the_call(env: Env) -> None:
    _stored_demo(env)
    with TestClient(create_app(env.settings, store=env.store)) as client:
        page = client.get(f"/calls/vapi/{DEMO_CALL}")
        assert 'id="flag-button"' in page.text
        token = client.cookies.get("vr_csrf")
        assert token
        refused = client.post(f"/calls/vapi/{DEMO_CALL}/flag", data={},
                              follow_redirects=False)
        assert refused.status_code == 403  # no CSRF token: nothing flagged
        assert env.store.events.find("vapi", DEMO_CALL, "flag") is None
        done = client.post(f"/calls/vapi/{DEMO_CALL}/flag", data={"csrf_token": token},
                           follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"] == f"/calls/vapi/{DEMO_CALL}#flag"
    assert env.store.events.find("vapi", DEMO_CALL, "flag") is not None
    assert len(env.store.jobs.list(kind="event", limit=None)) == 1


def test_notifications_are_retried_jobs_that_never_fail_the_replay(env: Env) -> None:
    receiver = Receiver()
    with serve(receiver.app) as server:
        env.rules.write_text(rules_text(f"{server.url}/hook"), encoding="utf-8")
        env.run(env.post(vapi_report(env.storage, env.storage_server.url)))
        [replay_job] = env.store.jobs.list(kind="replay", limit=None)
        done = env.run(replay_job)
        assert done.status == "completed" and done.job is not None
        [notify] = notification_jobs(env.store, env.settings, done.job, env.queue.submit_job)
        assert "http" not in str(notify.request)  # the URL (a secret for Slack) is not stored
        server.fail(r"^/hook/", status=503, times=1)
        first = env.run(notify)
        assert first.status == "retry" and first.job is not None
        assert first.job.error_type == "NotificationError" and "503" in (first.job.error or "")
        assert env.store.jobs.get(replay_job.id).status == "COMPLETED"  # untouched
        second = env.run(notify)
        assert second.status == "completed" and second.job is not None
        assert second.job.result is not None and second.job.result["status_code"] == 200
        [summary] = receiver.received("team")
        assert summary["rule"] == "failed-calls" and summary["status"] == "completed"
        # queued once per finished replay, however often it is asked
        [same] = notification_jobs(env.store, env.settings, done.job, env.queue.submit_job)
        assert same.id == notify.id
        # a target taken out of the rules file since: the notification fails, plainly
        env.rules.write_text(rules_text("http://127.0.0.1:9/other"), encoding="utf-8")
        later, _ = env.queue.submit_job("notify", dict(notify.request), "notify-later")
        gone = env.run(later)
        assert gone.status == "failed" and gone.job is not None
        assert gone.job.error_type == "RequestError"


def test_untriggered_jobs_send_no_notifications(env: Env) -> None:
    job, _ = env.queue.submit_job("replay", {"call": {"call_id": "x"}}, "k-1")
    assert notification_jobs(env.store, env.settings, job, env.queue.submit_job) == []


@pytest.fixture
def vapi_api(tmp_path: Path) -> Iterator[tuple[RunningServer, FakeVapiData]]:
    data = FakeVapiData()
    data.load_directory(DEMO)
    with serve(make_vapi_app([], data=data)) as server:
        yield server, data


def test_sync_imports_missed_calls_as_if_their_webhook_had_arrived(
        env: Env, vapi_api: tuple[RunningServer, FakeVapiData],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, _data = vapi_api
    settings = replace(env.settings, vapi_api_key="test-vapi-key", vapi_base_url=server.url)
    queue = JobQueue(env.store, settings)
    sync = PeriodicSync(queue, 600, first_look_back=timedelta(days=3650))  # a 2025 call
    assert sync.providers == ["vapi"]
    [report] = sync.run_once()
    assert (report.listed, report.known, len(report.jobs)) == (1, 0, 1)
    [event] = report.events
    assert event.event_type == "backfill"
    outcome = run_job(env.store, report.jobs[0].id, Worker(settings), runners=JOB_RUNNERS,
                      submit=queue.submit_job)
    assert outcome.status == "completed", outcome.job
    assert env.store.get_call(DEMO_CALL, "vapi").recordings  # imported through the API
    assert len(env.store.jobs.list(kind="replay", limit=None)) == 1  # the rules ran
    [again] = sync.run_once()
    assert (again.listed, again.events) == (0, [])  # the next round looks back one interval

    # the CLI: the call is stored now, so nothing to import
    env.cli_env(monkeypatch)
    monkeypatch.setenv("VAPI_API_KEY", "test-vapi-key")
    monkeypatch.setenv("VAPI_BASE_URL", server.url)
    result = CliRunner().invoke(cli_app, ["calls", "sync", "--since", "3650d"])
    assert result.exit_code == 0, result.output
    assert "1 call(s) listed, 1 already stored, 0 to import" in result.output


def test_calls_sync_runs_the_imports_here_and_says_what_the_rules_queued(
        tmp_path: Path, vapi_api: tuple[RunningServer, FakeVapiData],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, _data = vapi_api
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text(), encoding="utf-8")
    for name, value in {"VOICEREPLAY_HOME": str(tmp_path / "home"),
                        "VAPI_API_KEY": "test-vapi-key", "VAPI_BASE_URL": server.url}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli_app, ["calls", "sync", "--since", "3650d", "--rules",
                                          str(rules), "--json"])
    assert result.exit_code == 0, result.output
    import json

    [row] = json.loads(result.stdout)
    assert row["call_id"] == DEMO_CALL and row["status"] == "completed"
    assert [t["rule"] for t in row["triggered"]] == ["failed-calls"]
    bad = CliRunner().invoke(cli_app, ["calls", "sync", "--provider", "files"])
    assert bad.exit_code == 2 and "unknown provider" in bad.output
    monkeypatch.delenv("VAPI_API_KEY")
    none = CliRunner().invoke(cli_app, ["calls", "sync"])
    assert none.exit_code == 2 and "no provider API key" in none.output


def test_queue_event_of_a_flag_and_of_a_recorded_only_event(env: Env) -> None:
    _stored_demo(env)
    call = env.store.get_call(DEMO_CALL, "vapi")
    event, job = flag_call(env.store, env.settings, env.queue.submit_job, call)
    assert job is not None and job.kind == "event" and job.request == {"event_id": event.id}
    other, _ = env.store.events.record("vapi", "status-update:ended", DEMO_CALL, "{}")
    assert queue_event(env.store, env.settings, env.queue.submit_job, other) is None
    assert env.store.events.get(other.id).status == "PROCESSED"


def test_jobs_show_says_what_an_event_job_queued(env: Env,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    event_job = env.post(vapi_report(env.storage, env.storage_server.url))
    env.run(event_job)
    [replay_job] = env.store.jobs.list(kind="replay", limit=None)
    env.cli_env(monkeypatch)
    shown = CliRunner().invoke(cli_app, ["jobs", "show", event_job.id[:12]])
    assert shown.exit_code == 0, shown.output
    assert f"failed-calls → job {replay_job.id[:12]}" in shown.output
    replay_shown = CliRunner().invoke(cli_app, ["jobs", "show", replay_job.id[:12]])
    assert "failed-calls" in replay_shown.output  # the rule that triggered it
    listed = CliRunner().invoke(cli_app, ["jobs", "list"], env={"COLUMNS": "200"})
    assert "replay (failed-calls)" in listed.output and " event " in listed.output


@pytest.mark.models
def test_a_webhook_triggered_replay_runs_the_embedded_models(env: Env) -> None:
    """The rule names no fake: faster-whisper hears the caller, piper speaks, and the
    recorded agent turns are served (``model: recorded``), as a new user's first rule would."""
    env.rules.write_text(
        "version: 1\nrules:\n  - name: failed-calls\n    when: {success: false}\n"
        "    replay:\n      model: recorded\n      checks:\n"
        "        - {type: tool_not_called, tool: issue_refund}\n", encoding="utf-8")
    assert env.run(env.post(vapi_report(env.storage, env.storage_server.url))).status == \
        "completed"
    [replay_job] = env.store.jobs.list(kind="replay", limit=None)
    done = env.run(replay_job)
    assert done.status == "completed", done.job
    replay = env.store.replays.get(replay_job.replay_ids[0] if replay_job.replay_ids
                                   else done.job.replay_ids[0])  # type: ignore[union-attr]
    assert replay.backends.stt == "faster-whisper" and replay.backends.tts == "piper"
    heard = [t.heard for t in replay.turns if t.role == "user" and t.heard]
    assert any("4417" in h or "order" in h.lower() for h in heard)  # real speech recognised
    from voicereplay.pipeline.notify import build_summary

    summary = build_summary(env.store, env.store.jobs.get(replay_job.id), rule="failed-calls")
    assert summary["passed"] is False  # the recorded agent still refunds on turn 4
    [failing] = summary["replays"][0]["checks"]["failing"]
    assert failing["evidence"][0]["turn"] == 4
