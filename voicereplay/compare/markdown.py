"""``report.md``: a comparison as GitHub-flavoured Markdown, for a pull request or an issue.

Everything comes from the :class:`~voicereplay.compare.model.Comparison`; nothing is computed
here that a person could not check against ``report.json``. Text from calls (transcripts,
check messages, judge reasoning) is escaped so it cannot break the layout: ``|`` and newlines
inside table cells, and Markdown/HTML markup everywhere.

The one-line summaries (divergence, fidelity, checks) come from
:mod:`voicereplay.compare.summary`, shared with the terminal view and the JUnit report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from voicereplay.compare.model import (
    AlignedTurn,
    CheckResult,
    Comparison,
    MetricRow,
    MetricUnit,
    ToolChange,
    WordOp,
)
from voicereplay.compare.summary import checks_line, divergence_line, fidelity_line

__all__ = ["report_markdown"]

_NONE = "—"
_PASS, _FAIL, _ERROR = "✅", "❌", "⚠️"




# -- escaping and formatting ---------------------------------------------------------------------

# Markup to escape; "_" only where it could start or end emphasis (not inside a word such as
# issue_refund), "$" because GitHub reads $…$ as math, "&" only where it would start an entity.
_MARKUP = re.compile(r"[\\`*~\[\]<>|#$]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|&(?=#?\w+;)")


def _escape(match: re.Match[str]) -> str:
    return "&amp;" if match.group(0) == "&" else "\\" + match.group(0)


def _inline(text: str) -> str:
    """Text with Markdown/HTML markup escaped, on one line (newlines become spaces)."""
    return _MARKUP.sub(_escape, " ".join(str(text).split()))


def _cell(text: str) -> str:
    """Text for a table cell: markup and ``|`` escaped, newlines as ``<br>``."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(_inline(line) for line in lines if line.strip()) or " "


def _code(text: str) -> str:
    """Inline code that survives backticks and pipes in ``text`` (for tables too)."""
    text = " ".join(str(text).split()).replace("|", "¦")
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]],
           align: Sequence[str] | None = None) -> list[str]:
    align = align or ["left"] * len(header)
    marks = {"left": "---", "right": "---:", "center": ":---:"}
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join(marks[a] for a in align) + " |"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _seconds(value: float | None) -> str:
    return _NONE if value is None else f"{value:.2f} s"


def _ratio(value: float | None) -> str:
    return _NONE if value is None else f"{value * 100:.0f}%"


def _plain(value: float | None, digits: int = 2) -> str:
    if value is None:
        return _NONE
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}f}"


def _kind(row: MetricRow) -> str:
    """How a metric row's values read: seconds, ratio, usd, or plain."""
    return {MetricUnit.SECONDS: "seconds", MetricUnit.RATIO: "ratio",
            MetricUnit.USD: "usd"}.get(row.unit, "plain")


def _usd(value: float | None) -> str:
    if value is None:
        return _NONE
    return f"${value:,.4f}" if 0 < abs(value) < 0.01 else f"${value:,.2f}"


def _metric_value(row: MetricRow, value: float | None) -> str:
    kind = _kind(row)
    if kind == "seconds":
        return _seconds(value)
    if kind == "ratio":
        return _ratio(value)
    if kind == "usd":
        return _usd(value)
    text = _plain(value)
    return f"{text} {row.unit}" if row.unit and value is not None else text


def _metric_delta(row: MetricRow) -> str:
    delta = row.delta
    if delta is None and row.baseline is not None and row.replay is not None:
        delta = row.replay - row.baseline
    if delta is None:
        return _NONE
    verdict = row.verdict
    if verdict is None and row.better is not None:
        if abs(delta) < 1e-12:
            verdict = "same"
        else:
            verdict = "better" if (delta < 0) == (row.better == "lower") else "worse"
    word = f" ({verdict})" if verdict else ""
    if abs(delta) < 1e-12:
        return f"= 0{word}"
    arrow = "▲" if delta > 0 else "▼"
    sign = "+" if delta > 0 else "−"
    size = abs(delta)
    kind = _kind(row)
    if kind == "seconds":
        amount = f"{size:.2f} s"
    elif kind == "ratio":
        amount = f"{size * 100:.1f} pp"
    elif kind == "usd":
        amount = _usd(size)
    else:
        amount = _plain(size) + (f" {row.unit}" if row.unit else "")
    return f"{arrow} {sign}{amount}{word}"


