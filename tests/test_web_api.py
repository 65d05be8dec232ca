"""The JSON API under ``/api/`` with FastAPI's TestClient against a temporary store: every
endpoint, and bad input giving the documented ``{"error": {"type", "message"}}`` with the
status from the error tree. The demo call is imported from its folder; replays run with the
fake backends (tests/fakes/backends.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fakes.server import serve
from tests.fakes.vapi_api import make_vapi_app
from voicereplay import pipeline
from voicereplay.config import Settings
from voicereplay.models import Replay
from voicereplay.pipeline import CallRef, ReplayRequest
from voicereplay.store import Store
from voicereplay.web import create_app

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"
FAKES = {"stt": "fake-stt", "tts": "fake-tts", "caller_tts": "fake-tts", "llm": "fake-llm"}
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def store() -> Store:
    return Store.from_settings(Settings.from_env())


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(Settings.from_env(), store=store)) as c:
        yield c


def import_demo(store: Store) -> None:
    with pipeline.open_provider("files", directory=pipeline.demo_dir()) as source:
        [outcome] = pipeline.import_calls(store, source, [DEMO_CALL])
    assert outcome.ok, outcome.error


def replay_demo(store: Store, **fields: Any) -> Replay:
    request = ReplayRequest(call=CallRef(call_id=DEMO_CALL), **{**FAKES, **fields})
    [result] = pipeline.run_call(store, request, settings=Settings.from_env())
    return result.replay


def error(response: Any, status: int, kind: str | None = None) -> str:
    """The error's message, after checking the status and the JSON shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    if kind is not None:
        assert body["error"]["type"] == kind, body
    return str(body["error"]["message"])


# -- calls ------------------------------------------------------------------------------------


def test_calls_list_searches_filters_and_pages(client: TestClient, store: Store) -> None:
    empty = client.get("/api/calls").json()
    assert empty == {"items": [], "total": 0, "limit": 50, "offset": 0}
    import_demo(store)
    page = client.get("/api/calls").json()
    assert page["total"] == 1 and page["items"][0]["call_id"] == DEMO_CALL
    assert set(page["items"][0]["recording_kinds"]) == {"stereo", "customer", "agent", "mixed"}

    def found(**params: Any) -> list[str]:
        response = client.get("/api/calls", params=params)
        assert response.status_code == 200, response.text
        return [c["call_id"] for c in response.json()["items"]]

    assert found(q="ORDER NUMBER") == [DEMO_CALL]  # transcript text, any case
    assert found(q=DEMO_CALL[:8]) == [DEMO_CALL]
    assert found(q="no such words") == []
    assert found(provider="vapi", flagged=True) == [DEMO_CALL]  # the analysis says it failed
    assert found(flagged=False) == [] and found(success=True) == []
    assert found(ended_reason="assistant-said-end-call-phrase") == [DEMO_CALL]
    assert found(ended_reason="customer-ended-call") == []
    assert found(has_replays=True) == [] and found(has_replays=False) == [DEMO_CALL]
    assert found(since="2020-01-01T00:00:00Z", until="2100-01-01") == [DEMO_CALL]
    assert found(since="2100-01-01T00:00:00Z") == []
    assert found(offset=1) == [] and client.get("/api/calls", params={
        "offset": 1}).json()["total"] == 1

    assert "limit" in error(client.get("/api/calls", params={"limit": 0}), 422,
                            "ValidationError")
    error(client.get("/api/calls", params={"provider": "twilio"}), 422, "ValidationError")
    error(client.get("/api/calls", params={"flagged": "maybe"}), 422, "ValidationError")
    error(client.get("/api/calls", params={"since": "yesterday"}), 422, "ValidationError")
    assert "before" in error(client.get("/api/calls", params={
        "since": "2025-01-02", "until": "2025-01-01"}), 400, "ConfigError")


