"""Aggregate results of a batch of replays: pass rates, divergences, metric deltas, verdicts.

Input is one :class:`CallRow` per replayed call (numbers and names only, built from a
:class:`~voicereplay.compare.model.Comparison` with :meth:`CallRow.from_comparison`); output is
an :class:`Aggregate` (plain dataclasses, ``to_json()``). Intervals and verdicts come from
:mod:`voicereplay.compare.aggregate_stats` (seeded percentile bootstrap over calls).

Per metric, a call's delta is replay − baseline. It is **unchanged** when ``|delta|`` is below
the metric's tolerance (:data:`METRICS`), else **improved** or **regressed** by the metric's
better direction (lower latency, WER and cost, higher CSAT are better); metrics with no direction
(duration, turns, tokens) count **changed** instead. Case lists are sorted by largest
``|delta|`` first.

Checks that read one side only are judged on the baseline call too: per check, a call
**improved** when production did not pass it and the replay does, **regressed** the other way
round.

Badness (worst calls first): more failing checks first (``fail`` and ``error`` both count),
then the earliest divergence turn (no divergence last), then the largest latency p90
regression, then the call key.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from voicereplay.compare.aggregate_stats import Bootstrap, Interval, Verdict, verdict
from voicereplay.compare.model import Comparison, SideMetrics, ToolChange
from voicereplay.errors import PayloadError

__all__ = ["METRICS", "ROW_FIELDS", "Aggregate", "CallRow", "MetricSpec", "aggregate",
           "aggregate_csv", "row_line", "rows_csv", "tool_change_label"]


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    unit: str  # as MetricUnit: "s", "", "tokens", "USD", "ratio"
    better: Literal["lower", "higher"] | None
    tolerance: float  # |delta| below this is "unchanged"


def _tokens(m: SideMetrics) -> float | None:
    parts = [p for p in (m.tokens.prompt, m.tokens.completion) if p is not None]
    return float(sum(parts)) if parts else None


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("latency_p50", "latency p50", "s", "lower", 0.05),
    MetricSpec("latency_p90", "latency p90", "s", "lower", 0.05),
    MetricSpec("wer", "WER", "ratio", "lower", 0.01),  # replay only: no baseline, no delta
    MetricSpec("duration", "duration", "s", None, 0.5),
    MetricSpec("agent_turns", "agent turns", "", None, 0.5),
    MetricSpec("tokens", "tokens", "tokens", None, 0.5),
    MetricSpec("cost", "LLM cost", "USD", "lower", 0.0001),
    MetricSpec("csat", "CSAT (estimate)", "", "higher", 0.5),  # comparison.csat (--csat)
)
_SIDE: dict[str, Callable[[SideMetrics], float | None]] = {
    "latency_p50": lambda m: m.latency.p50,
    "latency_p90": lambda m: m.latency.p90,
    "duration": lambda m: m.duration,
    "agent_turns": lambda m: float(m.agent_turns),
    "tokens": _tokens,
    "cost": lambda m: m.tokens.cost_usd,
}


def _score(value: int | None) -> float | None:
    return None if value is None else float(value)


def tool_change_label(change: ToolChange) -> str:
    """A tool change's kind as counted across calls, e.g. ``issue_refund → check_status``."""
    base = change.baseline.name if change.baseline else "?"
    rep = change.replay.name if change.replay else "?"
    if change.kind == "renamed":
        return f"{base} → {rep}"
    if change.kind == "added":
        return f"added {rep}"
    if change.kind == "dropped":
        return f"dropped {base}"
    return f"{base}: different arguments"


