"""End to end: `voicereplay calls import` against fake Vapi and Retell APIs over real HTTP.

The CLI is pointed at a fake provider on 127.0.0.1 through the same environment variables a
user sets (VAPI_BASE_URL / VAPI_API_KEY, RETELL_…); calls, snapshots and recordings land in the
store, a second import changes nothing, and provider failures become one clear line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fakes.retell_api import make_retell_app
from tests.fakes.server import RunningServer, serve
from tests.fakes.vapi_api import make_vapi_app
from voicereplay.cli import app
from voicereplay.config import Settings
from voicereplay.store import Store

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"
BOOKING_CALL = "f3352433-32b4-5484-8824-ecaafb04a309"
RETELL_CALL = "call_4975968f2a8c5d4a1c142895b2a8"

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def vapi(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    with serve(make_vapi_app([FIXTURES / "demo", FIXTURES / "vapi"])) as server:
        monkeypatch.setenv("VAPI_BASE_URL", server.url)
        monkeypatch.setenv("VAPI_API_KEY", "test-vapi-key")
        yield server


@pytest.fixture
def retell(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    with serve(make_retell_app([FIXTURES / "retell"])) as server:
        monkeypatch.setenv("RETELL_BASE_URL", server.url)
        monkeypatch.setenv("RETELL_API_KEY", "test-retell-key")
        yield server


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_vapi_call_by_id_with_assistant_and_recordings(vapi: RunningServer) -> None:
    code, out, err = run("calls", "import", DEMO_CALL, "--json")
    assert code == 0, err
    [outcome] = json.loads(out)
    assert outcome["status"] == "created" and outcome["snapshot_id"]
    assert sorted(outcome["recordings"]) == ["agent", "customer", "mixed", "stereo"]
    # the assistant came from GET /assistant/{id}; the audio through 302s, without the key
    assert vapi.seen(r"^/assistant/")
    assert vapi.seen(r"^/signed/") or vapi.seen(r"-recording$")

    call = Store.from_settings(Settings.from_env()).get_call(DEMO_CALL)
    stereo = call.recording("stereo")
    assert stereo is not None and stereo.path is not None
    assert stereo.sha256 == _sha(FIXTURES / "demo" / "demo-refund.stereo.wav")
    assert _sha(Path(stereo.path)) == stereo.sha256

    downloads = len(vapi.seen(r"-recording$"))
    assert downloads == 4
    code, out, _ = run("calls", "import", DEMO_CALL, "--json")
    assert code == 0 and json.loads(out)[0]["status"] == "unchanged"
    assert len(vapi.seen(r"-recording$")) == downloads  # stored audio is not fetched again
    blobs = [p for p in Settings.from_env().artifacts_dir.rglob("*.wav")]
    assert len(blobs) == 4


def test_vapi_listing_with_limit_and_window(vapi: RunningServer) -> None:
    code, out, err = run("calls", "import", "--provider", "vapi", "--since", "2025-06-01",
                         "--until", "2025-07-01", "--json")
    assert code == 0, err
    ids = {o["call_id"] for o in json.loads(out)}
    assert ids == {DEMO_CALL, BOOKING_CALL}  # the squad call (May) is outside the window

    code, out, _ = run("calls", "list", "--provider", "vapi", "--json")
    assert {row["call_id"] for row in json.loads(out)} == ids


def test_vapi_retries_429_and_500_then_imports(vapi: RunningServer) -> None:
    vapi.fail(r"^/call/" + DEMO_CALL + "$", status=429, headers={"Retry-After": "0"})
    vapi.fail(r"^/call/" + DEMO_CALL + "$", status=500)
    code, out, err = run("calls", "import", DEMO_CALL, "--no-recordings", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["status"] == "created"
    assert len(vapi.seen(r"^/call/" + DEMO_CALL + "$")) == 3


@pytest.mark.parametrize(
    ("status", "exit_code", "words"),
    [(401, 3, "VAPI_API_KEY"), (404, 4, "not found")],
)
def test_vapi_errors_are_one_line_and_store_nothing(
    vapi: RunningServer, status: int, exit_code: int, words: str
) -> None:
    vapi.fail(r"^/call/", status=status)
    code, _, err = run("calls", "import", DEMO_CALL)
    assert code == exit_code
    assert DEMO_CALL in err and words in err
    assert "test-vapi-key" not in err
    assert Store.from_settings(Settings.from_env()).count_calls() == 0


def test_wrong_vapi_key_stops_a_listing(vapi: RunningServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAPI_API_KEY", "wrong-key")
    code, _, err = run("calls", "import", "--provider", "vapi")
    assert code == 3
    assert "VAPI_API_KEY" in err and "wrong-key" not in err
    assert len(err.strip().splitlines()) == 1


def test_retell_call_with_agent_llm_and_multichannel_audio(retell: RunningServer) -> None:
    code, out, err = run("calls", "import", RETELL_CALL, "--provider", "retell", "--json")
    assert code == 0, err
    [outcome] = json.loads(out)
    assert outcome["status"] == "created"
    assert sorted(outcome["recordings"]) == ["mixed", "stereo"]
    assert retell.seen(r"^/get-agent/") and retell.seen(r"^/get-retell-llm/")

    code, out, _ = run("snapshot", "show", RETELL_CALL, "--json")
    snapshot = json.loads(out)
    assert code == 0
    assert snapshot["source"]["agent_version"] == "3" and snapshot["source"]["llm_version"] == "2"
    assert snapshot["system_prompt"] and "{{" not in snapshot["system_prompt"]

    call = Store.from_settings(Settings.from_env()).get_call(RETELL_CALL, "retell")
    stereo = call.recording("stereo")
    assert stereo is not None
    assert stereo.sha256 == _sha(FIXTURES / "retell" / "retell-support.stereo.wav")


def test_retell_listing_imports_every_call(retell: RunningServer) -> None:
    code, out, err = run("calls", "import", "--provider", "retell", "--limit", "5", "--json")
    assert code == 0, err
    assert {o["status"] for o in json.loads(out)} == {"created"}
    assert len(json.loads(out)) == 2
