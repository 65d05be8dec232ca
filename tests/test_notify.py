"""Notifications: the summary of a finished replay job, its JSON and Slack formats, one POST.

Summaries are built from real jobs: the demo call replayed by a worker with the fake backends
(the fake LLM calls ``check_status`` on agent turn 4, where the call issued a refund), checks
attached. Deliveries go over real HTTP to a receiver on 127.0.0.1; only a timeout is faked
(``httpx.MockTransport``), so no test waits on the wall clock.
"""

from __future__ import annotations

import copy
import json
import logging
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.backends import FAKE_LLM_SCRIPT
from tests.fakes.scripted_llm import Reply
from tests.fakes.server import RunningServer, serve
from tests.web_demo import DEMO_CALL, demo_request
from voicereplay import __version__
from voicereplay.config import Settings
from voicereplay.errors import ConfigError, JobStateError, NotificationError
from voicereplay.pipeline import CallRef, ReplayRequest, show_replay
from voicereplay.pipeline.jobs import Worker, run_job, submit_replay
from voicereplay.pipeline.notify import (
    NotifyTarget,
    build_summary,
    post,
    redacted,
    render,
    slack_message,
)
from voicereplay.store import Store
from voicereplay.store.jobs import Job

PUBLIC = "https://replays.example.com/"
NO_CHECK_STATUS = {"type": "tool_not_called", "tool": "check_status",
                   "name": "no_tool check_status"}  # fails: the fake LLM calls it on turn 4
CALLS_CHECK_STATUS = {"type": "tool_called", "tool": "check_status"}  # passes


@pytest.fixture
def home(tmp_path: Path) -> tuple[Settings, Store]:
    settings = Settings.for_home(tmp_path / "home")
    return settings, Store.from_settings(settings)


def finished_job(home: tuple[Settings, Store], **fields: Any) -> Job:
    """Submit a replay of the demo call and run it to the end, as a worker would."""
    settings, store = home
    job, _ = submit_replay(store, demo_request(report={"figures": None}, **fields),
                           max_attempts=1)
    outcome = run_job(store, job.id, Worker(settings))
    assert outcome.job is not None and outcome.job.finished, outcome
    return outcome.job


# -- build_summary ----------------------------------------------------------------------------

def test_a_completed_job_summarises_its_failing_checks_divergence_fidelity_and_links(
        home: tuple[Settings, Store]) -> None:
    settings, store = home
    job = finished_job(home, checks=[NO_CHECK_STATUS, CALLS_CHECK_STATUS])
    assert job.status == "COMPLETED" and len(job.replay_ids) == 1
    summary = build_summary(store, job, rule="refund-failures", public_url=PUBLIC,
                            settings=settings)
    comparison = show_replay(store, job.replay_ids[0], settings=settings).comparison
    assert comparison.divergence is not None and comparison.fidelity.score is not None

    assert summary["schema_version"] == "1"
    assert (summary["event"], summary["status"], summary["rule"]) == (
        "replay.completed", "completed", "refund-failures")
    assert summary["passed"] is False and summary["error"] is None
    assert summary["job"]["id"] == job.id and summary["job"]["attempt"] == 1
    call = summary["call"]
    assert (call["provider"], call["id"], call["stored"]) == ("vapi", DEMO_CALL, True)
    assert call["started_at"].startswith("2025-06-12T16:41:07")
    assert call["ended_reason"] == "assistant-said-end-call-phrase"
    assert call["duration"] == pytest.approx(46.429)
    assert call["url"] == f"https://replays.example.com/calls/vapi/{DEMO_CALL}"

    [replay] = summary["replays"]
    assert replay["id"] == job.replay_ids[0] and replay["status"] == "completed"
    assert replay["url"] == f"https://replays.example.com/replays/{job.replay_ids[0]}"
    assert replay["checks"]["total"] == 2 and replay["checks"]["passed"] == 1
    assert replay["checks"]["failed"] == 1
    [failing] = replay["checks"]["failing"]
    assert (failing["name"], failing["type"], failing["status"]) == (
        "no_tool check_status", "tool_not_called", "fail")
    assert "check_status was called in agent turn 4" in failing["message"]
    assert failing["evidence"] == [{"turn": 4, "text": "check_status(order_id='4417')"}]
    divergence = comparison.divergence
    assert replay["divergence"] == {"turn": divergence.turn, "reason": divergence.reason,
                                    "detail": divergence.detail}
    assert replay["fidelity"] == {"score": round(comparison.fidelity.score, 3),
                                  "level": comparison.fidelity.level}
    assert replay["similarity"] == pytest.approx(comparison.similarity, abs=1e-3)
    assert summary["headline"] == (
        f"call {DEMO_CALL} (rule refund-failures): replay completed — 1 of 2 checks failed "
        f"(no_tool check_status on turn 4); diverged at turn {divergence.turn} "
        f"({divergence.reason})")
    assert json.loads(json.dumps(summary)) == summary  # plain JSON, as posted


