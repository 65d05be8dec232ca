"""The web app's frame: the factory, error pages and JSON errors, `serve`'s safety check, and
the embedded job worker (FastAPI's TestClient against a temporary store)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from voicereplay import pipeline
from voicereplay.cli import app as cli_app
from voicereplay.config import Settings
from voicereplay.pipeline import CallRef, ReplayRequest
from voicereplay.store import Store
from voicereplay.web import create_app

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"


def test_pages_and_api_errors_say_what_happened() -> None:
    client = TestClient(create_app(Settings.from_env()))
    page = client.get("/calls")
    assert page.status_code == 200 and "No calls yet" in page.text
    missing = client.get("/api/jobs/0123456789ab")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "NotStoredError"
    bad = client.get("/api/jobs", params={"status": "stuck"})
    assert bad.status_code == 400 and "stuck" in bad.json()["error"]["message"]
    nowhere = client.get("/no/such/page")
    assert nowhere.status_code == 404 and "Back to the calls" in nowhere.text
    assert "Traceback" not in nowhere.text


def test_serve_refuses_to_listen_beyond_loopback_without_a_token() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "VOICEREPLAY_API_TOKEN" in result.stderr


def test_the_embedded_worker_runs_jobs_while_the_app_runs() -> None:
    settings = Settings.from_env()
    store = Store.from_settings(settings)
    app = create_app(settings, store=store, worker=True, concurrency=1)
    request = ReplayRequest(call=CallRef(call_id=DEMO_CALL, directory=pipeline.demo_dir()),
                            stt="fake-stt", tts="fake-tts", caller_tts="fake-tts",
                            llm="fake-llm", report={"figures": None})
    with TestClient(app) as client:
        job, _ = app.state.queue.submit(request)
        deadline = time.monotonic() + 120  # a hang guard, not a speed check
        while client.get(f"/api/jobs/{job.id}").json()["status"] != "COMPLETED":
            assert time.monotonic() < deadline, client.get(f"/api/jobs/{job.id}").json()
            time.sleep(0.2)
    assert len(store.jobs.get(job.id).replay_ids) == 1