def _override_value(value: Any) -> str:
    if isinstance(value, str):
        lines = value.strip().splitlines()
        first = lines[0] if lines else ""
        if len(lines) > 1 or len(first) > 100:
            return f"{_code(first[:100])}… ({len(value)} characters, {len(lines)} lines)"
        return _code(value)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return _code(text if len(text) <= 120 else text[:120] + "…")


def _fmt(value: float | None, digits: int = 2) -> str:
    return _NONE if value is None else f"{value:.{digits}f}"


# -- sections -------------------------------------------------------------------------------


def _title(comparison: Comparison) -> list[str]:
    replay = comparison.replay
    lines = [f"# voicereplay: {comparison.call_provider} call {_code(comparison.call_id)}, "
             f"replay {_code(replay.id)}", ""]
    lines.append(f"- **Call:** {comparison.call_provider} {_code(comparison.call_id)}")
    run = f", run {replay.run_index + 1} of batch {_code(replay.batch_id)}" \
        if replay.batch_id else ""
    lines.append(f"- **Replay:** {_code(replay.id)}, mode **{_inline(replay.mode)}**{run}")
    snapshot = f"- **Snapshot:** {_code(replay.snapshot_id)}"
    if replay.base_snapshot_id and replay.base_snapshot_id != replay.snapshot_id:
        snapshot += f" (the call's own: {_code(replay.base_snapshot_id)})"
    lines.append(snapshot)
    if replay.overrides:
        lines.append("- **Overrides:**")
        for key in sorted(replay.overrides):
            lines.append(f"  - {_code(key)}: {_override_value(replay.overrides[key])}")
    else:
        lines.append("- **Overrides:** none (the call's own agent)")
    backends = replay.backends.named()
    if backends:
        lines.append("- **Backends:** " + ", ".join(
            f"{_inline(stage)} {_code(name)}" for stage, name in sorted(backends.items())))
    if replay.ended_reason:
        lines.append(f"- **Ended:** {_inline(replay.ended_reason)}")
    lines.append(f"- **Generated:** {comparison.generated_at.isoformat(timespec='seconds')}")
    for warning in [*replay.warnings, *comparison.warnings]:
        lines.append(f"- ⚠️ {_inline(warning)}")
    return lines


def _verdict(comparison: Comparison) -> list[str]:
    mark = _PASS if comparison.passed else _FAIL
    return [
        f"**Verdict:** {mark} {checks_line(comparison)} · **divergence:** "
        f"{_inline(divergence_line(comparison))} · **fidelity:** "
        f"{_inline(fidelity_line(comparison))}",
    ]


def _divergence(comparison: Comparison) -> list[str]:
    divergence = comparison.divergence
    similarity = "n/a" if comparison.similarity is None else f"{comparison.similarity:.2f}"
    lines = ["## Divergence", "",
             f"Mean agent-turn similarity {similarity} ({_inline(comparison.similarity_method)}; "
             f"a turn under {comparison.threshold:.2f} departs from the baseline)."]
    if divergence is None:
        lines += ["", "The replay never departed from the baseline."]
        return lines
    lines += ["", f"First departure: **agent turn {divergence.turn}** "
                  f"({_inline(divergence.reason)}): {_inline(divergence.detail)}"]
    if divergence.similarity is not None:
        lines[-1] += f" — similarity {divergence.similarity:.2f} " \
                     f"(threshold {divergence.threshold:.2f})"
    if divergence.baseline_intent or divergence.replay_intent:
        lines += ["", f"Intent: {_inline(divergence.baseline_intent or '?')} → "
                      f"{_inline(divergence.replay_intent or '?')}"]
    if divergence.baseline_text or divergence.replay_text:
        lines += [""] + _table(["Baseline", "Replay"],
                               [[_cell(divergence.baseline_text), _cell(divergence.replay_text)]])
    return lines


def _metrics(comparison: Comparison) -> list[str]:
    if not comparison.metrics:
        return []
    rows = [[_cell(r.label[:1].upper() + r.label[1:]), _metric_value(r, r.baseline),
             _metric_value(r, r.replay), _metric_delta(r)] for r in comparison.metrics]
    return ["## Metrics", ""] + _table(["Metric", "Baseline", "Replay", "Δ"], rows,
                                       ["left", "right", "right", "left"])


def _csat(comparison: Comparison) -> list[str]:
    csat = comparison.csat
    if csat is None:
        return []
    rows = [[side, _NONE if e.score is None else f"{e.score}/5",
             _cell(e.reason if e.score is not None else f"no estimate: {e.error or ''}")]
            for side, e in (("Baseline", csat.baseline), ("Replay", csat.replay))]
    delta = _NONE if csat.delta is None else f"{csat.delta:+d}"
    return (["## Caller satisfaction (estimate)", ""]
            + _table(["Side", "Score", "Reason"], rows, ["left", "right", "left"])
            + ["", f"Δ {delta}, estimated by {_inline(csat.replay.model)}."])


