"""The one pipeline every face uses: ReplayRequest → run_call → ReplayResult, with fake backends.

The fake STT/LLM/TTS (tests/fakes/backends.py) are chosen by name, as a plugin's would be, so
these tests exercise import → snapshot → overrides → replay → compare → reports without loading
a model; the real models run in test_call_e2e.py and the demo test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.fakes.server import serve
from tests.fakes.vapi_api import make_vapi_app
from voicereplay import pipeline
from voicereplay.cli import app
from voicereplay.config import Settings
from voicereplay.errors import AuthError, ConfigError, OverrideError, ProviderUnavailable
from voicereplay.pipeline import CallRef, ReplayRequest, Secrets
from voicereplay.store import Store

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"
FAKES = {"stt": "fake-stt", "tts": "fake-tts", "caller_tts": "fake-tts", "llm": "fake-llm"}
runner = CliRunner()


def demo_request(**fields: Any) -> ReplayRequest:
    return ReplayRequest(call=CallRef(call_id=DEMO_CALL, directory=pipeline.demo_dir()),
                         **{**FAKES, **fields})


@pytest.fixture
def store() -> Store:
    return Store.from_settings(Settings.from_env())


# -- the request ------------------------------------------------------------------------------
def test_a_request_is_plain_data_without_secrets(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_bytes("\ufeffYou are Sam. Never refund without a reason.\n".encode())
    checks = tmp_path / "checks.yaml"
    checks.write_text("- {type: tool_not_called, tool: issue_refund}\n")
    request = ReplayRequest.from_files(
        CallRef(call_id="c1", provider="vapi"), prompt_file=prompt, checks_file=checks,
        set=["model.max_tokens=150"], temperature=0.2, seed=3, runs=2, model="gpt-4o-mini",
        llm_base_url="http://localhost:11434/v1")
    assert request.system_prompt == "You are Sam. Never refund without a reason.\n"  # no BOM
    data = json.loads(request.model_dump_json())
    assert ReplayRequest.model_validate(data) == request  # a job payload round-trips
    assert "key" not in json.dumps(data).lower().replace("_key", "")
    overrides = request.agent_overrides()
    assert overrides.model is not None and overrides.model.max_tokens == 150
    assert overrides.model.temperature == 0.2 and overrides.model.seed is None  # seed: no change
    judged = ReplayRequest.checked(call={"call_id": "c1"}, checks=[
        {"type": "llm_judge", "rubric": "polite", "api_key": "sk-judge-secret"}])
    assert judged.checks[0].api_key == "sk-judge-secret"  # used for this run …
    assert "sk-judge-secret" not in judged.model_dump_json() + repr(judged)  # … never written
    secrets = Secrets(llm_api_key="sk-secret", provider_api_key="vapi-secret")
    assert "secret" not in repr(secrets) and secrets.model_dump() == {}


@pytest.mark.parametrize(("fields", "message"), [
    ({"runs": 0}, "runs"),
    ({"mode": "freestyle"}, "mode"),
    ({"unknown_option": 1}, "unknown_option"),
    ({"checks": [{"type": "llm_judge", "rubric": ""}]}, "rubric"),
    ({"set": ["model.nonsense=1"]}, "nonsense"),
])
def test_a_bad_request_is_one_config_error(fields: dict[str, Any], message: str) -> None:
    with pytest.raises((ConfigError, OverrideError), match=message) as error:
        ReplayRequest.checked(call={"call_id": "c1"}, **fields)
    assert error.value.exit_code == 2


def test_prompt_files_that_are_not_text_or_empty_are_refused(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Vous êtes Sam.".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        ReplayRequest.from_files(CallRef(call_id="c"), prompt_file=latin1)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        ReplayRequest.from_files(CallRef(call_id="c"), prompt_file=empty)
    overrides = tmp_path / "o.yaml"
    overrides.write_bytes(b"system_prompt: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        ReplayRequest.from_files(CallRef(call_id="c"), overrides_file=overrides)


# -- run_call ----------------------------------------------------------------------------------
def test_run_call_imports_replays_compares_and_writes_reports(store: Store) -> None:
    seen: list[pipeline.Progress] = []
    results = pipeline.run_call(store, demo_request(runs=2, seed=5, system_prompt="Be brief."),
                                seen.append)
    assert [r.replay.run_index for r in results] == [0, 1]
    assert len({r.replay.batch_id for r in results}) == 1
    stages = [p.stage for p in seen]
    assert stages[0] == "import" and "replay" in stages and stages[-1] == "compare"
    first = results[0]
    assert first.call.call_id == DEMO_CALL
    assert first.replay.backends.llm == "fake-llm" and first.replay.backends.stt == (
        "fake-stt")
    assert first.replay.overrides == {"system_prompt": "Be brief."}
    # the fake LLM calls check_status where production called issue_refund
    summaries = [c.summary for c in first.comparison.tool_changes]
    assert "turn 4: issue_refund → check_status" in summaries, summaries
    folder = Path(first.comparison.files["json"]).parent
    assert {"report.json", "report.md", "junit.xml", "latency.png", "waveform.png"} <= {
        p.name for p in folder.iterdir()}
    assert json.loads((folder / "report.json").read_text())["replay"]["id"] == first.replay.id
    assert len(store.replays.list(call_id=DEMO_CALL)) == 2

    # show_replay is the same comparison again, and rewrites nothing
    stamp = (folder / "report.json").stat().st_mtime_ns
    shown = pipeline.show_replay(store, first.replay.id[:8])
    assert shown.comparison.similarity == first.comparison.similarity
    assert shown.comparison.divergence == first.comparison.divergence
    assert (folder / "report.json").stat().st_mtime_ns == stamp


def test_a_stored_call_is_not_imported_again(store: Store) -> None:
    pipeline.run_call(store, demo_request())
    seen: list[pipeline.Progress] = []
    pipeline.run_call(store, ReplayRequest(call=CallRef(call_id=DEMO_CALL), **FAKES),
                      seen.append)
    assert "import" not in {p.stage for p in seen}
    assert store.count_calls() == 1


# -- errors keep their exit codes -------------------------------------------------------------
@pytest.mark.integration
def test_provider_errors_inside_call_keep_their_exit_codes(store: Store) -> None:
    with serve(make_vapi_app([pipeline.demo_dir()])) as server:
        ref = CallRef(call_id=DEMO_CALL, provider="vapi", base_url=server.url)
        with pytest.raises(AuthError) as auth:
            pipeline.run_call(store, ReplayRequest(call=ref, **FAKES),
                              secrets=Secrets(provider_api_key="wrong-key"))
        assert auth.value.exit_code == 3 and "wrong-key" not in str(auth.value)
        code = runner.invoke(app, ["call", DEMO_CALL, "--provider", "vapi", "--base-url",
                                   server.url, "--api-key", "wrong-key", "--stt", "fake-stt"])
        assert code.exit_code == 3, code.stderr
        assert "wrong-key" not in code.stderr and "VAPI_API_KEY" in code.stderr
        server.fail(f"/call/{DEMO_CALL}", status=500, times=5)
        with pytest.raises(ProviderUnavailable) as down:
            pipeline.run_call(store, ReplayRequest(call=ref, **FAKES),
                              secrets=Secrets(provider_api_key="test-vapi-key"))
        assert down.value.exit_code == 1

    assert store.count_calls() == 0


def test_cli_call_with_fake_backends_prints_valid_json() -> None:
    result = runner.invoke(app, [
        "call", DEMO_CALL, "--dir", str(pipeline.demo_dir()), "--stt", "fake-stt", "--tts",
        "fake-tts", "--caller-tts", "fake-tts", "--llm-backend", "fake-llm", "--runs", "2",
        "--json"])
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert [r["run_index"] for r in printed] == [0, 1]
    assert all("comparison" in r and r["backends"]["llm"] == "fake-llm" for r in printed)


def test_call_prints_import_warnings_that_outlast_the_status_line(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "export"
    shutil.copytree(pipeline.demo_dir(), folder)
    (folder / "demo-refund.stereo.wav").write_bytes(b"RIFF\x00\x10\x00\x00WAVEnot audio")
    result = runner.invoke(app, [
        "call", DEMO_CALL, "--dir", str(folder), "--stt", "fake-stt", "--tts", "fake-tts",
        "--caller-tts", "fake-tts", "--llm-backend", "fake-llm", "--json"])
    assert result.exit_code == 0, result.stderr
    assert "warning: stereo recording demo-refund.stereo.wav" in result.stderr
    assert "imported without it" in result.stderr
