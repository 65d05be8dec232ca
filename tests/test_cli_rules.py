"""`voicereplay rules test|check` as a user drives them: valid and broken files, a stored
call's matches with their reasons, JSON, and the errors with their exit codes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voicereplay.cli import app

runner = CliRunner()

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"  # fixtures/demo: a failed Vapi call, 46 s
RETELL_CALL = "call_4975968f2a8c5d4a1c142895b2a8"  # fixtures/retell/retell-support.json

RULES = """\
version: 1
rules:
  - name: failed-long-calls
    when: {success: false, duration: {min: 30}}
    replay: {prompt_file: candidate.txt, runs: 2}
    notify: [{url: "https://hooks.slack.com/services/T0/B0/very-secret", format: slack}]
  - name: retell-only
    when: {provider: retell, sentiment: [negative]}
  - name: flagged
    when: {flagged: true}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "candidate.txt").write_text("You are the candidate agent.")
    path = folder / "rules.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture
def stored(fixtures_dir: Path, tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(fixtures_dir / "demo" / "demo-refund.json", export)
    shutil.copy(fixtures_dir / "demo" / "demo-refund.assistant.json", export)
    shutil.copy(fixtures_dir / "retell" / "retell-support.json", export)
    code, _, err = run("calls", "import", "--provider", "files", "--dir", str(export),
                       "--no-recordings")
    assert code == 0, err


def test_rules_test_summarizes_a_valid_file(rules_file: Path) -> None:
    code, out, err = run("rules", "test", str(rules_file))
    assert code == 0, err
    assert f"{rules_file}: valid, 3 rule(s)" in out
    assert "failed-long-calls" in out and "retell-only" in out
    assert "success false and duration ≥ 30 s" in out
    assert "prompt_file candidate.txt, runs 2" in out
    assert "slack → hooks.slack.com" in out and "very-secret" not in out
    assert "provider retell and sentiment negative" in out

    code, out, _ = run("rules", "test", str(rules_file), "--json")
    data = json.loads(out)
    assert data["valid"] and [r["name"] for r in data["rules"]] == [
        "failed-long-calls", "retell-only", "flagged"]
    assert data["rules"][2]["when"] == "flagged"


def test_rules_test_a_broken_file_is_one_line_and_exit_2(rules_file: Path) -> None:
    rules_file.write_text(RULES.replace("min: 30", "min: thirty"))
    code, out, err = run("rules", "test", str(rules_file))
    assert code == 2 and out == ""
    assert err.strip() == (f"error: {rules_file}: rule 'failed-long-calls': "
                           "when.duration.min: Input should be a valid number, unable to parse "
                           "string as a number")
    (rules_file.parent / "candidate.txt").unlink()
    rules_file.write_text(RULES)
    code, _, err = run("rules", "test", str(rules_file))
    assert code == 2 and "rule 'failed-long-calls': replay: prompt_file: cannot read" in err
    code, _, err = run("rules", "test", str(rules_file.parent / "nope.yaml"))
    assert code == 2 and "cannot read the rules file" in err


@pytest.mark.usefixtures("stored")
def test_rules_check_shows_each_rule_and_why(rules_file: Path) -> None:
    code, out, err = run("rules", "check", DEMO_CALL, "--rules", str(rules_file))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"vapi:{DEMO_CALL} matches 1 of 3 rule(s)"
    assert "failed-long-calls  matched" in lines
    assert "  ✓ success evaluation is false" in lines
    assert "  ✓ duration 46.429 s is at least 30 s" in lines
    assert "retell-only  not matched" in lines
    assert "  ✗ provider is vapi, not one of: retell" in lines
    assert "  ✗ no sentiment" in lines
    assert "  ✗ the call is not flagged" in lines

    code, out, _ = run("rules", "check", DEMO_CALL, "--rules", str(rules_file), "--flagged")
    assert code == 0 and "matches 2 of 3" in out and "  ✓ the call is flagged" in out


@pytest.mark.usefixtures("stored")
def test_rules_check_json(rules_file: Path) -> None:
    code, out, err = run("rules", "check", f"retell:{RETELL_CALL}", "--rules", str(rules_file),
                         "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["provider"], data["call_id"], data["flagged"]) == ("retell", RETELL_CALL, False)
    assert data["matched"] == []
    retell_only = data["rules"][1]
    assert retell_only["rule"] == "retell-only" and retell_only["matched"] is False
    assert retell_only["conditions"] == [
        {"condition": "provider", "held": True, "reason": "provider is retell"},
        {"condition": "sentiment", "held": False,
         "reason": "sentiment is Positive, not one of: negative"}]


@pytest.mark.usefixtures("stored")
def test_rules_check_reads_the_default_rules_file_or_says_where_it_should_be(
    rules_file: Path,
) -> None:
    home = Path(os.environ["VOICEREPLAY_HOME"])
    code, out, err = run("rules", "check", DEMO_CALL)
    assert code == 2 and out == ""
    assert f"no rules file: {home / 'rules.yaml'} does not exist" in err
    shutil.copy(rules_file, home / "rules.yaml")
    shutil.copy(rules_file.parent / "candidate.txt", home)
    code, out, err = run("rules", "check", DEMO_CALL)
    assert code == 0, err
    assert "failed-long-calls  matched" in out


@pytest.mark.usefixtures("stored")
def test_rules_check_unknown_call_and_bad_provider(rules_file: Path) -> None:
    code, out, err = run("rules", "check", "no-such-call", "--rules", str(rules_file))
    assert code == 4 and out == ""
    assert "call no-such-call is not in the store" in err
    code, _, err = run("rules", "check", DEMO_CALL, "--provider", "zoom", "--rules",
                       str(rules_file))
    assert code == 2 and "unknown provider 'zoom'" in err


def test_provider_text_is_printed_literally(
    fixtures_dir: Path, tmp_path: Path, rules_file: Path
) -> None:
    export = tmp_path / "odd"
    export.mkdir()
    body = json.loads((fixtures_dir / "demo" / "demo-refund.json").read_text())
    body["endedReason"] = "[bold red]pipeline-error-x[/bold red]"
    (export / "odd.json").write_text(json.dumps(body))
    code, _, err = run("calls", "import", "--provider", "files", "--dir", str(export),
                       "--no-recordings")
    assert code == 0, err
    rules_file.write_text("rules: [{name: errors, when: {ended_reason: '*pipeline-error-*'}}]")
    code, out, err = run("rules", "check", DEMO_CALL, "--rules", str(rules_file))
    assert code == 0, err
    assert "ended reason '[bold red]pipeline-error-x[/bold red]' matches" in out