def _tool_change(change: ToolChange) -> list[str]:
    lines = [f"- **{change.kind}**: {_inline(change.summary)}"]
    for name, sides in sorted(change.arguments.items()):
        old = json.dumps(sides.get("baseline"), ensure_ascii=False, default=str)
        new = json.dumps(sides.get("replay"), ensure_ascii=False, default=str)
        lines.append(f"  - {_code(name)}: {_code(old)} → {_code(new)}")
    return lines


def _tool_changes(comparison: Comparison) -> list[str]:
    lines = ["## Tool-call changes", ""]
    if not comparison.tool_changes:
        return lines + ["No tool call was added, dropped or changed."]
    for change in comparison.tool_changes:
        lines += _tool_change(change)
    return lines


def _latency(comparison: Comparison) -> list[str]:
    lines = ["## Response latency per agent turn", ""]
    if not comparison.latency:
        return lines + ["No agent turn answered a caller turn."]
    base, rep = comparison.baseline_metrics.latency, comparison.replay_metrics.latency
    lines.append(f"p50 {_seconds(base.p50)} → {_seconds(rep.p50)}, "
                 f"p90 {_seconds(base.p90)} → {_seconds(rep.p90)} (baseline → replay).")
    lines.append("")
    rows = []
    for row in comparison.latency:
        delta = _NONE
        if row.baseline is not None and row.replay is not None:
            diff = row.replay - row.baseline
            delta = ("▲ +" if diff > 0 else "▼ −" if diff < 0 else "= ") + f"{abs(diff):.2f} s"
        rows.append([f"turn {row.turn}", _seconds(row.baseline), row.baseline_source or _NONE,
                     _seconds(row.replay), delta, _seconds(row.stt), _seconds(row.llm_ttft),
                     _seconds(row.tts_ttfa)])
    lines += _table(["Agent turn", "Baseline", "Measured from", "Replay", "Δ", "STT",
                     "LLM TTFT", "TTS TTFA"], rows,
                    ["left", "right", "left", "right", "left", "right", "right", "right"])
    return lines


def _word_errors(comparison: Comparison) -> list[str]:
    errors = comparison.word_errors
    if errors is None:
        return []
    lines = ["## Caller speech recognition (replay STT against the provider's transcript)", "",
             f"WER {errors.wer * 100:.1f}%, CER {errors.cer * 100:.1f}% "
             f"(normalized: {_inline(errors.normalizer)})."]
    if errors.turns:
        rows = [[f"caller {t.turn}", f"{t.wer * 100:.1f}%", f"{t.cer * 100:.1f}%",
                 _cell(t.reference), _cell(t.hypothesis)] for t in errors.turns]
        lines += [""] + _table(["Turn", "WER", "CER", "Provider transcript", "Replay heard"],
                               rows, ["left", "right", "right", "left", "left"])
    return lines


def _diff_cells(words: Sequence[WordOp]) -> tuple[str, str]:
    """(baseline, replay) cells: deleted words ~~struck~~ on the left, inserted **bold** right."""
    left: list[str] = []
    right: list[str] = []
    for op in words:
        old, new = _inline(op.baseline), _inline(op.replay)
        if op.op == "equal":
            left.append(old)
            right.append(new or old)
            continue
        if op.baseline.strip():
            left.append(f"~~{old}~~")
        if op.replay.strip():
            right.append(f"**{new}**")
    return " ".join(w for w in left if w) or " ", " ".join(w for w in right if w) or " "


def _turn_row(turn: AlignedTurn) -> list[str]:
    label = f"{'agent' if turn.kind == 'agent' else 'caller'} {turn.number or '?'}"
    if turn.status != "matched":
        label += f" ({turn.status})"
    if turn.kind == "agent" and turn.words:
        baseline, replay = _diff_cells(turn.words)
    else:
        baseline, replay = _cell(turn.baseline_text), _cell(turn.replay_text)
    if turn.status == "inserted":
        baseline = _NONE
    if turn.status == "dropped":
        replay = _NONE
    if turn.baseline_tools:
        baseline += "<br>🔧 " + ", ".join(_code(t) for t in turn.baseline_tools)
    if turn.replay_tools:
        replay += "<br>🔧 " + ", ".join(_code(t) for t in turn.replay_tools)
    similarity = _fmt(turn.similarity) if turn.kind == "agent" else ""
    return [label, baseline.strip() or " ", replay.strip() or " ", similarity]


