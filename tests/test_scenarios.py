"""Regression scenarios: `voicereplay save` writes the demo replay as a scenario, and
`voicereplay test` replays it (fake backends, no models) against the production prompt (fails on
turn 4: issue_refund) and the fixed prompt via --agent (passes), in an empty store too."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.fakes import prompt_llm
from tests.web_demo import DEMO_CALL, replayed_demo
from voicereplay.audio import load_channels
from voicereplay.checks import ToolNotCalled
from voicereplay.cli import app
from voicereplay.errors import ConfigError
from voicereplay.scenario import load_scenario

prompt_llm.register()
runner = CliRunner()
FAKES = ["--stt", "fake-stt", "--tts", "fake-tts", "--caller-tts", "fake-tts"]
FIXED_PROMPT = Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "fixed-prompt.txt"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"  # VOICEREPLAY_HOME (tests/conftest.py)


@pytest.fixture
def saved(home: Path, tmp_path: Path) -> Path:
    """The demo call replayed with prompt-llm and a tool_not_called check, saved."""
    _settings, _store, replay_id = replayed_demo(
        home, llm="prompt-llm", checks=[ToolNotCalled(tool="issue_refund")])
    code, out, err = run("save", replay_id, "--dir", str(tmp_path / "scenarios"))
    assert code == 0, err
    path = Path(out.strip())
    assert path == tmp_path / "scenarios" / "vapi-dfed92e7.voicereplay.yaml"
    return path


@pytest.fixture
def fixed_agent(saved: Path, tmp_path: Path) -> Path:
    """An agent file exported from the call's snapshot, its prompt swapped for the fixed one."""
    code, _out, err = run("agent", "export", DEMO_CALL, "-o", str(tmp_path / "agent.yaml"))
    assert code == 0, err
    agent = yaml.safe_load((tmp_path / "agent.yaml").read_text())
    agent.pop("system_prompt")
    agent["prompt_file"] = "fixed-prompt.txt"
    shutil.copy(FIXED_PROMPT, tmp_path / "fixed-prompt.txt")
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(agent))
    return tmp_path / "agent.yaml"


def test_save_writes_a_readable_self_contained_scenario(saved: Path) -> None:
    text = saved.read_text()
    data = yaml.safe_load(text)
    assert data["schema_version"] == 1 and data["name"] == "vapi-dfed92e7"
    assert data["source"]["call_id"] == DEMO_CALL and data["source"]["provider"] == "vapi"
    assert data["checks"] == [{"type": "tool_not_called", "tool": "issue_refund"}]
    # checks near the top, the long prompt as a block scalar, the turns last
    keys = list(data)
    assert keys.index("checks") < keys.index("agent") < keys.index("turns") == len(keys) - 1
    assert "  system_prompt: |" in text
    callers = [t for t in data["turns"] if "caller" in t]
    assert [t["caller"] for t in callers][:2] == [
        "Hi, I ordered a pair of headphones last week and I'm wondering where my order is.",
        "Sure, it's 4417."]
    assert all(t["audio"].startswith("vapi-dfed92e7.voicereplay/caller-") for t in callers)
    # the recorded tool call and result (served as the mock) and the baseline's agent turns
    calls = [t for t in data["turns"] if "tool_calls" in t]
    assert calls[0]["tool_calls"][0]["name"] == "issue_refund"
    assert any(t.get("tool_result", {}).get("result") == '{"status":"refunded","amount":59.99}'
               for t in data["turns"])
    assert any("issued a refund of $59.99" in t.get("agent", "") for t in data["turns"])
    # each caller segment is the customer audio of its turn, padded
    first = load_channels(saved.parent / callers[0]["audio"])[0]
    assert first.duration == pytest.approx(callers[0]["end"] - callers[0]["start"] + 0.2,
                                           abs=0.02)
    scenario = load_scenario(saved)
    assert scenario.check_lines == [text.splitlines().index("- type: tool_not_called") + 1]
    assert "# agent turn 4\n- tool_calls:" in text  # a check's turn is easy to find


