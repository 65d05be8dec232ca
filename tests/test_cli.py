"""The CLI as a user drives it: import exported files, list, show, snapshots, diffs, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voicereplay import pipeline
from voicereplay.cli import app
from voicereplay.config import Settings
from voicereplay.store import Store

runner = CliRunner()

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.models
def test_demo_replays_the_audio_path_then_the_fixed_prompt_offline() -> None:
    code, out, err = run("demo")
    assert code == 0, err
    assert DEMO_CALL in out
    assert "Step 1 of 2" in out and "Step 2 of 2" in out
    assert "production agent → fixed prompt" in out and "check_status" in out
    assert "transcript: baseline vs replay" in out and "stereo.wav" in out
    assert "divergence" in out and "response latency p90" in out and "report.md" in out
    # the embedded model's limits are said plainly, with the command for a real model
    assert "too small to choose tools" in out and "--llm-base-url http://localhost:11434/v1" in out
    store = Store.from_settings(Settings.from_env())
    assert store.count_calls() == 1
    rows = store.replays.list(call_id=DEMO_CALL)
    assert len(rows) == 2 and all(r.status == "completed" for r in rows)
    by_llm = {store.replays.get(r.id).backends.llm: r for r in rows}
    assert set(by_llm) == {"recorded", "llama-cpp"}
    fixed = store.replays.get(by_llm["llama-cpp"].id)
    folder = Path(fixed.recordings[0].path or "").parent
    assert {"report.json", "report.md", "junit.xml", "latency.png", "waveform.png"} <= {
        p.name for p in folder.iterdir()}
    # step 1 reproduces the call: the audio path alone, no overrides
    recorded = pipeline.show_replay(store, by_llm["recorded"].id)
    assert recorded.replay.overrides == {}
    assert recorded.comparison.fidelity.score == pytest.approx(1.0)


def test_import_directory_skips_a_bad_file_and_imports_the_rest(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    exported = tmp_path / "export"
    shutil.copytree(fixtures_dir / "vapi", exported)
    (exported / "broken.json").write_text('{"id": "x", "messages": [')
    (exported / "not-a-call.json").write_text('{"hello": "world"}')

    code, out, err = run("calls", "import", "--provider", "files", "--dir", str(exported),
                         "--json")
    assert code == 1  # some files failed
    outcomes = {o["source"]: o for o in json.loads(out)}
    assert outcomes["broken.json"]["status"] == "failed"
    assert "not valid JSON" in outcomes["broken.json"]["error"]
    assert outcomes["not-a-call.json"]["status"] == "failed"
    good = [o for o in outcomes.values() if o["status"] == "created"]
    assert len(good) == 3
    assert all(o["snapshot_id"] for o in good)
    assert any(o["recordings"] for o in good)

    code, out, _ = run("calls", "list", "--json")
    assert code == 0 and len(json.loads(out)) == 3

    # importing again changes nothing
    code, out, _ = run("calls", "import", "--dir", str(exported), "--json")
    statuses = {o["source"]: o["status"] for o in json.loads(out)}
    assert {s for k, s in statuses.items() if k.startswith("vapi")} == {"unchanged"}


def test_show_json_prints_the_normalized_call_and_snapshot(fixtures_dir: Path) -> None:
    assert run("calls", "import", "--dir", str(fixtures_dir / "demo"))[0] == 0
    code, out, _ = run("calls", "show", DEMO_CALL, "--json")
    assert code == 0
    call = json.loads(out)
    assert call["provider"] == "vapi" and call["call_id"] == DEMO_CALL
    refund = [c for t in call["turns"] for c in t["tool_calls"] if c["name"] == "issue_refund"]
    assert refund and refund[0]["arguments"]["order_id"] == "4417"
    assert {r["kind"] for r in call["recordings"]} == {"stereo", "customer", "agent", "mixed"}
    assert all(Path(r["path"]).is_file() for r in call["recordings"])

    code, out, _ = run("snapshot", "show", DEMO_CALL, "--json")
    snap = json.loads(out)
    assert code == 0
    assert "{{" not in snap["system_prompt"] and "Acme Audio" in snap["system_prompt"]
    assert {t["name"] for t in snap["tools"]} >= {"check_status", "issue_refund"}
    code, out, _ = run("snapshot", "show", snap["id"][:8], "--json")
    assert code == 0 and json.loads(out)["id"] == snap["id"]

    code, out, _ = run("calls", "show", DEMO_CALL)
    assert code == 0 and "issue_refund" in out and "recordings" in out


def test_snapshot_diff_between_calls_and_against_overrides(fixtures_dir: Path) -> None:
    run("calls", "import", "--dir", str(fixtures_dir / "demo"))
    run("calls", "import", "--dir", str(fixtures_dir / "retell"))
    retell = json.loads(run("calls", "list", "--provider", "retell", "--json")[1])[0]["call_id"]
    code, out, _ = run("snapshot", "diff", DEMO_CALL, retell, "--json")
    assert code == 0
    paths = {c["path"] for c in json.loads(out)["changes"]}
    assert "system_prompt" in paths and "model.name" in paths

    code, out, _ = run("snapshot", "diff", DEMO_CALL, "--set", "model.temperature=0",
                       "--prompt-file", str(fixtures_dir / "demo" / "fixed-prompt.txt"),
                       "--json")
    assert code == 0
    changes = {c["path"]: c for c in json.loads(out)["changes"]}
    assert set(changes) == {"model.temperature", "system_prompt"}
    assert changes["model.temperature"]["after"] == 0
    assert "check_status" in changes["system_prompt"]["after"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("calls", "show", "no-such-call"), 4, "voicereplay calls import no-such-call"),
        (("calls", "import", "--provider", "files"), 2, "needs --dir"),
        (("calls", "import", "--provider", "nope", "x"), 2,
         "unknown provider 'nope'; known: files, retell, vapi"),
        (("calls", "import", "x", "--since", "yesterday-ish"), 2, "--since"),
        (("snapshot", "diff", "a"), 2, "give a second call/snapshot id"),
        (("calls", "import", "abc"), 2, "set VAPI_API_KEY or pass --api-key"),
        (("calls", "import", "abc", "--provider", "retell"), 2, "set RETELL_API_KEY"),
    ],
)
def test_errors_are_one_clear_line(args: tuple[str, ...], code: int, message: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # a closed local port stands in for Vapi so nothing leaves the machine
    monkeypatch.setenv("VAPI_BASE_URL", "http://127.0.0.1:9")
    exit_code, _, err = run(*args)
    assert exit_code == code, err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_version() -> None:
    from voicereplay import __version__

    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"voicereplay {__version__}"