def test_every_run_is_summarised_and_passing_checks_pass(
        home: tuple[Settings, Store]) -> None:
    settings, store = home
    says = {"type": "agent_says", "phrase": "let me check"}  # the fake LLM's default reply
    job = finished_job(home, checks=[says], runs=2)
    summary = build_summary(store, job, settings=settings)
    assert summary["passed"] is True and summary["rule"] is None
    assert [r["run_index"] for r in summary["replays"]] == [0, 1]
    assert [r["checks"]["passed"] for r in summary["replays"]] == [1, 1]
    assert summary["headline"].startswith(f"call {DEMO_CALL}: replay completed (2 runs) — "
                                          "all 2 checks passed; ")
    # no public URL: no links, and nothing to open
    assert summary["call"]["url"] is None and all(r["url"] is None for r in summary["replays"])
    message = slack_message(summary)
    assert not any(b["type"] == "actions" for b in message["blocks"])
    assert message["blocks"][0]["text"]["text"] == "✅ Replay completed: all 2 checks passed"
    assert "*Run 1* checks 1/1 passed" in message["blocks"][1]["text"]["text"]

    linked = slack_message(build_summary(store, job, public_url=PUBLIC, settings=settings))
    [actions] = [b for b in linked["blocks"] if b["type"] == "actions"]
    assert [(e["text"]["text"], e["url"]) for e in actions["elements"]] == [
        (f"Open run {n + 1}", f"https://replays.example.com/replays/{rid}")
        for n, rid in enumerate(job.replay_ids)]


def test_a_failed_job_gives_a_failed_summary_with_its_error(
        home: tuple[Settings, Store], tmp_path: Path) -> None:
    settings, store = home
    (tmp_path / "empty").mkdir()
    request = ReplayRequest(call=CallRef(call_id="missing-call", directory=tmp_path / "empty"),
                            stt="fake-stt", tts="fake-tts", caller_tts="fake-tts",
                            llm="fake-llm")
    job, _ = submit_replay(store, request, max_attempts=1)
    failed = run_job(store, job.id, Worker(settings)).job
    assert failed is not None and failed.status == "FAILED" and failed.error
    summary = build_summary(store, failed, rule="r1", public_url=PUBLIC, settings=settings)
    assert (summary["event"], summary["status"], summary["passed"]) == (
        "replay.failed", "failed", False)
    assert summary["error"] == {"type": failed.error_type, "message": failed.error}
    assert summary["replays"] == []
    assert summary["call"]["id"] == "missing-call" and summary["call"]["stored"] is False
    assert summary["call"]["url"] is None
    assert summary["headline"] == (f"call missing-call (rule r1): replay failed — "
                                   f"{failed.error_type}: {failed.error}")
    message = slack_message(summary)
    assert message["blocks"][0]["text"]["text"] == "❌ Replay failed"
    assert f"*Error* {failed.error_type}" in message["blocks"][1]["text"]["text"]


def test_a_deleted_replay_is_reported_unavailable_not_a_crash(
        home: tuple[Settings, Store]) -> None:
    settings, store = home
    job = finished_job(home, checks=[CALLS_CHECK_STATUS])
    store.replays.delete(job.replay_ids)
    summary = build_summary(store, job, public_url=PUBLIC, settings=settings)
    [replay] = summary["replays"]
    assert replay["status"] == "unavailable" and "no longer stored" in replay["error"]
    assert replay["checks"] is None and replay["url"] is None
    assert summary["passed"] is False  # nothing left to show it passed
    assert summary["headline"].endswith("replay completed — the replay is unavailable; "
                                        "no divergence")
    text = slack_message(summary)["blocks"][1]["text"]["text"]
    assert "unavailable: the replay is no longer stored" in text


def test_only_a_finished_replay_job_has_a_summary(home: tuple[Settings, Store]) -> None:
    _settings, store = home
    pending, _ = submit_replay(store, demo_request())
    with pytest.raises(JobStateError, match="PENDING"):
        build_summary(store, pending)


# -- the Slack format -------------------------------------------------------------------------

def mrkdwn_texts(message: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message["blocks"])
    return found