def test_the_production_prompt_fails_on_turn_4_and_the_fixed_prompt_passes(
        saved: Path, fixed_agent: Path, tmp_path: Path) -> None:
    junit, report = tmp_path / "out.xml", tmp_path / "out.json"
    code, out, err = run("test", str(saved.parent), "--llm", "prompt-llm", *FAKES,
                         "--junit", str(junit), "--json", str(report))
    assert code == 1, err
    assert "FAIL" in out and "issue_refund is not called" in out and "turn 4" in out
    data = json.loads(report.read_text())
    [scenario] = data["scenarios"]
    assert data["passed"] is False and scenario["verdict"] == "fail"
    [check] = scenario["failing_checks"]
    assert check["type"] == "tool_not_called" and check["turn"] == 4
    assert check["location"] == f"{saved}:{load_scenario(saved).check_lines[0]}"
    assert "issue_refund" in check["evidence"][0]["text"]
    assert scenario["divergence_turn"] is not None
    assert Path(scenario["reports"][0]["json"]).name == "report.json"
    assert Path(scenario["reports"][0]["json"]).is_file()
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuites" and suite.get("failures") == "1"
    [case] = suite.iter("testcase")
    assert case.get("name") == "vapi-dfed92e7" and case.get("file") == str(saved)
    [failure] = case.findall("failure")
    assert failure.get("type") == "tool_not_called"
    assert "turn 4:" in (failure.text or "") and f"{saved}:" in (failure.text or "")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["replay_id"] == scenario["replay_ids"][0]
    assert props["report.json"] == scenario["reports"][0]["json"]

    code, out, err = run("test", str(saved), "--agent", str(fixed_agent), "--llm",
                         "prompt-llm", *FAKES, "--junit", str(junit), "--json", str(report))
    assert code == 0, err
    assert "PASS" in out
    data = json.loads(report.read_text())
    assert data["passed"] is True and data["scenarios"][0]["failing_checks"] == []
    # run_call(agent=...): the replay ran the agent file; its overrides say what differs from
    # the scenario's own agent (the materialized call's snapshot)
    code, out, _err = run("replays", "show", data["scenarios"][0]["replay_ids"][0], "--json")
    replay = json.loads(out)
    assert replay["base_snapshot_id"] == load_scenario(saved).agent_snapshot().id
    assert list(replay["overrides"]) == ["system_prompt"]
    assert "Never issue a refund" in replay["overrides"]["system_prompt"]
    assert "{{company_name}}" not in replay["overrides"]["system_prompt"]
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and not list(suite.iter("failure"))


def test_a_scenario_runs_after_the_store_is_deleted(saved: Path, home: Path,
                                                    tmp_path: Path) -> None:
    shutil.rmtree(home)
    report = tmp_path / "out.json"
    code, _out, err = run("test", str(saved), "--llm", "prompt-llm", *FAKES,
                          "--json", str(report))
    assert code == 1, err  # the same verdict as with the call in the store
    [scenario] = json.loads(report.read_text())["scenarios"]
    assert scenario["failing_checks"][0]["turn"] == 4
    # the caller was heard from the scenario's own audio, not synthesized
    code, out, _err = run("replays", "show", scenario["replay_ids"][0], "--json")
    replay = json.loads(out)
    assert code == 0 and not any("synthesized" in w for w in replay["warnings"])
    assert [t["origin"] for t in replay["turns"] if t["role"] == "user"] == \
        ["original-audio"] * 5


def test_k_selects_scenarios_and_runs_with_pass_rate_report_flakiness(
        saved: Path, tmp_path: Path) -> None:
    shutil.copy(saved, saved.parent / "other.voicereplay.yaml")  # same audio folder
    text = (saved.parent / "other.voicereplay.yaml").read_text()
    (saved.parent / "other.voicereplay.yaml").write_text(
        text.replace("name: vapi-dfed92e7", "name: other-call"))
    report = tmp_path / "out.json"
    code, _out, err = run("test", str(saved.parent), "-k", "other", "--llm", "flaky-llm",
                          *FAKES, "--runs", "3", "--pass-rate", "0.6", "--json", str(report))
    [scenario] = json.loads(report.read_text())["scenarios"]
    assert scenario["name"] == "other-call"
    # run 1 of 3 calls issue_refund: 2 of 3 pass, and 2/3 >= 0.6
    assert (scenario["runs"], scenario["passed_runs"], scenario["flaky"]) == (3, 2, True)
    assert code == 0 and scenario["verdict"] == "pass", err
    assert scenario["failing_checks"][0]["failed_runs"] == 1
    code, out, _err = run("test", str(saved.parent), "-k", "other", "--llm", "flaky-llm",
                          *FAKES, "--runs", "3", "--pass-rate", "0.8", "--json", str(report))
    [scenario] = json.loads(report.read_text())["scenarios"]
    assert code == 1 and scenario["verdict"] == "fail" and "2/3" in out
    code, _out, err = run("test", str(saved.parent), "-k", "nothing-like-this")
    assert code == 2 and "matches none" in err