def test_a_call_its_snapshot_and_its_history(client: TestClient, store: Store) -> None:
    import_demo(store)
    detail = client.get(f"/api/calls/{DEMO_CALL}").json()
    call = detail["call"]
    assert call["call_id"] == DEMO_CALL and call["analysis"]["success"] is False
    assert any(t["tool_calls"] for t in call["turns"])  # tool calls are in the transcript
    assert all("path" not in r for r in call["recordings"])  # no server paths
    assert detail["audio"]["stereo"] == f"/files/calls/vapi/{DEMO_CALL}/stereo"
    assert client.get(f"/api/calls/{DEMO_CALL}", params={"provider": "vapi"}).status_code == 200
    assert client.get(f"/api/calls/vapi:{DEMO_CALL}").status_code == 200

    snapshot = client.get(f"/api/snapshots/{detail['snapshot_id']}").json()
    assert snapshot["id"] == detail["snapshot_id"]
    assert snapshot["system_prompt"].startswith("You are Sam")
    assert client.get(f"/api/snapshots/{detail['snapshot_id'][:8]}").json() == snapshot

    assert client.get(f"/api/calls/{DEMO_CALL}/history").json() == []
    replay = replay_demo(store, report={"figures": None})
    [entry] = client.get(f"/api/calls/{DEMO_CALL}/history").json()
    assert entry["kind"] == "replay" and entry["status"] == "COMPLETED"
    assert entry["replay_ids"] == [replay.id]
    assert client.get(f"/api/calls/{DEMO_CALL}/history", params={"status": "failed"}).json() \
        == []
    assert client.get("/api/calls", params={"has_replays": True}).json()["total"] == 1

    assert "calls import" in error(client.get("/api/calls/nope-404"), 404, "NotStoredError")
    error(client.get("/api/calls/nope-404/history"), 404, "NotStoredError")
    error(client.get(f"/api/calls/{DEMO_CALL}", params={"provider": "retell"}), 404,
          "NotStoredError")
    error(client.get(f"/api/calls/{DEMO_CALL}/history", params={"status": "stuck"}), 400,
          "ConfigError")
    error(client.get("/api/snapshots/0000000000000000"), 404, "NotStoredError")


def test_import_calls_from_a_provider_with_the_servers_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"provider": "vapi", "call_ids": [DEMO_CALL, "missing-call"]}
    with TestClient(create_app(Settings.from_env())) as client:  # no key configured
        assert "VAPI_API_KEY" in error(client.post("/api/calls/import", json=body), 400,
                                       "ConfigError")
    with serve(make_vapi_app([FIXTURES / "demo"])) as server:
        monkeypatch.setenv("VAPI_BASE_URL", server.url)
        monkeypatch.setenv("VAPI_API_KEY", "test-vapi-key")
        with TestClient(create_app(Settings.from_env())) as client:
            outcomes = client.post("/api/calls/import", json=body).json()["outcomes"]
            by_id = {o["source"]: o for o in outcomes}
            assert by_id[DEMO_CALL]["status"] == "created"
            assert sorted(by_id[DEMO_CALL]["recordings"]) == ["agent", "customer", "mixed",
                                                              "stereo"]
            assert by_id["missing-call"]["status"] == "failed"
            assert by_id["missing-call"]["error"]
            again = client.post("/api/calls/import", json={**body, "call_ids": [DEMO_CALL]})
            assert again.json()["outcomes"][0]["status"] == "unchanged"
            assert client.get("/api/calls").json()["total"] == 1
            # Keys are the server's: a key in the body is refused, not used.
            error(client.post("/api/calls/import", json={**body, "api_key": "x"}), 422,
                  "ValidationError")
            error(client.post("/api/calls/import", json={**body, "call_ids": []}), 422)
            error(client.post("/api/calls/import", json={**body, "provider": "files"}), 422)
            error(client.post("/api/calls/import", json={**body, "call_ids": [" "]}), 400)


# -- replays ----------------------------------------------------------------------------------


def test_creating_a_replay_enqueues_a_job_once(client: TestClient, store: Store) -> None:
    import_demo(store)
    body = {"call": {"call_id": DEMO_CALL}, **FAKES, "system_prompt": "Be brief.",
            "idempotency_key": "web-test-1"}
    first = client.post("/api/replays", json=body)
    assert first.status_code == 202, first.text
    job = first.json()
    assert job["status"] == "PENDING" and job["idempotency_key"] == "web-test-1"
    assert job["call_id"] == DEMO_CALL and job["request"]["system_prompt"] == "Be brief."
    assert first.headers["location"] == f"/api/jobs/{job['id']}"
    again = client.post("/api/replays", json=body)
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    # Without a key, the same request is the same job too (the default key hashes it).
    plain = {k: v for k, v in body.items() if k != "idempotency_key"}
    assert client.post("/api/replays", json=plain).status_code == 202
    assert client.post("/api/replays", json=plain).status_code == 200
    assert len(client.get("/api/jobs").json()) == 2

    # Bad overrides fail now, with what was wrong.
    assert "temperature" in error(client.post("/api/replays", json={
        **plain, "set": ["model.temperature=hot"]}), 422, "OverrideError")
    error(client.post("/api/replays", json={**plain, "overrides": {"nonsense": 1}}), 422,
          "OverrideError")
    error(client.post("/api/replays", json={**plain, "runs": 0}), 422, "ValidationError")
    error(client.post("/api/replays", json={**plain, "mode": "freestyle"}), 422)
    error(client.post("/api/replays", json={"call": {}}), 422, "ValidationError")
    error(client.post("/api/replays", content=b"{not json",
                      headers={"content-type": "application/json"}), 422)
    # No keys in the body, no server paths.
    error(client.post("/api/replays", json={**plain, "llm_api_key": "sk-x"}), 422,
          "ValidationError")
    error(client.post("/api/replays", json={**plain, "call": {
        "call_id": DEMO_CALL, "directory": "/etc"}}), 400, "ConfigError")
    error(client.post("/api/replays", json={**plain, "report": {"out_dir": "/tmp/x"}}), 400,
          "ConfigError")
    error(client.post("/api/replays", json={**plain, "idempotency_key": ""}), 422)
    assert len(client.get("/api/jobs").json()) == 2  # nothing else was enqueued


