"""Batch against batch: two batches' rows matched by call key, A as the reference.

Per matched call and metric the delta is B's replay value − A's replay value; improved,
regressed, changed and unchanged follow :func:`voicereplay.compare.aggregate.classify` (the
metric's tolerance and better direction). A check **improved** when it does not pass in A and
passes in B, **regressed** the other way round. Calls present in only one batch are listed in
``only_in_a`` / ``only_in_b`` and never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from voicereplay.compare.aggregate import (
    METRICS,
    CallRow,
    Case,
    check_unique,
    classify,
)
from voicereplay.compare.aggregate_stats import Bootstrap, Interval, Verdict, verdict

__all__ = ["BatchCheck", "BatchComparison", "BatchMetric", "PairedCall", "compare_batches"]


@dataclass(frozen=True)
class PairedCall:
    call_key: str
    deltas: dict[str, float | None]  # metric key → B − A
    checks: dict[str, tuple[str | None, str | None]]  # check name → (A status, B status)


@dataclass(frozen=True)
class BatchMetric:
    key: str
    label: str
    unit: str
    mean_delta: float | None
    ci: Interval | None
    verdict: Verdict
    improved: list[Case]
    regressed: list[Case]
    changed: list[Case]
    unchanged: list[Case]


@dataclass(frozen=True)
class BatchCheck:
    name: str
    improved: list[str]  # fails (or errors) in A, passes in B
    regressed: list[str]  # passes in A, not in B
    unchanged: list[str]
    missing: list[str]  # matched calls where only one batch ran this check


@dataclass(frozen=True)
class BatchComparison:
    matched: list[str]
    only_in_a: list[str]
    only_in_b: list[str]
    calls: list[PairedCall]
    metrics: list[BatchMetric]
    checks: list[BatchCheck]

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(asdict(self), indent=indent, ensure_ascii=False)

    def metric(self, key: str) -> BatchMetric:
        return next(m for m in self.metrics if m.key == key)

    def check(self, name: str) -> BatchCheck:
        return next(c for c in self.checks if c.name == name)


def _delta(a: CallRow, b: CallRow, key: str) -> float | None:
    va, vb = a.replay.get(key), b.replay.get(key)
    return None if va is None or vb is None else vb - va


def compare_batches(a_rows: Sequence[CallRow], b_rows: Sequence[CallRow], *, seed: int = 0,
                    resamples: int = 2000, confidence: float = 0.95) -> BatchComparison:
    """Compare batch B with batch A call by call (A is the reference)."""
    check_unique(a_rows)
    check_unique(b_rows)
    a = {r.call_key: r for r in a_rows}
    b = {r.call_key: r for r in b_rows}
    matched = [k for k in a if k in b]
    names: list[str] = []
    for row in [*a_rows, *b_rows]:
        names.extend(n for n, _ in row.checks if n not in names)
    calls = []
    for key in matched:
        ca, cb = dict(a[key].checks), dict(b[key].checks)
        calls.append(PairedCall(
            call_key=key, deltas={s.key: _delta(a[key], b[key], s.key) for s in METRICS},
            checks={n: (ca.get(n), cb.get(n)) for n in names if n in ca or n in cb}))
    stats = Bootstrap(seed, resamples, confidence)
    metrics = []
    for spec in METRICS:
        cases = [Case(c.call_key, d) for c in calls if (d := c.deltas[spec.key]) is not None]
        deltas = [c.delta for c in cases]
        ci = stats.mean_ci(deltas)
        metrics.append(BatchMetric(
            key=spec.key, label=spec.label, unit=spec.unit,
            mean_delta=float(np.mean(deltas)) if deltas else None, ci=ci,
            verdict=verdict(spec.label, ci, better=spec.better, tolerance=spec.tolerance,
                            unit=spec.unit, count=len(deltas), candidate="batch B",
                            reference="batch A"),
            **classify(spec, cases)))
    checks = []
    for name in names:
        sorts: dict[str, list[str]] = {"improved": [], "regressed": [], "unchanged": [],
                                       "missing": []}
        for call in calls:
            if name not in call.checks:
                continue
            sa, sb = call.checks[name]
            if sa is None or sb is None:
                sorts["missing"].append(call.call_key)
            elif (sa == "pass") == (sb == "pass"):
                sorts["unchanged"].append(call.call_key)
            else:
                sorts["improved" if sb == "pass" else "regressed"].append(call.call_key)
        checks.append(BatchCheck(name=name, **sorts))
    return BatchComparison(
        matched=matched, only_in_a=[k for k in a if k not in b],
        only_in_b=[k for k in b if k not in a], calls=calls, metrics=metrics, checks=checks)
