"""The comparison in a terminal (rich): side-by-side transcript with the diff highlighted, the
metrics with deltas colored better/worse, latency per turn, checks and fidelity. No logic."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from voicereplay.compare.align import call_text
from voicereplay.compare.model import (
    AlignedTurn,
    Comparison,
    CsatPair,
    MetricRow,
    MetricUnit,
    WerTurn,
)
from voicereplay.compare.summary import csat_line, divergence_line, fidelity_line
from voicereplay.models import Call, Replay
from voicereplay.render import add_row

__all__ = ["comparison_view"]

_VERDICT = {"better": "green", "worse": "red", "same": "dim"}
_STATUS = {"pass": Text("PASS", style="green"), "fail": Text("FAIL", style="red"),
           "error": Text("ERROR", style="yellow")}


def _num(value: float | None, unit: MetricUnit) -> str:
    if value is None:
        return "—"
    if unit is MetricUnit.RATIO:
        return f"{value:.0%}"
    if unit is MetricUnit.USD:
        return f"-${-value:.4f}" if value < 0 else f"${value:.4f}"
    if unit is MetricUnit.SECONDS:
        return f"{value:.2f}s"
    return f"{value:g}" if float(value).is_integer() else f"{value:.1f}"


def _delta(row: MetricRow) -> Text:
    if row.delta is None:
        return Text("—", style="dim")
    sign = "+" if row.delta > 0 else "" if row.delta < 0 else "±"
    shown = (f"{sign}{row.delta * 100:.0f} pts" if row.unit is MetricUnit.RATIO
             else f"{sign}{_num(row.delta, row.unit)}")
    return Text(shown, style=_VERDICT.get(row.verdict or "", ""))


def _diff_cells(row: AlignedTurn) -> tuple[Text, Text]:
    left, right = Text(), Text()
    for op in row.words:
        if op.op == "equal":
            left.append(op.baseline + " ")
            right.append(op.replay + " ")
            continue
        if op.baseline:
            left.append(op.baseline, style="red strike" if op.op == "delete" else "yellow")
            left.append(" ")
        if op.replay:
            right.append(op.replay, style="bold green" if op.op == "insert" else "bold yellow")
            right.append(" ")
    return left, right


def _tools(cell: Text, calls: list[str], changed: set[str], style: str) -> None:
    for name in calls:
        cell.append("\n→ " + name, style=style if name in changed else "magenta")


def _transcript(comparison: Comparison, call: Call, replay: Replay) -> Table:
    table = Table(title="transcript: baseline vs replay", expand=True, show_lines=True)
    table.add_column("turn", justify="right", no_wrap=True)
    table.add_column("baseline", ratio=1)
    table.add_column("replay", ratio=1)
    table.add_column("sim", justify="right", no_wrap=True)
    heard: dict[int, WerTurn] = {}
    if comparison.word_errors:
        heard = {t.turn: t for t in comparison.word_errors.turns}
    diverged = comparison.divergence.turn if comparison.divergence else None
    for row in comparison.alignment:
        if row.kind == "caller":
            left = Text(row.baseline_text, style="green")
            right = Text(row.replay_text, style="green")
            spoken = heard.get(row.number or -1)
            if spoken is not None and row.status == "matched" and spoken.wer > 0:
                right.append(f"\nheard: {spoken.hypothesis}  (WER {spoken.wer:.0%})", style="dim")
            label = Text(f"caller {row.number}", style="green")
            add_row(table, label, left if row.baseline_turns else Text("—", style="dim"),
                          right if row.replay_turns else Text("—", style="dim"), "")
            continue
        left, right = _diff_cells(row)
        changed_old = {c.baseline.name for c in row.tool_changes if c.baseline}
        changed_new = {c.replay.name for c in row.tool_changes if c.replay}
        _tools(left, [_call(call, i) for i in row.baseline_turns if call.turns[i].tool_calls],
               {n for n in changed_old}, "bold red")
        _tools(right, [_call(replay, i) for i in row.replay_turns
                       if replay.turns[i].tool_calls], {n for n in changed_new}, "bold green")
        style = "bold red" if row.number == diverged else "cyan"
        label = Text(f"agent {row.number}", style=style)
        if row.number == diverged:
            label.append("\ndiverges", style="bold red")
        sim = "" if row.similarity is None else f"{row.similarity:.2f}"
        add_row(table, label, left if row.status != "inserted" else Text("—", style="dim"),
                      right if row.status != "dropped" else Text("—", style="dim"), sim)
    return table


def _call(source: Call | Replay, index: int) -> str:
    return ", ".join(call_text(c) for c in source.turns[index].tool_calls)


def _metrics(comparison: Comparison) -> Table:
    table = Table(title="metrics")
    table.add_column("metric")
    table.add_column("baseline", justify="right")
    table.add_column("replay", justify="right")
    table.add_column("Δ", justify="right")
    for row in comparison.metrics:
        add_row(table, row.label, _num(row.baseline, row.unit), _num(row.replay, row.unit),
                      _delta(row))
    return table


def _latency(comparison: Comparison) -> Table:
    table = Table(title="response latency per agent turn (end of caller speech → agent audio)")
    for name in ("turn", "baseline", "source", "replay", "stt", "llm ttft", "tts ttfa"):
        table.add_column(name, justify="right" if name != "source" else "left")
    for t in comparison.latency:
        seconds = MetricUnit.SECONDS
        add_row(table, str(t.turn), _num(t.baseline, seconds), t.baseline_source or "—",
                _num(t.replay, seconds), _num(t.stt, seconds), _num(t.llm_ttft, seconds),
                _num(t.tts_ttfa, seconds))
    return table


def _checks(comparison: Comparison) -> Table:
    table = Table(title="checks")
    table.add_column("check")
    table.add_column("result")
    table.add_column("evidence", ratio=1)
    for check in comparison.checks:
        evidence = "; ".join(
            (f"turn {e.turn}: " if e.turn is not None else "") + e.text for e in check.evidence)
        detail = Text(check.message)
        if evidence:
            detail.append("\n" + evidence, style="dim")
        if check.reasoning:
            detail.append(f"\njudge ({check.judge_model}): {check.reasoning}", style="italic")
        add_row(table, check.name, _STATUS[check.status], detail)
    return table


def _csat(head: Table, csat: CsatPair) -> None:
    """Caller satisfaction: one row per side, the replay's with the change in score."""
    delta = "" if csat.delta is None else f"  (Δ {csat.delta:+d})"
    style = "green" if (csat.delta or 0) > 0 else "red" if (csat.delta or 0) < 0 else ""
    add_row(head, "CSAT (est.)", Text(f"baseline {csat_line(csat.baseline)}"))
    replay = Text(f"replay   {csat_line(csat.replay)}")
    replay.append(delta, style=style)
    add_row(head, "", replay)
    cached = " (baseline reused)" if csat.baseline.cached else ""
    add_row(head, "", Text(f"estimated by {csat.replay.model}{cached}", style="dim"))


