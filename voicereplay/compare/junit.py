"""The JUnit XML report of a comparison, for CI systems that show test results.

Layout (one suite per replayed call)::

    <testsuites name="voicereplay" tests failures errors skipped time>
      <testsuite name="voicereplay.<provider>.<call_id>" tests failures errors skipped="0"
                 time="0" timestamp="<generated_at>">
        <properties>replay_id, snapshot_id, mode, fidelity_score, divergence_turn, …</properties>
        <testcase classname="<suite name>" name="<check name>" time="0">
          <failure message="…" type="<check type>">turn N: evidence …</failure>   (fail)
          <error message="…" type="<check type>">…</error>                         (error)
          <system-out>the judge's reasoning</system-out>
        </testcase>
        …
        <testcase name="replay completed"> fidelity and divergence one-liners </testcase>
      </testsuite>
    </testsuites>

``time`` is how long the replay took (``replay.wall_seconds``; 0 when unknown), on the suite and on
``replay completed``; checks take no measurable time. The XML is built with
:mod:`xml.etree.ElementTree` (so ``<``, ``&`` and ``"`` are escaped), and characters XML 1.0 cannot
hold (control characters in a transcript) are dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from voicereplay.compare.model import CheckResult, Comparison, Evidence
from voicereplay.compare.summary import checks_line, divergence_line, fidelity_line

__all__ = ["junit_xml", "suite_name", "write_junit"]

# everything XML 1.0 allows: tab, newline, carriage return, and the rest below the surrogates
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: object) -> str:
    return _NOT_XML.sub("", str(text))


def suite_name(comparison: Comparison) -> str:
    return f"voicereplay.{comparison.call_provider}.{comparison.call_id}"


def _evidence_line(evidence: Evidence) -> str:
    where = f"turn {evidence.turn}: " if evidence.turn is not None else ""
    return f"{where}{evidence.text}"


def _judge(check: CheckResult) -> str:
    if not check.reasoning:
        return ""
    model = f" ({check.judge_model})" if check.judge_model else ""
    return f"judge{model} reasoning:\n{check.reasoning.strip()}"


def _testcase(parent: ET.Element, classname: str, check: CheckResult) -> None:
    case = ET.SubElement(parent, "testcase", classname=classname, name=_clean(check.name),
                         time="0")
    evidence = "\n".join(_evidence_line(e) for e in check.evidence)
    if check.status in ("fail", "error"):
        tag = "failure" if check.status == "fail" else "error"
        message = check.message or f"{check.name}: {'failed' if tag == 'failure' else 'error'}"
        body = evidence or message
        problem = ET.SubElement(case, tag, message=_clean(message), type=_clean(check.type))
        problem.text = _clean(body)
    out = [_judge(check)]
    if check.status == "pass":
        out = [check.message, evidence, *out]
    text = "\n\n".join(part for part in out if part)
    if text:
        ET.SubElement(case, "system-out").text = _clean(text)


def junit_xml(comparison: Comparison) -> str:
    """The comparison's checks as a JUnit XML document (a string, with its XML declaration).

    Reads ``call_provider``, ``call_id``, ``generated_at``, ``replay`` (id, snapshot_id, mode,
    base_snapshot_id, batch_id), ``checks``, ``fidelity`` and ``divergence``.
    """
    name = suite_name(comparison)
    checks = comparison.checks
    tests = len(checks) + 1  # + "replay completed"
    failures = sum(c.status == "fail" for c in checks)
    errors = sum(c.status == "error" for c in checks)
    took = f"{comparison.replay.wall_seconds or 0:.3f}"
    counts = {"tests": str(tests), "failures": str(failures), "errors": str(errors),
              "skipped": "0", "time": took}

    root = ET.Element("testsuites", {"name": "voicereplay", **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": _clean(name), **counts,
        "timestamp": comparison.generated_at.isoformat(timespec="seconds"),
    })
    properties = ET.SubElement(suite, "properties")
    fidelity = comparison.fidelity
    divergence = comparison.divergence
    values = {
        "call_provider": comparison.call_provider,
        "call_id": comparison.call_id,
        "replay_id": comparison.replay.id,
        "snapshot_id": comparison.replay.snapshot_id,
        "base_snapshot_id": comparison.replay.base_snapshot_id or "",
        "mode": comparison.replay.mode,
        "batch_id": comparison.replay.batch_id or "",
        "fidelity_score": "" if fidelity.score is None else f"{fidelity.score:.3f}",
        "fidelity_level": fidelity.level,
        "divergence_turn": "none" if divergence is None else str(divergence.turn),
    }
    for key, value in values.items():
        ET.SubElement(properties, "property", name=key, value=_clean(value))

    for check in checks:
        _testcase(suite, name, check)

    completed = ET.SubElement(suite, "testcase", classname=name, name="replay completed",
                              time=took)
    ET.SubElement(completed, "system-out").text = _clean("\n".join([
        f"replay {comparison.replay.id} ({comparison.replay.mode}) of "
        f"{comparison.call_provider} call {comparison.call_id}",
        f"checks: {checks_line(comparison)}",
        f"fidelity: {fidelity_line(comparison)}",
        f"divergence: {divergence_line(comparison)}",
    ]))

    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"


def write_junit(comparison: Comparison, path: Path) -> Path:
    """Write :func:`junit_xml` to ``path`` (UTF-8; parent folders made). Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(comparison), encoding="utf-8")
    return path
