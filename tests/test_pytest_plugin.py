"""The pytest plugin: a plain `pytest` collects `*.voicereplay.yaml` files and runs them (in a
`pytester` session), with the failing check's file:line, turn, baseline and replay in the
failure output and the report links in pytest's JUnit."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.test_scenarios import fixed_agent, home, saved  # noqa: F401 - fixtures
from voicereplay.scenario import load_scenario

pytest_plugins = ["pytester"]
STAGES = ["--vr-stt", "fake-stt", "--vr-tts", "fake-tts", "--vr-caller-tts", "fake-tts",
          "--vr-llm", "prompt-llm"]


def test_the_plugin_is_registered_for_pytest() -> None:
    assert "voicereplay.pytest_plugin" in {e.value for e in entry_points(group="pytest11")}


def test_pytest_runs_a_scenario_and_explains_the_failure(
        pytester: pytest.Pytester, saved: Path, fixed_agent: Path) -> None:  # noqa: F811
    suite = pytester.path / "scenarios"
    shutil.copytree(saved.parent, suite)
    path = suite / saved.name
    line = load_scenario(path).check_lines[0]
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest("scenarios", *STAGES, f"--junitxml={junit}")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert f"{path}:{line}: issue_refund is not called (tool_not_called)" in text, text
    result.stdout.fnmatch_lines([
        "*scenario vapi-dfed92e7 failed (0 of 1 run(s) passed)*",
        "*agent turn 4: issue_refund*",
        "*baseline: *issue_refund(order_id='4417'*",
        "*replay: *issue_refund*",
        "*report (json): *report.json*",
    ])
    assert "Traceback" not in text
    case = next(ET.parse(junit).getroot().iter("testcase"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["voicereplay_replay"] and Path(props["voicereplay_report_json"]).is_file()

    passed = pytester.runpytest("scenarios", *STAGES, f"--vr-agent={fixed_agent}")
    passed.assert_outcomes(passed=1)


def test_a_broken_scenario_file_is_a_collection_error_naming_it(
        pytester: pytest.Pytester) -> None:
    (pytester.path / "bad.voicereplay.yaml").write_text("schema_version: 9\nname: x\n")
    result = pytester.runpytest("bad.voicereplay.yaml")
    result.assert_outcomes(errors=1)
    assert "bad.voicereplay.yaml" in result.stdout.str()