def test_save_refuses_overwrite_and_unknown_ids_and_redact(saved: Path) -> None:
    replay_id = load_scenario(saved).source.replay_id
    assert replay_id
    before = saved.read_text()
    code, _out, err = run("save", replay_id, "--dir", str(saved.parent))
    assert code == 2 and "exists; pass --force" in err
    code, _out, err = run("save", replay_id, "--dir", str(saved.parent), "--force")
    assert code == 0, err
    assert saved.read_text() == before
    code, _out, err = run("save", "no-such-thing", "--dir", str(saved.parent))
    assert code == 4 and "neither a stored replay nor a stored call" in err
    code, _out, err = run("save", replay_id, "--dir", str(saved.parent), "--name", "r",
                          "--dry-run")
    assert code == 2 and "go with --redact" in err
    assert not (saved.parent / "r.voicereplay.yaml").exists()
    assert sorted(p.name for p in saved.parent.iterdir()) == [
        "vapi-dfed92e7.voicereplay", "vapi-dfed92e7.voicereplay.yaml"]  # no temp folder left


def test_save_a_call_with_checks_from_a_file(saved: Path, tmp_path: Path) -> None:
    checks = tmp_path / "checks.yaml"
    checks.write_text("checks:\n  - type: tool_called\n    tool: check_status\n    turn: 4\n")
    code, out, err = run("save", DEMO_CALL, "--dir", str(tmp_path / "s2"), "--checks",
                         str(checks), "--name", "status check")
    assert code == 0, err
    scenario = load_scenario(Path(out.strip()))
    assert scenario.name == "status-check" and scenario.source.replay_id is None
    assert [c.type for c in scenario.checks] == ["tool_called"]


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t.replace("schema_version: 1", "schema_version: 7"),
     "unknown schema_version 7"),
    (lambda t: t.replace("mode: scripted", "mode: scripted\nspeed: fast"),
     "speed: unknown field"),
    (lambda t: t.replace("  tool: issue_refund", "  tool: issue_refund\n  turn: soon"),
     "check 1 (tool_not_called): turn"),
    (lambda t: t.replace("- caller: Sure, it's 4417.", "- caller: Sure, it's 4417.\n  agent: x"),
     "give exactly one of caller, agent"),
    (lambda t: t.replace("turns:\n", "turns: [\n"), "not valid YAML"),
])
def test_a_bad_scenario_is_one_error_naming_the_file_line_and_field(
        saved: Path, edit: object, expected: str) -> None:
    assert callable(edit)
    saved.write_text(edit(saved.read_text()))
    with pytest.raises(ConfigError) as caught:
        load_scenario(saved)
    assert str(caught.value).startswith(f"{saved}:") and expected in str(caught.value)
    code, _out, err = run("test", str(saved), *FAKES)
    assert code == 2 and expected in err and "\n" not in err.strip()


def test_junit_has_the_common_shape_and_workers_run_scenarios_side_by_side(
        saved: Path, fixed_agent: Path, tmp_path: Path) -> None:
    # a second scenario naming its agent by file, beside the inline one
    data = yaml.safe_load(saved.read_text())
    data["name"], data["agent"] = "fixed", "../agent.yaml"
    (saved.parent / "fixed.voicereplay.yaml").write_text(yaml.safe_dump(data))
    junit = tmp_path / "out.xml"
    code, _out, err = run("test", str(saved.parent), "--llm", "prompt-llm", *FAKES,
                          "--workers", "2", "--junit", str(junit), "--figures", "svg")
    assert code == 1, err
    root = ET.parse(junit).getroot()
    # the shape JUnit consumers read (Jenkins' junit-10.xsd, GitLab, GitHub annotations)
    assert root.tag == "testsuites"
    [suite] = list(root)
    assert suite.tag == "testsuite"
    assert {"name", "tests", "failures", "errors", "time"} <= set(suite.attrib)
    assert int(suite.get("tests") or 0) == 2 and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"vapi-dfed92e7", "fixed"}
    for case in cases.values():
        assert {"name", "classname", "time"} <= set(case.attrib)
        float(case.get("time") or "x")
        for prop in case.iter("property"):
            assert set(prop.attrib) == {"name", "value"}
    assert not cases["fixed"].findall("failure")  # the fixed prompt, from its agent file
    [failure] = cases["vapi-dfed92e7"].findall("failure")
    assert {"message", "type"} <= set(failure.attrib)