@dataclass(frozen=True)
class CallRow:
    """One replayed call, reduced to what the aggregate needs."""

    call_key: str
    checks: tuple[tuple[str, str], ...] = ()  # (check name, pass|fail|error)
    baseline_checks: tuple[tuple[str, str], ...] = ()  # the same, judged on the baseline call
    divergence_turn: int | None = None
    divergence_reason: str | None = None
    tool_changes: tuple[str, ...] = ()  # tool_change_label of each change
    baseline: dict[str, float | None] = field(default_factory=dict)  # metric key → value
    replay: dict[str, float | None] = field(default_factory=dict)
    fidelity_score: float | None = None
    fidelity_level: str = "unknown"

    @property
    def passed(self) -> bool:
        return all(status == "pass" for _, status in self.checks)

    @property
    def failing_checks(self) -> int:
        return sum(status != "pass" for _, status in self.checks)

    def delta(self, key: str) -> float | None:
        b, r = self.baseline.get(key), self.replay.get(key)
        return None if b is None or r is None else r - b

    def to_json(self) -> dict[str, object]:
        """Plain JSON data (how a batch's replay job stores its row)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> CallRow:
        """The row :meth:`to_json` wrote (unknown keys, from a newer version, are ignored)."""
        known = {f for f in cls.__dataclass_fields__}
        values: dict[str, object] = {k: v for k, v in data.items() if k in known}
        for name in ("checks", "baseline_checks"):
            pairs = values.get(name) or ()
            values[name] = tuple((str(n), str(s)) for n, s in pairs)  # type: ignore[attr-defined]
        values["tool_changes"] = tuple(values.get("tool_changes") or ())  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_comparison(cls, call_key: str, comparison: Comparison) -> CallRow:
        div, csat = comparison.divergence, comparison.csat
        return cls(
            call_key=call_key,
            checks=tuple((c.name, c.status) for c in comparison.checks),
            baseline_checks=tuple((c.name, c.status) for c in comparison.baseline_checks),
            divergence_turn=div.turn if div else None,
            divergence_reason=div.reason if div else None,
            tool_changes=tuple(tool_change_label(t) for t in comparison.tool_changes),
            baseline={**{k: f(comparison.baseline_metrics) for k, f in _SIDE.items()},
                      "csat": _score(csat.baseline.score if csat else None)},
            replay={**{k: f(comparison.replay_metrics) for k, f in _SIDE.items()},
                    "wer": comparison.word_errors.wer if comparison.word_errors else None,
                    "csat": _score(csat.replay.score if csat else None)},
            fidelity_score=comparison.fidelity.score,
            fidelity_level=comparison.fidelity.level,
        )


@dataclass(frozen=True)
class Rate:
    passed: int
    total: int
    rate: float | None
    ci: Interval | None


@dataclass(frozen=True)
class CheckSummary:
    """A check across the batch. Where it was also judged on the baseline call (checks that
    read one side only), ``improved`` lists the calls where production did not pass it and the
    replay does, ``regressed`` the other way round, ``unchanged`` the rest; ``baseline`` is
    production's pass rate over those calls."""

    name: str
    rate: Rate
    passing: list[str]  # call keys
    failing: list[str]  # call keys whose check failed or errored
    baseline: Rate | None = None
    improved: list[str] = field(default_factory=list)
    regressed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Distribution:
    count: int
    mean: float | None = None
    median: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class Case:
    call_key: str
    delta: float


@dataclass(frozen=True)
class MetricSummary:
    key: str
    label: str
    unit: str
    better: str | None
    tolerance: float
    baseline: Distribution
    replay: Distribution
    mean_delta: float | None
    ci: Interval | None
    verdict: Verdict
    improved: list[Case]
    regressed: list[Case]
    changed: list[Case]  # metrics with no better direction
    unchanged: list[Case]


@dataclass(frozen=True)
class WorstCall:
    call_key: str
    failing_checks: int
    divergence_turn: int | None
    latency_p90_delta: float | None


@dataclass(frozen=True)
class Aggregate:
    calls: int
    overall: Rate
    checks: list[CheckSummary]
    divergence_by_turn: dict[int, int]
    divergence_by_reason: dict[str, int]
    tool_changes: dict[str, int]  # label → number of calls with that change
    metrics: list[MetricSummary]
    worst: list[WorstCall]
    fidelity_mean: float | None
    fidelity_levels: dict[str, int]
    seed: int
    resamples: int
    confidence: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def metric(self, key: str) -> MetricSummary:
        return next(m for m in self.metrics if m.key == key)

    def check(self, name: str) -> CheckSummary:
        return next(c for c in self.checks if c.name == name)


def check_unique(rows: Sequence[CallRow]) -> None:
    """Raise PayloadError when a call key appears twice."""
    seen: set[str] = set()
    for row in rows:
        if row.call_key in seen:
            raise PayloadError(f"call key {row.call_key!r} appears twice in one batch")
        seen.add(row.call_key)


def _rate(flags: list[bool], stats: Bootstrap) -> Rate:
    n = len(flags)
    ci = stats.mean_ci([float(f) for f in flags])
    return Rate(passed=sum(flags), total=n, rate=sum(flags) / n if n else None, ci=ci)