def test_slack_escapes_what_the_agent_said_so_it_never_becomes_a_link_or_mention(
        home: tuple[Settings, Store], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, store = home
    said = "Sure <https://evil.example|click> here @channel <!channel> & <@U123>"
    monkeypatch.setitem(FAKE_LLM_SCRIPT, "caller turn 1", Reply(text=said))
    job = finished_job(home, checks=[{"type": "agent_does_not_say", "phrase": "click"}])
    summary = build_summary(store, job, rule="a&b <rule>", public_url=PUBLIC,
                            settings=settings)
    [failing] = summary["replays"][0]["checks"]["failing"]
    assert any(said in e["text"] for e in failing["evidence"])  # JSON keeps the words as is
    assert render(summary, "json") is summary

    message = render(summary, "slack")
    assert message == slack_message(summary)
    texts = mrkdwn_texts(message)
    assert texts and all(t["verbatim"] is True for t in texts)
    everything = json.dumps(message, ensure_ascii=False)
    assert "<https://evil" not in everything and "<!channel>" not in everything
    assert "<@U123>" not in everything
    evidence = message["blocks"][2]["text"]["text"]
    assert ("Sure &lt;https://evil.example|click&gt; here @channel &lt;!channel&gt; &amp; "
            "&lt;@U123&gt;") in evidence
    assert "*Rule* a&amp;b &lt;rule&gt;" in message["blocks"][1]["text"]["text"]
    assert "&lt;rule&gt;" in message["text"] and "<rule>" not in message["text"]
    # the only links are ours: the call page and the comparison button
    assert f"<https://replays.example.com/calls/vapi/{DEMO_CALL}|" in everything
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == summary["replays"][0]["url"]
    assert actions["elements"][0]["text"]["text"] == "Open comparison"


def test_slack_cuts_long_evidence_and_counts_checks_beyond_ten(
        home: tuple[Settings, Store]) -> None:
    settings, store = home
    job = finished_job(home, checks=[NO_CHECK_STATUS])
    summary = copy.deepcopy(build_summary(store, job, public_url=PUBLIC, settings=settings))
    checks = summary["replays"][0]["checks"]
    [failing] = checks["failing"]
    failing["evidence"] = [{"turn": 4, "text": "word " * 2000 + "<!here>"},
                           *[{"turn": n, "text": f"more {n}"} for n in range(5, 9)]]
    checks["failing"] = [dict(failing, name=f"check {n}") for n in range(15)]
    checks["failed"] = checks["total"] = 15
    checks["passed"] = 0
    message = slack_message(summary)

    sections = [b for b in message["blocks"] if b["type"] == "section"]
    assert len(sections) == 1 + 10  # the overview and ten failing checks
    first = sections[1]["text"]["text"]
    quoted = [line for line in first.splitlines() if line.startswith("> ")]
    assert len(quoted) == 3  # three pieces of evidence shown of five
    assert quoted[0].startswith("> turn 4: word word") and quoted[0].endswith("…")
    assert len(quoted[0]) < 220 and "!here" not in first
    assert all(len(s["text"]["text"]) <= 3000 for s in sections)
    [more] = [b for b in message["blocks"] if b["type"] == "context"]
    assert "5 more failing checks" in more["elements"][0]["text"]
    assert message["blocks"][0]["text"]["text"] == "❌ Replay completed: 15 of 15 checks failed"
    assert len(message["blocks"]) <= 50


def test_an_unknown_format_is_a_clear_error(home: tuple[Settings, Store]) -> None:
    with pytest.raises(ConfigError, match="unknown notification format 'xml'; known: json, "
                                          "slack"):
        render({}, "xml")


# -- post: one delivery over real HTTP --------------------------------------------------------

SECRET_QUERY = "token=q-s3cret-value"
SECRET_HEADER = "Bearer h-s3cret-value"


def receiver() -> tuple[Starlette, list[dict[str, Any]]]:
    """A notification receiver: records each POST's headers and JSON body, answers 200."""
    got: list[dict[str, Any]] = []

    async def hook(request: Request) -> JSONResponse:
        got.append({"headers": dict(request.headers), "body": await request.json()})
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])]), got


@pytest.fixture
def server() -> Any:
    app, got = receiver()
    with serve(app) as running:
        running.got = got  # type: ignore[attr-defined]
        yield running


def target(server: RunningServer, path: str = "/hook", **fields: Any) -> NotifyTarget:
    return NotifyTarget(url=f"{server.url}{path}?{SECRET_QUERY}",
                        headers={"Authorization": SECRET_HEADER}, **fields)


def assert_no_secrets(error: NotificationError) -> None:
    for text in (str(error), error.target, repr(error)):
        assert "s3cret" not in text and "token=" not in text, text


def test_post_delivers_json_with_our_headers(server: RunningServer,
                                             caplog: pytest.LogCaptureFixture) -> None:
    payload = {"headline": "café <b>", "n": 1}
    with caplog.at_level(logging.DEBUG, logger="voicereplay"):
        assert post(target(server), payload) == 200
    [seen] = server.got  # type: ignore[attr-defined]
    assert seen["body"] == payload
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["user-agent"] == f"voicereplay/{__version__}"
    assert seen["headers"]["authorization"] == SECRET_HEADER
    assert server.requests[0].query == SECRET_QUERY
    assert "s3cret" not in caplog.text and "token=" not in caplog.text