def test_replays_their_list_and_comparison(client: TestClient, store: Store) -> None:
    import_demo(store)
    replay = replay_demo(store, report={"figures": None})
    other = replay_demo(store, report={"figures": None}, system_prompt="Say hello only.")
    got = client.get(f"/api/replays/{replay.id}").json()
    assert got["id"] == replay.id and got["call_id"] == DEMO_CALL
    assert got["turns"] and all("path" not in r for r in got["recordings"])
    assert got["audio"]["mixed"] == f"/files/replays/{replay.id}/mixed"
    assert got["reports"]["report.json"] == f"/files/replays/{replay.id}/report/report.json"
    assert client.get(f"/api/replays/{replay.id[:8]}").json()["id"] == replay.id

    listed = client.get("/api/replays", params={"call": DEMO_CALL}).json()
    assert {r["id"] for r in listed} == {replay.id, other.id}
    assert client.get("/api/replays", params={"status": "failed"}).json() == []
    assert len(client.get("/api/replays").json()) == 2

    comparison = client.get(f"/api/replays/{other.id}/comparison").json()
    assert comparison["replay"]["id"] == other.id and comparison["call_id"] == DEMO_CALL
    assert "system_prompt" in comparison["replay"]["overrides"]  # what the override changed
    assert comparison["alignment"] and comparison["metrics"]
    assert comparison["schema_version"]  # the report.json shape

    error(client.get("/api/replays/ffffffffffff"), 404, "NotStoredError")
    error(client.get("/api/replays/ffffffffffff/comparison"), 404, "NotStoredError")
    error(client.get("/api/replays", params={"call": "nope"}), 404, "NotStoredError")
    error(client.get("/api/replays", params={"status": "done"}), 422)


# -- jobs -------------------------------------------------------------------------------------


def test_jobs_cancel_and_retry_say_when_the_state_does_not_allow_it(
        client: TestClient, store: Store) -> None:
    import_demo(store)
    job = client.post("/api/replays", json={"call": {"call_id": DEMO_CALL}, **FAKES}).json()
    assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "PENDING"
    assert [j["id"] for j in client.get("/api/jobs", params={"call": DEMO_CALL}).json()] \
        == [job["id"]]
    assert "PENDING" in error(client.post(f"/api/jobs/{job['id']}/retry", json={}), 409,
                              "JobStateError")
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel", json={})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert client.get("/api/jobs", params={"status": "cancelled"}).json()[0]["id"] == job["id"]
    assert "CANCELLED" in error(client.post(f"/api/jobs/{job['id']}/cancel", json={}), 409,
                                "JobStateError")
    retried = client.post(f"/api/jobs/{job['id'][:10]}/retry", json={})
    assert retried.status_code == 200 and retried.json()["status"] == "PENDING"
    assert retried.json()["attempt"] == 0

    error(client.get("/api/jobs/0123456789ab"), 404, "NotStoredError")
    error(client.post("/api/jobs/0123456789ab/cancel", json={}), 404, "NotStoredError")
    error(client.post("/api/jobs/0123456789ab/retry", json={}), 404, "NotStoredError")
    error(client.get("/api/jobs", params={"status": "stuck"}), 400, "ConfigError")
    error(client.get("/api/jobs", params={"limit": 100000}), 422)


def test_the_openapi_document_lists_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/api/calls", "get"), ("/api/calls/import", "post"), ("/api/calls/{call_id}", "get"),
        ("/api/calls/{call_id}/history", "get"), ("/api/snapshots/{snapshot_id}", "get"),
        ("/api/replays", "post"), ("/api/replays", "get"), ("/api/replays/{replay_id}", "get"),
        ("/api/replays/{replay_id}/comparison", "get"), ("/api/jobs", "get"),
        ("/api/jobs/{job_id}", "get"), ("/api/jobs/{job_id}/cancel", "post"),
        ("/api/jobs/{job_id}/retry", "post"),
        ("/files/calls/{provider}/{call_id}/{track}", "get"),
        ("/files/replays/{replay_id}/{track}", "get"),
        ("/files/replays/{replay_id}/report/{name}", "get"),
    ]:
        assert method in paths[path], path
        assert paths[path][method].get("description") or paths[path][method].get("summary")
    assert client.get("/docs").status_code == 200