def test_a_scenario_round_trips_and_its_call_is_stored_by_content(saved: Path) -> None:
    from voicereplay.config import Settings
    from voicereplay.pipeline.scenarios import materialize
    from voicereplay.scenario import dump_scenario
    from voicereplay.store import Store

    scenario = load_scenario(saved)
    again = saved.parent / "again.voicereplay.yaml"
    again.write_text(dump_scenario(scenario))
    assert load_scenario(again).model_dump() == scenario.model_dump()
    store = Store.from_settings(Settings.from_env())
    first = materialize(store, scenario)
    assert first.call_id.startswith("vapi-dfed92e7@")
    assert materialize(store, scenario).call_id == first.call_id  # same content, same call
    assert store.get_call(DEMO_CALL).recordings != first.recordings  # the source is untouched
    assert [t.text for t in first.turns if t.role == "user"] == [
        t.caller for t in scenario.turns if t.caller is not None]
    scenario.turns[1].caller = "Hello, where is my order?"
    assert materialize(store, scenario).call_id != first.call_id


@pytest.mark.models
def test_end_to_end_with_the_embedded_speech_models(saved: Path, fixed_agent: Path,
                                                   tmp_path: Path) -> None:
    """faster-whisper hears the scenario's caller audio, piper speaks, and the recorded
    agent (the production call's replies) calls issue_refund on turn 4: the check fails.
    Then the fixed agent on the embedded LLM (SmolLM2 through llama.cpp) passes — honestly
    because that model calls no tools at all (reference/offline-stack.md: no small model on
    PyPI decides tool calls), which is what the check asks of the fixed agent."""
    report = tmp_path / "out.json"
    code, _out, err = run("test", str(saved), "--model", "recorded", "--json", str(report),
                          "--figures", "svg")
    assert code == 1, err
    [scenario] = json.loads(report.read_text())["scenarios"]
    [check] = scenario["failing_checks"]
    assert check["type"] == "tool_not_called" and check["turn"] == 4
    code, out, _err = run("replays", "show", scenario["replay_ids"][0], "--json")
    replay = json.loads(out)
    heard = " ".join(t["heard"] or "" for t in replay["turns"] if t["role"] == "user").lower()
    assert "4417" in heard.replace(" ", "") or "order" in heard
    assert replay["backends"]["stt"] == "faster-whisper" and replay["backends"]["tts"] == "piper"
    code, out, err = run("test", str(saved), "--agent", str(fixed_agent), "--model", "local",
                         "--figures", "svg")
    assert code == 0, out + err


def test_the_materialized_track_gives_the_engine_the_saved_segments(saved: Path) -> None:
    from voicereplay.config import Settings
    from voicereplay.models import local_recordings
    from voicereplay.pipeline.scenarios import materialize
    from voicereplay.simulate.caller import CallerSegment, original_segments
    from voicereplay.simulate.plan import load_recordings
    from voicereplay.store import Store

    scenario = load_scenario(saved)
    call = materialize(Store.from_settings(Settings.from_env()), scenario)
    files = {str(k): v for k, v in local_recordings(call.recordings).items()}
    cut = [s for s in original_segments(call, load_recordings(files)).values()
           if isinstance(s, CallerSegment)]
    saved_audio = [load_channels(saved.parent / t.audio)[0]
                   for t in scenario.turns if t.audio]
    assert len(cut) == len(saved_audio) == 5
    for segment, audio in zip(cut, saved_audio, strict=True):
        assert segment.audio.rate == audio.rate
        assert len(segment.audio.samples) == len(audio.samples)
        assert abs(segment.audio.samples - audio.samples).max() < 1e-4


