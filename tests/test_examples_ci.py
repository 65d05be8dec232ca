"""examples/ci: the GitHub Actions workflow parses, and every `voicereplay test` command in it
uses options the command has (so the example cannot rot silently)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml
from typer.testing import CliRunner

from voicereplay.cli import app

WORKFLOW = Path(__file__).resolve().parent.parent / "examples" / "ci" / "voicereplay.yml"


def test_the_workflow_runs_voicereplay_test_with_real_options() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert set(workflow["jobs"]) == {"offline", "production-llm"}
    commands = [step["run"] for job in workflow["jobs"].values() for step in job["steps"]
                if "voicereplay test" in step.get("run", "")]
    assert len(commands) == 2
    helptext = CliRunner().invoke(app, ["test", "--help"], env={"COLUMNS": "200"}).output
    for command in commands:
        words = shlex.split(command)
        assert words[:2] == ["voicereplay", "test"]
        for option in (w.split("=")[0] for w in words if w.startswith("--")):
            assert re.search(rf"(^|[\s,]){re.escape(option)}\b", helptext), option
    assert "--model local" in commands[0] and "--baseline" in commands[1]
