"""How a batch looks in the terminal: its state, the aggregate, and batch against batch.

Every string that comes from a call, a check or a user is printed literally (``render.add_row``
and :class:`rich.text.Text`), never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from voicereplay.compare.aggregate import Aggregate, Case, MetricSummary, Rate
from voicereplay.compare.aggregate_batch import BatchComparison
from voicereplay.compare.aggregate_stats import format_value
from voicereplay.pipeline.batch_reports import BatchReport
from voicereplay.pipeline.batches import BatchStatus
from voicereplay.render import add_row
from voicereplay.store.batches import Batch

__all__ = ["batch_table", "comparison_view", "report_view", "status_line"]


def status_line(status: BatchStatus) -> str:
    return (f"{status.state}: {status.completed} done, {status.failed} failed, "
            f"{status.running} running, {status.pending} pending of {status.total}"
            + (f", {status.cancelled} cancelled" if status.cancelled else ""))


def batch_table(batches: Sequence[Batch], statuses: dict[str, BatchStatus]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("batch", "name", "created", "calls", "state", "done", "failed"):
        table.add_column(column, justify="right" if column in ("calls", "done", "failed")
                         else "left")
    for batch in batches:
        st = statuses[batch.id]
        add_row(table, batch.id[:12], batch.name or "", batch.created_at.strftime(
            "%Y-%m-%d %H:%M"), str(st.total), st.state, str(st.completed), str(st.failed))
    return table


def _rate(rate: Rate) -> str:
    if rate.rate is None:
        return "—"
    ci = (f" (CI {rate.ci.low * 100:.0f}–{rate.ci.high * 100:.0f} %)" if rate.ci else "")
    return f"{rate.passed}/{rate.total} = {rate.rate * 100:.0f} %{ci}"


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return format_value(value, unit).lstrip("+")


def _keys(keys: list[str], limit: int) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit
                                      else "")


def _cases(cases: list[Case], unit: str, limit: int) -> str:
    shown = ", ".join(f"{c.call_key} ({format_value(c.delta, unit)})" for c in cases[:limit])
    return shown + (f" and {len(cases) - limit} more" if len(cases) > limit else "")


def _metrics_table(metrics: list[MetricSummary]) -> Table:
    table = Table(title="metrics (replay − baseline per call)", show_edge=False,
                  title_justify="left")
    for column in ("metric", "baseline median", "replay median", "mean Δ", "improved",
                   "regressed", "unchanged", "verdict"):
        table.add_column(column)
    for m in metrics:
        moved = len(m.changed) if m.better is None else len(m.improved)
        add_row(table, m.label, _value(m.baseline.median, m.unit),
                _value(m.replay.median, m.unit),
                "—" if m.mean_delta is None else format_value(m.mean_delta, m.unit),
                f"{moved}{' changed' if m.better is None else ''}", str(len(m.regressed)),
                str(len(m.unchanged)), m.verdict.word)
    return table


def aggregate_view(agg: Aggregate, *, regressions_only: bool = False,
                   links: dict[str, str] | None = None, limit: int = 10) -> RenderableType:
    parts: list[RenderableType] = [Text(f"overall: {_rate(agg.overall)} of calls pass every "
                                        "check")]
    if agg.checks:
        checks = Table(title="checks (production → replay)", show_edge=False,
                       title_justify="left")
        for column in ("check", "pass rate", "production", "fixed", "broken", "failing calls"):
            checks.add_column(column)
        for c in agg.checks:
            if regressions_only and not (c.failing or c.regressed):
                continue
            add_row(checks, c.name, _rate(c.rate),
                    "—" if c.baseline is None else f"{c.baseline.passed}/{c.baseline.total}",
                    "—" if c.baseline is None else str(len(c.improved)),
                    "—" if c.baseline is None else str(len(c.regressed)),
                    _keys(c.failing, limit))
        parts.append(checks)
        broken = [(c.name, k) for c in agg.checks for k in c.regressed]
        if broken:
            parts.append(Text("broken (passed in production, fails now): " + "; ".join(
                f"{k} ({name})" for name, k in broken[:limit]), style="red"))
    parts.append(_metrics_table(agg.metrics))
    lines = Text()
    for m in agg.metrics:
        lines.append(f"• {m.verdict.text}\n")
        if m.regressed:
            lines.append(f"    regressed: {_cases(m.regressed, m.unit, limit)}\n", style="red")
        if m.improved and not regressions_only:
            lines.append(f"    improved: {_cases(m.improved, m.unit, limit)}\n", style="green")
    parts.append(lines)
    if agg.divergence_by_turn:
        parts.append(Text("divergence by turn: " + ", ".join(
            f"turn {t}: {n}" for t, n in agg.divergence_by_turn.items())
            + "\ndivergence by reason: " + ", ".join(
            f"{r}: {n}" for r, n in agg.divergence_by_reason.items())))
    if agg.tool_changes:
        parts.append(Text("tool-call changes: " + "; ".join(
            f"{label}: {n} call{'s' if n != 1 else ''}" for label, n in agg.tool_changes.items())))
    fid = "—" if agg.fidelity_mean is None else f"{agg.fidelity_mean:.2f}"
    parts.append(Text(f"fidelity: mean {fid} (" + ", ".join(
        f"{level}: {n}" for level, n in agg.fidelity_levels.items()) + ")"))
    if agg.worst:
        worst = Table(title=f"worst {len(agg.worst)} calls", show_edge=False,
                      title_justify="left")
        for column in ("call", "failing checks", "diverged at", "latency p90 Δ", "replay"):
            worst.add_column(column)
        for w in agg.worst:
            add_row(worst, w.call_key, str(w.failing_checks),
                    "—" if w.divergence_turn is None else f"turn {w.divergence_turn}",
                    "—" if w.latency_p90_delta is None
                    else format_value(w.latency_p90_delta, "s"),
                    (links or {}).get(w.call_key, ""))
        parts.append(worst)
    return Group(*parts)


def report_view(report: BatchReport, *, regressions_only: bool = False, limit: int = 10
                ) -> RenderableType:
    b = report.batch
    head = Text(f"batch {b.id[:12]}" + (f" ({b.name})" if b.name else "")
                + f" · {len(b.calls)} calls · {status_line(report.status)}")
    parts: list[RenderableType] = [head]
    failed = [c for c in report.calls if c.status in ("FAILED", "CANCELLED")]
    if failed:
        lines = Text()
        for c in failed[:limit]:
            lines.append(f"  {c.key}: {c.status.lower()}: {c.error or ''}\n", style="red")
        if len(failed) > limit:
            lines.append(f"  and {len(failed) - limit} more\n", style="red")
        parts.append(lines)
    if report.aggregate is None:
        parts.append(Text("no call has been replayed yet", style="dim"))
    else:
        links = {c.key: f"voicereplay replays show {c.replay_id[:12]}"
                 for c in report.calls if c.replay_id}
        parts.append(aggregate_view(report.aggregate, regressions_only=regressions_only,
                                    links=links, limit=limit))
    return Group(*parts)


def comparison_view(a: BatchReport, b: BatchReport, cmp: BatchComparison, *,
                    limit: int = 10) -> RenderableType:
    head = Text(f"batch B {b.batch.label} against batch A {a.batch.label}: "
                f"{len(cmp.matched)} calls matched")
    missing = Text()
    if cmp.only_in_a:
        missing.append(f"only in A ({len(cmp.only_in_a)}): {', '.join(cmp.only_in_a)}\n",
                       style="yellow")
    if cmp.only_in_b:
        missing.append(f"only in B ({len(cmp.only_in_b)}): {', '.join(cmp.only_in_b)}\n",
                       style="yellow")
    checks = Table(title="checks (A → B)", show_edge=False, title_justify="left")
    for column in ("check", "improved", "regressed", "unchanged", "regressed calls"):
        checks.add_column(column)
    for c in cmp.checks:
        add_row(checks, c.name, str(len(c.improved)), str(len(c.regressed)),
                str(len(c.unchanged)), ", ".join(c.regressed[:limit]))
    lines = Text()
    for m in cmp.metrics:
        lines.append(f"• {m.verdict.text}\n")
        if m.regressed:
            lines.append(f"    regressed: {_cases(m.regressed, m.unit, limit)}\n", style="red")
    return Group(head, missing, checks, lines)