def distribution(values: Sequence[float]) -> Distribution:
    if not values:
        return Distribution(count=0)
    data = np.asarray(values, dtype=float)
    return Distribution(count=len(values), mean=float(data.mean()),
                        median=float(np.median(data)), p90=float(np.percentile(data, 90)))


def classify(spec: MetricSpec, cases: list[Case]) -> dict[str, list[Case]]:
    """Sort each call's delta into improved / regressed / changed / unchanged."""
    out: dict[str, list[Case]] = {"improved": [], "regressed": [], "changed": [],
                                  "unchanged": []}
    for case in sorted(cases, key=lambda c: (-abs(c.delta), c.call_key)):
        if abs(case.delta) < spec.tolerance:
            out["unchanged"].append(case)
        elif spec.better is None:
            out["changed"].append(case)
        elif (case.delta < 0) == (spec.better == "lower"):
            out["improved"].append(case)
        else:
            out["regressed"].append(case)
    return out


def _metric(spec: MetricSpec, rows: Sequence[CallRow], stats: Bootstrap) -> MetricSummary:
    base = [v for r in rows if (v := r.baseline.get(spec.key)) is not None]
    rep = [v for r in rows if (v := r.replay.get(spec.key)) is not None]
    cases = [Case(r.call_key, d) for r in rows if (d := r.delta(spec.key)) is not None]
    deltas = [c.delta for c in cases]
    ci = stats.mean_ci(deltas)
    if not base and rep:
        verdict_ = Verdict("no baseline", f"{spec.label}: measured on the replay only, "
                                          "no baseline to compare with")
    else:
        verdict_ = verdict(spec.label, ci, better=spec.better, tolerance=spec.tolerance,
                           unit=spec.unit, count=len(deltas))
    return MetricSummary(
        key=spec.key, label=spec.label, unit=spec.unit, better=spec.better,
        tolerance=spec.tolerance, baseline=distribution(base), replay=distribution(rep),
        mean_delta=float(np.mean(deltas)) if deltas else None, ci=ci, verdict=verdict_,
        **classify(spec, cases))


def badness_key(row: CallRow) -> tuple[int, float, float, str]:
    """Sort key, worst first (rule in the module docstring)."""
    turn = row.divergence_turn if row.divergence_turn is not None else float("inf")
    return (-row.failing_checks, turn, -(row.delta("latency_p90") or 0.0), row.call_key)


