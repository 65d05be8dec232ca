"""Webhook-triggered replays end to end over real HTTP: a provider posts its webhook to the real
`voicereplay serve` process → the call, its snapshot and its recordings are stored → the rules
match → a replay job runs on the embedded worker → the comparison exists → the notification
reaches a local receiver.

Everything is on 127.0.0.1: recording storage with presigned URLs, the fake Retell API (agent
config), the notification receiver, and `serve` itself as a subprocess with the test backends
as a plugin (``VOICEREPLAY_PLUGINS=tests.fakes.backends``). Waits poll with generous limits that
only guard against a hang; nothing asserts how long anything took.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO
from tests.fakes.retell_api import FakeRetellAPI
from tests.fakes.retell_samples import sample_agent, sample_llm
from tests.fakes.server import RunningServer, serve
from tests.fakes.webhooks import (
    DEMO,
    DEMO_CALL,
    Receiver,
    Storage,
    post_retell,
    post_vapi,
    retell_events,
    vapi_report,
)
from voicereplay.config import Settings
from voicereplay.store import Store
from voicereplay.store.jobs import Job

pytestmark = pytest.mark.integration

HANG = 180.0  # seconds before a wait gives up: a hang guard, not a speed check
SECRET = "vapi-hook-secret"
RETELL_KEY = "test-retell-key"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """The servers around one `voicereplay serve`, and the serve process itself."""

    def __init__(self, tmp: Path, storage: RunningServer, receiver: Receiver,
                 receiver_url: str, retell_url: str) -> None:
        self.tmp, self.storage_server, self.receiver = tmp, storage, receiver
        self.home = tmp / "home"
        self.rules = tmp / "rules.yaml"
        self.rules.write_text(RULES.format(prompt=DEMO / "fixed-prompt.txt",
                                           receiver=receiver_url), encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("VOICEREPLAY_") and not k.endswith("_API_KEY")}
        env.update(VOICEREPLAY_HOME=str(self.home), VOICEREPLAY_PLUGINS="tests.fakes.backends",
                   VOICEREPLAY_VAPI_WEBHOOK_SECRET=SECRET, RETELL_API_KEY=RETELL_KEY,
                   RETELL_BASE_URL=retell_url, VOICEREPLAY_JOB_ATTEMPTS="1",
                   VOICEREPLAY_RULES=str(self.rules),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                            env.get("PYTHONPATH")])))
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.starts = 0

    def start(self, *args: str) -> None:
        log = (self.tmp / f"serve-{self.starts}.log").open("wb")
        self.starts += 1
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voicereplay", "serve", "--port", str(self.port), *args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        self.wait("serve to answer", self._up)

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/jobs", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.tmp.glob("serve-*.log")))

    def wait(self, what: str, check: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            if self.proc is not None and self.proc.poll() not in (None, -signal.SIGKILL):
                pytest.fail(f"serve exited {self.proc.returncode}:\n{self.logs()}")
            time.sleep(0.2)
        pytest.fail(f"gave up waiting for {what}:\n{self.logs()}")

    def store(self) -> Store:
        return Store.from_settings(Settings.for_home(self.home))

    def jobs(self, kind: str) -> list[Job]:
        return self.store().jobs.list(kind=kind, limit=None)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "voicereplay", *args], env=self.env,
                              cwd=REPO, capture_output=True, text=True, timeout=HANG)


RULES = """\
version: 1
rules:
  - name: failed-calls
    description: calls the provider's analysis marks unsuccessful
    when:
      success: false
    replay:
      prompt_file: {prompt}
      stt: fake-stt
      tts: fake-tts
      caller_tts: fake-tts
      llm: fake-llm
      checks:
        - type: tool_not_called
          tool: issue_refund
    notify:
      - url: {receiver}/hook/team
      - url: {receiver}/hook/slack
        format: slack
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    storage, receiver, retell = Storage(), Receiver(), FakeRetellAPI(RETELL_KEY)
    retell.add_agent(sample_agent())
    retell.add_llm(sample_llm())
    with serve(storage.app) as storage_server, serve(receiver.app) as receiver_server, \
            serve(retell) as retell_server:
        stack = Stack(tmp_path, storage_server, receiver, receiver_server.url,
                      retell_server.url)
        stack.storage = storage  # type: ignore[attr-defined]
        try:
            yield stack
        finally:
            stack.stop()


def _notified(stack: Stack, name: str, count: int = 1) -> list[dict[str, Any]]:
    return stack.wait(f"{count} notification(s) at /hook/{name}",
                      lambda: (lambda got: got if len(got) >= count else None)(
                          stack.receiver.received(name)))