def comparison_view(comparison: Comparison, call: Call, replay: Replay) -> RenderableType:
    """Everything a person reads to decide whether the change worked."""
    info = comparison.replay
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    add_row(head, "call", f"{comparison.call_provider}:{comparison.call_id}")
    add_row(head, "replay", f"{info.id}  ({info.mode}, {info.backends.llm or '?'})")
    overrides = ", ".join(f"{k}={str(v)[:40]!r}" for k, v in info.overrides.items())
    add_row(head, "overrides", overrides or "none")
    add_row(head, "divergence", divergence_line(comparison))
    add_row(head, "similarity", "—" if comparison.similarity is None else
                 f"{comparison.similarity:.2f} ({comparison.similarity_method})")
    add_row(head, "fidelity", fidelity_line(comparison))
    if comparison.fidelity.note:
        add_row(head, "", Text(comparison.fidelity.note, style="dim"))
    if comparison.word_errors:
        errors = comparison.word_errors
        add_row(head, "caller STT", f"WER {errors.wer:.1%} · CER {errors.cer:.1%} against the "
                                   "provider's transcript")
    if comparison.checks:
        passed = sum(c.status == "pass" for c in comparison.checks)
        style = "green" if passed == len(comparison.checks) else "red"
        add_row(head, "checks", Text(f"{passed}/{len(comparison.checks)} passed", style=style))
    if comparison.csat is not None:
        _csat(head, comparison.csat)
    parts: list[RenderableType] = [Panel(head, title="comparison", expand=False),
                                   _transcript(comparison, call, replay)]
    if comparison.tool_changes:
        parts.append(Text("tool calls changed:\n" + "\n".join(
            f"  {c.summary}" for c in comparison.tool_changes), style="magenta"))
    parts.append(_metrics(comparison))
    if comparison.latency:
        parts.append(_latency(comparison))
    if comparison.checks:
        parts.append(_checks(comparison))
    for line in [*comparison.replay.warnings, *comparison.warnings]:
        parts.append(Text(f"warning: {line}", style="yellow"))
    if comparison.files:
        parts.append(Text("reports: " + ", ".join(comparison.files.values()), style="dim"))
    return Group(*parts)