def test_user_text_is_printed_literally_and_agent_files_are_checked(
        saved: Path, tmp_path: Path) -> None:
    text = saved.read_text().replace("  tool: issue_refund",
                                     "  tool: issue_refund\n  name: '[red]no refund[/red]'")
    saved.write_text(text)
    code, out, err = run("test", str(saved), "--llm", "prompt-llm", *FAKES)
    assert code == 1, err
    assert "[red]no refund[/red]" in out
    code, _out, err = run("test", str(saved), "--agent", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml: no such agent file" in err
    (tmp_path / "bad-agent.yaml").write_text("system_prompt: hi\nmodle: {name: x}\n")
    code, _out, err = run("test", str(saved), "--agent", str(tmp_path / "bad-agent.yaml"))
    assert code == 2 and "bad-agent.yaml:2: modle: unknown field" in err
    code, out, err = run("agent", "export", DEMO_CALL)
    assert code == 0 and "system_prompt: |" in out and "issue_refund" in out
    exported = tmp_path / "exported.yaml"
    exported.write_text(out)
    from voicereplay.scenario import load_agent_file
    assert load_agent_file(exported) == load_scenario(saved).agent_snapshot()
    (tmp_path / "a.yaml").write_text("keep")
    code, _out, err = run("agent", "export", DEMO_CALL, "-o", str(tmp_path / "a.yaml"))
    assert code == 2 and "exists" in err and (tmp_path / "a.yaml").read_text() == "keep"


def test_the_redaction_hook_gets_the_scenario_and_segments_before_anything_is_written(
        saved: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    import numpy as np

    from voicereplay.config import Settings
    from voicereplay.pipeline.scenarios import save_scenario
    from voicereplay.store import Store

    def redactor(scenario, segments):  # type: ignore[no-untyped-def]
        for turn in scenario.turns:
            if turn.caller is not None:
                turn.caller = turn.caller.replace("4417", "<NUMBER>")
        return scenario, {path: replace(s, audio=replace(
            s.audio, samples=np.zeros_like(s.audio.samples))) for path, s in segments.items()}

    store = Store.from_settings(Settings.from_env())
    replay_id = load_scenario(saved).source.replay_id or ""
    result = save_scenario(store, replay_id, tmp_path / "red", redactor=redactor)
    scenario = load_scenario(result.path)
    assert "Sure, it's <NUMBER>." in [t.caller for t in scenario.turns]
    audio = load_channels(result.folder / "caller-02.wav")[0]
    assert audio.samples.size and not audio.samples.any()


def test_a_retell_call_is_saved_from_the_caller_channel_of_its_stereo_recording(
        tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    folder.mkdir()
    retell = Path(__file__).resolve().parent.parent / "fixtures" / "retell"
    for file in retell.glob("retell-support.*"):
        shutil.copy(file, folder / file.name)
    code, _out, err = run("calls", "import", "--dir", str(folder))
    assert code == 0, err
    code, out, err = run("save", "call_4975968f2a8c5d4a1c142895b2a8", "--dir",
                         str(tmp_path / "s"))
    assert code == 0, err
    scenario = load_scenario(Path(out.strip()))
    assert scenario.name == "retell-4975968f" and scenario.source.provider == "retell"
    callers = [t for t in scenario.turns if t.caller is not None]
    assert callers and all(t.audio for t in callers)
    for turn in callers:  # each segment is the caller's speech of that turn, padded
        audio = load_channels(scenario.folder / (turn.audio or ""))[0]
        assert audio.duration == pytest.approx((turn.end or 0) - (turn.start or 0) + 0.2,
                                               abs=0.05)
    code, _out, err = run("test", out.strip(), "--llm", "fake-llm", *FAKES)
    assert code == 0, err  # no checks: the replay completed


def test_a_failed_forced_save_keeps_the_old_scenario(saved: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from voicereplay.pipeline import scenarios

    before = saved.read_text()
    audio = sorted(p.name for p in (saved.parent / "vapi-dfed92e7.voicereplay").iterdir())
    real = os.replace

    def replace(src: object, dst: object) -> None:
        if str(dst) == str(saved) and "replaced" not in str(src):
            raise OSError(28, "No space left on device")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(scenarios.os, "replace", replace)
    replay_id = load_scenario(saved).source.replay_id or ""
    code, _out, err = run("save", replay_id, "--dir", str(saved.parent), "--force")
    assert code == 1 and "No space left on device" in err
    assert saved.read_text() == before
    assert sorted(p.name for p in (saved.parent / "vapi-dfed92e7.voicereplay").iterdir()) == audio
    assert sorted(p.name for p in saved.parent.iterdir()) == [
        "vapi-dfed92e7.voicereplay", "vapi-dfed92e7.voicereplay.yaml"]


def test_a_scenario_replay_has_its_comparison_page_and_baseline_audio(
        saved: Path, tmp_path: Path) -> None:
    from urllib.parse import quote

    from fastapi.testclient import TestClient

    from voicereplay.config import Settings
    from voicereplay.store import Store
    from voicereplay.web import create_app

    report = tmp_path / "out.json"
    code, _out, err = run("test", str(saved), "--llm", "prompt-llm", *FAKES, "--json",
                          str(report))
    assert code == 1, err
    [scenario] = json.loads(report.read_text())["scenarios"]
    settings = Settings.from_env()
    client = TestClient(create_app(settings, store=Store.from_settings(settings)))
    page = client.get(f"/replays/{scenario['replay_ids'][0]}")
    assert page.status_code == 200 and "issue_refund" in page.text
    call = quote(scenario["call_id"], safe="")
    assert client.get(f"/calls/vapi/{call}").status_code == 200
    audio = client.get(f"/files/calls/vapi/{call}/customer")
    assert audio.status_code == 200, audio.text
    assert audio.content[:4] == b"RIFF"


def test_bad_input_stops_the_run_with_exit_2_before_replaying(saved: Path) -> None:
    from voicereplay.config import Settings
    from voicereplay.store import Store

    store = Store.from_settings(Settings.from_env())
    before = len(store.replays.list(limit=None))
    code, _out, err = run("test", str(saved), "--llm", "no-such-llm", *FAKES)
    assert code == 2 and "unknown LLM backend 'no-such-llm'" in err
    (saved.parent / "vapi-dfed92e7.voicereplay" / "caller-03.wav").unlink()
    code, _out, err = run("test", str(saved), "--llm", "prompt-llm", *FAKES)
    assert code == 2 and "caller audio vapi-dfed92e7.voicereplay/caller-03.wav is missing" in err
    assert len(store.replays.list(limit=None)) == before


def test_a_scenario_that_cannot_be_replayed_is_an_error_and_the_others_still_run(
        saved: Path, fixed_agent: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(saved.read_text())
    data["name"], data["agent"] = "fixed", "../agent.yaml"
    (saved.parent / "fixed.voicereplay.yaml").write_text(yaml.safe_dump(data))
    junit, report = tmp_path / "out.xml", tmp_path / "out.json"
    code, out, err = run("test", str(saved.parent), "--llm", "broken-llm", *FAKES,
                         "--junit", str(junit), "--json", str(report))
    assert code == 1, err
    scenarios = json.loads(report.read_text())["scenarios"]
    assert [s["verdict"] for s in scenarios] == ["error", "error"]
    assert "HTTP 400" in scenarios[0]["error"] and "ERROR" in out
    root = ET.parse(junit).getroot()
    assert root.get("errors") == "2" and len(list(root.iter("error"))) == 2


def test_save_keeps_the_replays_mode_seed_and_runs(home: Path, tmp_path: Path) -> None:
    _settings, store, _first = replayed_demo(home, llm="prompt-llm", runs=2, seed=41,
                                             mode="turn")
    second = next(r for r in store.replays.list(limit=None) if r.run_index == 1)
    code, out, err = run("save", second.id, "--dir", str(tmp_path / "s"), "--name", "batch")
    assert code == 0, err
    scenario = load_scenario(Path(out.strip()))
    assert (scenario.mode, scenario.seed, scenario.runs) == ("turn", 41, 2)


def test_baseline_fails_on_a_regression_and_a_missing_scenario_not_on_old_failures(
        saved: Path, fixed_agent: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    code, _out, err = run("test", str(saved), "--agent", str(fixed_agent), "--llm",
                          "prompt-llm", *FAKES, "--json", str(first))
    assert code == 0, err  # the fixed agent passes: this is the approved baseline
    # the production prompt again: the scenario regressed
    again = tmp_path / "again.json"
    code, _out, err = run("test", str(saved), "--llm", "prompt-llm", *FAKES,
                          "--baseline", str(first), "--json", str(again))
    assert code == 1 and "regressed since the baseline: vapi-dfed92e7" in err
    diff = json.loads(again.read_text())["baseline"]
    assert diff["regressed"] == ["vapi-dfed92e7"] and diff["worse"] is True
    # failing before and failing now: unchanged, so a run gated on the baseline passes
    code, _out, err = run("test", str(saved), "--llm", "prompt-llm", *FAKES,
                          "--baseline", str(again))
    assert code == 0 and "nothing got worse since the baseline (1 unchanged)" in err
    # a scenario of the baseline that is not in this run is missing, not passing
    data = json.loads(first.read_text())
    data["scenarios"].append({**data["scenarios"][0], "name": "gone"})
    (tmp_path / "more.json").write_text(json.dumps(data))
    code, _out, err = run("test", str(saved), "--agent", str(fixed_agent), "--llm",
                          "prompt-llm", *FAKES, "--baseline", str(tmp_path / "more.json"))
    assert code == 1 and "missing since the baseline: gone" in err
    (tmp_path / "bad.json").write_text("{}")
    code, _out, err = run("test", str(saved), "--baseline", str(tmp_path / "bad.json"))
    assert code == 2 and "not a `voicereplay test --json` file" in err


def test_rescore_judges_the_stored_replays_again_with_changed_checks(
        saved: Path, home: Path) -> None:
    from voicereplay.config import Settings
    from voicereplay.store import Store

    code, _out, err = run("test", str(saved), "--llm", "prompt-llm", *FAKES)
    assert code == 1, err  # production prompt: issue_refund is called on turn 4
    store = Store.from_settings(Settings.for_home(home))
    before = len(store.replays.list(limit=None))
    text = saved.read_text()
    saved.write_text(text.replace("type: tool_not_called", "type: tool_called"))
    code, out, err = run("test", str(saved), "--rescore")
    assert code == 0, out + err  # the same replay, judged with the new check
    assert len(store.replays.list(limit=None)) == before  # nothing replayed
    saved.write_text(text)
    code, out, _err = run("test", str(saved), "--rescore")
    assert code == 1 and "issue_refund" in out


def test_rescore_without_a_stored_run_says_to_run_the_suite_first(saved: Path,
                                                                   tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code, _out, _err = run("test", str(saved), "--rescore", "--json", str(report))
    assert code == 1
    [scenario] = json.loads(report.read_text())["scenarios"]
    assert scenario["verdict"] == "error" and "run `voicereplay test`" in scenario["error"]


@pytest.mark.integration
def test_queue_runs_the_scenarios_on_a_worker_process(saved: Path, fixed_agent: Path,
                                                      home: Path, tmp_path: Path) -> None:
    """`voicereplay test --queue` with a real `voicereplay worker` process on the same store:
    the same verdicts as in process (a hang guard, no timing)."""
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VOICEREPLAY_") and not k.endswith("_API_KEY")}
    env.update(VOICEREPLAY_HOME=str(home),
               VOICEREPLAY_PLUGINS="tests.fakes.backends,tests.fakes.prompt_llm",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "voicereplay", "worker"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        report = tmp_path / "queued.json"
        code, out, err = run("test", str(saved), "--queue", "--llm", "prompt-llm", *FAKES,
                             "--json", str(report))
        assert code == 1, out + err + (tmp_path / "worker.log").read_text()
        [scenario] = json.loads(report.read_text())["scenarios"]
        assert scenario["verdict"] == "fail"
        assert scenario["failing_checks"][0]["turn"] == 4
        code, out, err = run("test", str(saved), "--queue", "--agent", str(fixed_agent),
                             "--llm", "prompt-llm", *FAKES)
        assert code == 0, out + err
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    code, _out, err = run("test", str(saved), "--queue", "--rescore")
    assert code == 2 and "does not go with --rescore" in err