@pytest.mark.parametrize(("status", "headers", "retryable", "retry_after"), [
    (500, {}, True, None),
    (503, {}, True, None),
    (429, {"Retry-After": "7"}, True, 7.0),
    (429, {}, True, None),
    (404, {}, False, None),
    (400, {}, False, None),
])
def test_post_failures_are_retryable_or_permanent_and_keep_secrets(
        server: RunningServer, status: int, headers: dict[str, str], retryable: bool,
        retry_after: float | None) -> None:
    server.fail("^/hook$", status=status, headers=headers,
                body=f"no such hook {SECRET_QUERY} {SECRET_HEADER}")
    with pytest.raises(NotificationError) as caught:
        post(target(server), {"x": 1})
    error = caught.value
    assert (error.status, error.retryable, error.retry_after) == (status, retryable,
                                                                    retry_after)
    assert f"HTTP {status}" in str(error)
    assert error.target == f"{server.url}/hook" and error.target in str(error)
    assert_no_secrets(error)
    assert server.got == []  # type: ignore[attr-defined]


def test_post_to_a_closed_port_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = NotifyTarget(url=f"http://127.0.0.1:{port}/hook?{SECRET_QUERY}",
                          headers={"X-Key": SECRET_HEADER})
    with pytest.raises(NotificationError, match="could not connect") as caught:
        post(closed, {"x": 1})
    assert caught.value.retryable and caught.value.status is None
    assert_no_secrets(caught.value)


def test_post_follows_redirects_by_posting_again_but_not_to_other_schemes(
        server: RunningServer) -> None:
    server.fail("^/moved$", status=308, headers={"Location": "/hook"})
    assert post(target(server, "/moved"), {"moved": True}) == 200
    [seen] = server.got  # type: ignore[attr-defined]
    assert seen["body"] == {"moved": True}
    assert seen["headers"]["authorization"] == SECRET_HEADER  # same origin: headers kept

    server.fail("^/ftp$", status=302, headers={"Location": "ftp://files.example/x"})
    with pytest.raises(NotificationError, match="redirects to a ftp URL") as caught:
        post(target(server, "/ftp"), {"x": 1})
    assert not caught.value.retryable and caught.value.status == 302
    assert_no_secrets(caught.value)


def test_a_redirect_to_another_origin_does_not_carry_the_extra_headers(
        server: RunningServer) -> None:
    app, got = receiver()
    with serve(app) as other:
        server.fail("^/away$", status=307, headers={"Location": f"{other.url}/hook"})
        assert post(target(server, "/away"), {"x": 1}) == 200
    [seen] = got
    assert "authorization" not in seen["headers"] and seen["body"] == {"x": 1}


def test_post_timeout_is_retryable_and_names_no_secret() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    slack = NotifyTarget(url="https://hooks.slack.com/services/T0000/B0000/"
                             "XXXXsecretXXXXXXXXXXXXXX", format="slack")
    with httpx.Client(transport=httpx.MockTransport(slow)) as client, \
            pytest.raises(NotificationError, match="no answer within 2 s") as caught:
        post(slack, {"text": "hi"}, timeout=2, client=client)
    assert caught.value.retryable
    assert caught.value.target == "https://hooks.slack.com/services/T0000/B0000/XXXX…"
    assert "secret" not in str(caught.value) and "secret" not in repr(slack)


def test_redacted_keeps_scheme_host_and_path_only() -> None:
    assert redacted("https://user:pw@example.com:8443/a/b?token=x#frag") == (
        "https://example.com:8443/a/b")
    assert redacted("https://hooks.slack.com/services/T01/B02/abcdefghijklmnopqrstuvwx") == (
        "https://hooks.slack.com/services/T01/B02/abcd…")


def test_a_redirect_loop_ends_with_a_permanent_error(server: RunningServer) -> None:
    server.fail("^/loop$", status=307, headers={"Location": "/loop"}, times=10)
    with pytest.raises(NotificationError, match="more than 5 redirects") as caught:
        post(target(server, "/loop"), {"x": 1})
    assert not caught.value.retryable
    assert len(server.seen("^/loop$")) == 6  # the POST and five redirects followed


def test_a_target_with_unsendable_headers_is_refused_without_quoting_them() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="characters HTTP cannot send") as caught:
        NotifyTarget(url="https://example.com/hook?token=abc",
                     headers={"X-Key": "s3cret\r\nInjected: 1"})
    assert "s3cret" not in str(caught.value) and "token=abc" not in str(caught.value)
    with pytest.raises(ValidationError, match="not an HTTP header name"):
        NotifyTarget(url="https://example.com/hook", headers={"Bad Name": "v"})
