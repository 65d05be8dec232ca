"""One-line summaries of a comparison, shared by the terminal view, report.md and JUnit XML."""

from __future__ import annotations

from voicereplay.compare.model import Comparison, CsatEstimate

__all__ = ["checks_line", "csat_line", "divergence_line", "fidelity_line"]


def divergence_line(comparison: Comparison) -> str:
    """``turn 4 (tool-call): issue_refund → check_status``, or ``none``."""
    divergence = comparison.divergence
    if divergence is None:
        return "none"
    detail = f": {divergence.detail}" if divergence.detail else ""
    return f"turn {divergence.turn} ({divergence.reason}){detail}"


def fidelity_line(comparison: Comparison) -> str:
    """``0.79 (medium) — 3 runs of the call's own snapshot (no overrides)``."""
    fidelity = comparison.fidelity
    score = "n/a" if fidelity.score is None else f"{fidelity.score:.2f}"
    basis = f" — {fidelity.basis}" if fidelity.basis else ""
    runs = ""
    if fidelity.runs > 1:
        worst = max((t.disagreement for t in fidelity.flakiness), default=0.0)
        runs = f"; {fidelity.runs} runs, worst turn disagreement {worst:.2f}"
    return f"{score} ({fidelity.level}){basis}{runs}"


def checks_line(comparison: Comparison) -> str:
    """``1 of 2 checks failed``, ``2 checks passed``, ``no checks``."""
    checks = comparison.checks
    if not checks:
        return "no checks"
    failed = sum(c.status == "fail" for c in checks)
    errors = sum(c.status == "error" for c in checks)
    if not failed and not errors:
        return f"{len(checks)} check{'s' if len(checks) != 1 else ''} passed"
    parts = []
    if failed:
        parts.append(f"{failed} of {len(checks)} checks failed")
    if errors:
        parts.append(f"{errors} of {len(checks)} checks errored")
    return ", ".join(parts)


def csat_line(estimate: CsatEstimate) -> str:
    """``2/5 — "the refund was never asked for"``, or ``no estimate (why)``."""
    if estimate.score is None:
        return f"no estimate ({estimate.error or 'no score'})"
    return f"{estimate.score}/5 — \"{estimate.reason}\""