def aggregate(rows: Sequence[CallRow], *, seed: int = 0, resamples: int = 2000,
              confidence: float = 0.95, worst: int = 10) -> Aggregate:
    """Summarise a batch: one row per call, every call key once."""
    check_unique(rows)
    stats = Bootstrap(seed, resamples, confidence)
    names: list[str] = []
    for row in rows:
        names.extend(n for n, _ in row.checks if n not in names)
    checks = []
    for name in names:
        status = {r.call_key: dict(r.checks)[name] for r in rows if name in dict(r.checks)}
        flags = [s == "pass" for s in status.values()]
        before = {r.call_key: dict(r.baseline_checks)[name] for r in rows
                  if name in dict(r.baseline_checks) and r.call_key in status}
        moved: dict[str, list[str]] = {"improved": [], "regressed": [], "unchanged": []}
        for key, was in before.items():
            now_passes, passed_before = status[key] == "pass", was == "pass"
            moved["unchanged" if now_passes == passed_before
                  else "improved" if now_passes else "regressed"].append(key)
        checks.append(CheckSummary(
            name=name, rate=_rate(flags, stats),
            passing=[k for k, s in status.items() if s == "pass"],
            failing=[k for k, s in status.items() if s != "pass"],
            baseline=_rate([s == "pass" for s in before.values()], stats) if before else None,
            **moved))
    diverged = [r for r in rows if r.divergence_turn is not None]
    turns: Counter[int] = Counter(t for r in rows if (t := r.divergence_turn) is not None)
    tools: Counter[str] = Counter()
    for row in rows:
        tools.update(set(row.tool_changes))
    scores = [r.fidelity_score for r in rows if r.fidelity_score is not None]
    return Aggregate(
        calls=len(rows),
        overall=_rate([r.passed for r in rows], stats),
        checks=checks,
        divergence_by_turn=dict(sorted(turns.items())),
        divergence_by_reason=dict(Counter(str(r.divergence_reason) for r in diverged
                                          ).most_common()),
        tool_changes=dict(sorted(tools.items(), key=lambda kv: (-kv[1], kv[0]))),
        metrics=[_metric(spec, rows, stats) for spec in METRICS],
        worst=[WorstCall(r.call_key, r.failing_checks, r.divergence_turn, r.delta("latency_p90"))
               for r in sorted(rows, key=badness_key)[:worst]],
        fidelity_mean=float(np.mean(scores)) if scores else None,
        fidelity_levels=dict(Counter(r.fidelity_level for r in rows).most_common()),
        seed=seed, resamples=resamples, confidence=confidence,
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else repr(value)


def aggregate_csv(agg: Aggregate) -> str:
    """One CSV row per check summary, the overall pass rate, and each metric summary. A check
    judged on the baseline too has its improved/regressed/unchanged counts and production's
    pass rate (in ``baseline_mean``)."""
    out = io.StringIO()
    fields = ["kind", "name", "unit", "count", "passed", "failed", "pass_rate", "baseline_mean",
              "baseline_median", "baseline_p90", "replay_mean", "replay_median", "replay_p90",
              "mean_delta", "ci_low", "ci_high", "improved", "regressed", "changed", "unchanged",
              "verdict"]
    writer = csv.DictWriter(out, fieldnames=fields, restval="", lineterminator="\n")
    writer.writeheader()
    for kind, name, rate, check in [("overall", "all checks", agg.overall, None),
                                    *(("check", c.name, c.rate, c) for c in agg.checks)]:
        moved = ({"improved": len(check.improved), "regressed": len(check.regressed),
                  "unchanged": len(check.unchanged),
                  "baseline_mean": _fmt(check.baseline.rate if check.baseline else None)}
                 if check is not None and check.baseline is not None else {})
        writer.writerow({"kind": kind, "name": name, "count": rate.total,
                         "pass_rate": _fmt(rate.rate),
                         "ci_low": _fmt(rate.ci.low if rate.ci else None),
                         "ci_high": _fmt(rate.ci.high if rate.ci else None),
                         "passed": rate.passed, "failed": rate.total - rate.passed, **moved})
    for m in agg.metrics:
        writer.writerow({
            "kind": "metric", "name": m.key, "unit": m.unit, "count": len(
                m.improved) + len(m.regressed) + len(m.changed) + len(m.unchanged),
            "baseline_mean": _fmt(m.baseline.mean), "baseline_median": _fmt(m.baseline.median),
            "baseline_p90": _fmt(m.baseline.p90), "replay_mean": _fmt(m.replay.mean),
            "replay_median": _fmt(m.replay.median), "replay_p90": _fmt(m.replay.p90),
            "mean_delta": _fmt(m.mean_delta), "ci_low": _fmt(m.ci.low if m.ci else None),
            "ci_high": _fmt(m.ci.high if m.ci else None), "improved": len(m.improved),
            "regressed": len(m.regressed), "changed": len(m.changed),
            "unchanged": len(m.unchanged), "verdict": m.verdict.word})
    return out.getvalue()


ROW_FIELDS: tuple[str, ...] = (
    "call_key", "passed", "failing_checks", "divergence_turn", "divergence_reason",
    "tool_changes", "fidelity_score", "fidelity_level",
    *(f"{spec.key}_{side}" for spec in METRICS for side in ("baseline", "replay", "delta")))


def row_line(r: CallRow) -> dict[str, object]:
    """One call's CSV line (the :data:`ROW_FIELDS`): pass/fail, divergence, tool changes,
    each metric on both sides and its delta."""
    line: dict[str, object] = {
        "call_key": r.call_key, "passed": r.passed, "failing_checks": r.failing_checks,
        "divergence_turn": "" if r.divergence_turn is None else r.divergence_turn,
        "divergence_reason": r.divergence_reason or "",
        "tool_changes": "; ".join(r.tool_changes),
        "fidelity_score": _fmt(r.fidelity_score), "fidelity_level": r.fidelity_level}
    for spec in METRICS:
        line[f"{spec.key}_baseline"] = _fmt(r.baseline.get(spec.key))
        line[f"{spec.key}_replay"] = _fmt(r.replay.get(spec.key))
        line[f"{spec.key}_delta"] = _fmt(r.delta(spec.key))
    return line


def rows_csv(rows: Sequence[CallRow]) -> str:
    """One CSV row per call (:func:`row_line`)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ROW_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(row_line(r))
    return out.getvalue()