def _transcript(comparison: Comparison) -> list[str]:
    if not comparison.alignment:
        return []
    lines = ["## Transcript, side by side", "",
             "Agent turns show the word diff: ~~deleted~~ from the baseline, **inserted** by "
             "the replay. Caller turns show the provider's transcript and what the replay's STT "
             "heard.", ""]
    rows = [_turn_row(t) for t in comparison.alignment]
    return lines + _table(["Turn", "Baseline", "Replay", "Similarity"], rows,
                          ["left", "left", "left", "right"])


def _check(check: CheckResult) -> list[str]:
    mark = {"pass": _PASS, "fail": _FAIL, "error": _ERROR}[check.status]
    head = f"- {mark} **{_inline(check.name)}** ({_code(check.type)}, {check.status})"
    if check.message:
        head += f": {_inline(check.message)}"
    lines = [head]
    for evidence in check.evidence:
        where = f"turn {evidence.turn}: " if evidence.turn is not None else ""
        lines.append(f"  - {where}“{_inline(evidence.text)}”")
    if check.reasoning:
        judge = f" ({_code(check.judge_model)})" if check.judge_model else ""
        lines.append(f"  - judge{judge} reasoning:")
        lines.append("")
        for line in check.reasoning.strip().splitlines():
            lines.append(f"    > {_inline(line)}" if line.strip() else "    >")
        lines.append("")
    return lines


def _checks(comparison: Comparison) -> list[str]:
    lines = ["## Checks", ""]
    if not comparison.checks:
        return lines + ["No checks were run."]
    lines += [checks_line(comparison).capitalize() + ".", ""]
    for check in comparison.checks:
        lines += _check(check)
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def _fidelity(comparison: Comparison) -> list[str]:
    fidelity = comparison.fidelity
    lines = ["## Fidelity", "", f"**{_inline(fidelity_line(comparison))}**"]
    parts = [("agent similarity", fidelity.agent_similarity),
             ("tool agreement", fidelity.tool_agreement),
             ("turn-count ratio", fidelity.turn_count_ratio)]
    known = [f"{name} {value:.2f}" for name, value in parts if value is not None]
    details = []
    if known:
        details.append(", ".join(known))
    if fidelity.runs > 1:
        details.append(f"{fidelity.runs} runs")
    if fidelity.replay_id:
        details.append(f"measured on replay {_code(fidelity.replay_id)}")
    if details:
        lines += ["", "; ".join(details) + "."]
    if fidelity.note:
        lines += ["", _inline(fidelity.note)]
    if fidelity.flakiness:
        rows = [[f"turn {f.turn}", f"{f.disagreement:.2f}", f"{f.tool_disagreement:.2f}",
                 "<br>".join(_cell(t) for t in f.texts) or " "] for f in fidelity.flakiness]
        lines += ["", "Flakiness per agent turn (how much the runs disagree with each other):",
                  ""]
        lines += _table(["Agent turn", "Disagreement", "Tool disagreement", "Replies"], rows,
                        ["left", "right", "right", "left"])
    return lines


def _figures(figures: Mapping[str, str] | None) -> list[str]:
    if not figures:
        return []
    lines = ["## Figures", ""]
    for name, target in figures.items():
        alt = re.sub(r"[\[\]\\]", "", str(name))
        link = quote(str(target).replace("\\", "/"), safe="/._-~%#")
        lines += [f"![{alt}]({link})", ""]
    lines.pop()
    return lines


def report_markdown(comparison: Comparison, *, figures: Mapping[str, str] | None = None) -> str:
    """The whole report as Markdown (GitHub flavour), ending in a newline.

    ``figures`` maps a picture's name (the alt text) to its path relative to where the
    Markdown file will be, e.g. ``{"latency": "latency.png"}``; each is embedded as an image.
    Reads every field of the comparison except ``files`` and ``schema_version``.
    """
    sections = [
        _title(comparison),
        _verdict(comparison),
        _divergence(comparison),
        _metrics(comparison),
        _csat(comparison),
        _tool_changes(comparison),
        _latency(comparison),
        _word_errors(comparison),
        _transcript(comparison),
        _checks(comparison),
        _fidelity(comparison),
        _figures(figures),
    ]
    blocks = ["\n".join(section) for section in sections if section]
    return "\n\n".join(blocks).rstrip() + "\n"