def test_a_vapi_end_of_call_report_is_replayed_and_the_team_notified(stack: Stack) -> None:
    stack.start()
    report = vapi_report(stack.storage, stack.storage_server.url)  # type: ignore[attr-defined]
    answer = post_vapi(stack.url, report, SECRET)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "stored"

    [summary] = _notified(stack, "team")
    [slack] = _notified(stack, "slack")
    store = stack.store()
    call = store.get_call(DEMO_CALL, "vapi")
    assert {r.kind for r in call.recordings if r.sha256} >= {"stereo", "customer"}
    assert store.snapshot_for_call(DEMO_CALL, "vapi") is not None
    [event] = store.events.list(provider="vapi", call_id=DEMO_CALL)
    assert (event.event_type, event.status) == ("end-of-call-report", "PROCESSED")
    [replay_job] = stack.jobs("replay")
    assert replay_job.status == "COMPLETED" and replay_job.trigger is not None
    assert replay_job.trigger["rule"] == "failed-calls"

    assert summary["rule"] == "failed-calls" and summary["status"] == "completed"
    assert summary["call"]["id"] == DEMO_CALL
    [replay] = summary["replays"]
    assert replay["id"] == replay_job.replay_ids[0]
    link = replay["url"]
    assert link == f"{stack.url}/replays/{replay['id']}"
    assert httpx.get(link, timeout=30).status_code == 200  # the comparison page exists
    assert "failed-calls" in slack["text"]

    # A redelivery (new presigned URLs, same event) is acknowledged and queues nothing.
    again = post_vapi(stack.url, vapi_report(stack.storage,  # type: ignore[attr-defined]
                                             stack.storage_server.url), SECRET)
    assert again.json()["status"] == "duplicate"
    time.sleep(1.0)  # give a wrongly queued job the chance to appear (not a speed check)
    assert len(stack.jobs("replay")) == 1 and len(stack.jobs("event")) == 1
    assert store.events.list(provider="vapi", call_id=DEMO_CALL)[0].deliveries == 2


def test_retell_call_ended_and_call_analyzed_make_one_call_and_one_replay(stack: Stack
                                                                            ) -> None:
    stack.start()
    ended, analysed = retell_events(stack.storage,  # type: ignore[attr-defined]
                                    stack.storage_server.url)
    assert post_retell(stack.url, ended, RETELL_KEY).json()["status"] == "stored"
    # call_ended carries no analysis: no rule matches on it yet
    stack.wait("the call_ended event", lambda: [
        e for e in stack.store().events.list(provider="retell") if e.status != "PENDING"])
    assert stack.jobs("replay") == []
    assert post_retell(stack.url, analysed, RETELL_KEY).json()["status"] == "stored"

    [summary] = _notified(stack, "team")
    assert summary["call"]["id"] == "call_hook1" and summary["rule"] == "failed-calls"
    store = stack.store()
    call = store.get_call("call_hook1", "retell")
    assert call.analysis.success is False  # the analysed body, stored once
    assert [e.status for e in store.events.list(provider="retell")] == ["PROCESSED"] * 2
    assert len(stack.jobs("replay")) == 1
    # a signature from another key is refused, and nothing is stored
    assert post_retell(stack.url, analysed, "another-key").status_code == 401
    assert len(store.events.list(provider="retell")) == 2


def test_a_missing_recording_fails_the_job_clearly_and_a_retry_succeeds(stack: Stack
                                                                          ) -> None:
    stack.storage_server.fail(r"^/rec/", status=404, times=10_000)
    stack.start()
    report = vapi_report(stack.storage, stack.storage_server.url)  # type: ignore[attr-defined]
    assert post_vapi(stack.url, report, SECRET).status_code == 200
    failed = stack.wait("the event job to fail", lambda: [
        j for j in stack.jobs("event") if j.status == "FAILED"])[0]
    assert failed.error_type == "RecordingError"
    assert "could not be downloaded" in (failed.error or "") and "404" in (failed.error or "")
    assert "X-Amz-Signature" not in (failed.error or "")  # a presigned URL's secret part
    store = stack.store()
    assert store.get_call(DEMO_CALL, "vapi").recordings == []  # the call is kept
    [event] = store.events.list(provider="vapi")
    assert event.status == "FAILED" and "404" in (event.error or "")
    assert stack.jobs("replay") == []

    stack.storage_server.faults.clear()  # the recording is back
    retried = stack.cli("jobs", "retry", failed.id)
    assert retried.returncode == 0, retried.stderr
    [summary] = _notified(stack, "team")
    assert summary["status"] == "completed"
    assert {r.kind for r in stack.store().get_call(DEMO_CALL, "vapi").recordings} >= {
        "stereo"}
    assert stack.store().events.get(event.id).status == "PROCESSED"


def test_an_event_acknowledged_before_a_crash_is_processed_after_the_restart(stack: Stack
                                                                              ) -> None:
    stack.start("--no-worker")  # nothing runs the event before the kill
    report = vapi_report(stack.storage, stack.storage_server.url)  # type: ignore[attr-defined]
    assert post_vapi(stack.url, report, SECRET).json()["status"] == "stored"
    stack.kill()  # right after acknowledging

    stack.start()
    [summary] = _notified(stack, "team")
    assert summary["call"]["id"] == DEMO_CALL
    assert [j.status for j in stack.jobs("event")] == ["COMPLETED"]
