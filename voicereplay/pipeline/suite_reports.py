"""The reports of a ``voicereplay test`` run: JSON for tools, JUnit XML for CI.

JSON (:func:`suite_json`)::

    {"schema": "voicereplay.test/1", "passed": false, "pass_rate": 0.8,
     "counts": {"scenarios": 2, "passed": 1, "failed": 1, "errors": 0},
     "scenarios": [{"name", "path", "verdict": "pass|fail|error", "runs", "passed_runs",
                    "pass_rate", "flaky", "duration", "divergence_turn", "divergence",
                    "failing_checks": [{"name", "type", "location": "file:line", "turn",
                                        "failed_runs", "message", "evidence": [{turn, text}]}],
                    "replay_ids": [...], "reports": [{"report.json": path, ...}],
                    "call_id", "error"}]}

JUnit (:func:`suite_junit`): one ``<testsuite name="voicereplay">`` with one ``<testcase>`` per
scenario (``classname`` ``voicereplay.scenarios``, ``name`` the scenario's, ``file`` its path,
``time`` its duration); a ``<failure>`` per failing check (message: the check and why; type:
the check type; text: ``file:line``, the turn and the evidence), an ``<error>`` when the
scenario could not be replayed; ``<properties>`` inside the test case carry the replay ids, the
report files, the pass count and the divergence. Built with :mod:`xml.etree.ElementTree`
(escaped), characters XML 1.0 cannot hold dropped.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voicereplay.compare.junit import _clean  # drops what XML 1.0 cannot hold
from voicereplay.errors import StoreError
from voicereplay.pipeline.suites import FailingCheck, ScenarioOutcome

__all__ = ["JSON_SCHEMA", "scenario_json", "suite_json", "suite_junit", "write_text"]

JSON_SCHEMA = "voicereplay.test/1"
def _check(check: FailingCheck) -> dict[str, Any]:
    return {"name": check.name, "type": check.type, "location": check.location,
            "turn": check.turn, "failed_runs": check.failed_runs, "message": check.message,
            "evidence": [e.model_dump(mode="json") for e in check.evidence]}


def scenario_json(outcome: ScenarioOutcome) -> dict[str, Any]:
    return {"name": outcome.name, "path": str(outcome.path), "verdict": outcome.verdict,
            "runs": outcome.runs, "passed_runs": outcome.passed_runs,
            "pass_rate": outcome.pass_rate, "flaky": outcome.flaky,
            "duration": round(outcome.duration, 3),
            "divergence_turn": outcome.divergence_turn, "divergence": outcome.divergence,
            "failing_checks": [_check(c) for c in outcome.failing],
            "replay_ids": outcome.replay_ids, "reports": outcome.reports,
            "call_id": outcome.call_id, "error": outcome.error}


def suite_json(outcomes: Sequence[ScenarioOutcome], pass_rate: float) -> dict[str, Any]:
    """The run as one JSON-ready mapping (see the module docs)."""
    counts = {"scenarios": len(outcomes),
              "passed": sum(o.verdict == "pass" for o in outcomes),
              "failed": sum(o.verdict == "fail" for o in outcomes),
              "errors": sum(o.verdict == "error" for o in outcomes)}
    return {"schema": JSON_SCHEMA, "passed": counts["passed"] == len(outcomes),
            "pass_rate": pass_rate, "counts": counts,
            "scenarios": [scenario_json(o) for o in outcomes]}


def _failure_text(check: FailingCheck, runs: int) -> str:
    lines = [check.location]
    if runs > 1:
        lines.append(f"failed in {check.failed_runs} of {runs} runs")
    lines += [f"turn {e.turn}: {e.text}" if e.turn is not None else e.text
              for e in check.evidence]
    return "\n".join(lines)


def suite_junit(outcomes: Sequence[ScenarioOutcome]) -> str:
    """The run as a JUnit XML document (see the module docs)."""
    counts = {"tests": str(len(outcomes)),
              "failures": str(sum(o.verdict == "fail" for o in outcomes)),
              "errors": str(sum(o.verdict == "error" for o in outcomes)), "skipped": "0",
              "time": f"{sum(o.duration for o in outcomes):.3f}"}
    root = ET.Element("testsuites", {"name": "voicereplay test", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": "voicereplay", **counts})
    for outcome in outcomes:
        case = ET.SubElement(suite, "testcase", classname="voicereplay.scenarios",
                             name=_clean(outcome.name), file=_clean(outcome.path),
                             time=f"{outcome.duration:.3f}")
        properties = ET.SubElement(case, "properties")
        values: list[tuple[str, str]] = [("passed_runs", f"{outcome.passed_runs}/{outcome.runs}")]
        if outcome.divergence:
            values.append(("divergence", outcome.divergence))
        values += [("replay_id", rid) for rid in outcome.replay_ids]
        values += [(f"report.{name}", path) for files in outcome.reports
                   for name, path in files.items()]
        for name, value in values:
            ET.SubElement(properties, "property", name=_clean(name), value=_clean(value))
        if outcome.verdict == "error":
            ET.SubElement(case, "error", message=_clean(outcome.error or "error"),
                          type="error").text = _clean(outcome.error or "")
        elif outcome.verdict == "fail":
            if not outcome.failing:  # every check passed, but in too few runs
                ET.SubElement(case, "failure", message=_clean(
                    f"passed {outcome.passed_runs} of {outcome.runs} runs"), type="runs")
            for check in outcome.failing:
                message = f"{check.name}: {check.message}" if check.message else check.name
                ET.SubElement(case, "failure", message=_clean(message),
                              type=_clean(check.type)).text = _clean(
                    _failure_text(check, outcome.runs))
        elif outcome.flaky:
            ET.SubElement(case, "system-out").text = _clean(
                f"flaky: passed {outcome.passed_runs} of {outcome.runs} runs")
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"


def write_text(path: Path, text: str) -> Path:
    """Write a report (parent folders made); a file system failure is a StoreError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
