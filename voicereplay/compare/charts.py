"""The pictures written beside a replay: response latency per agent turn, and the two waveforms.

Both are drawn with matplotlib's object API (:class:`matplotlib.figure.Figure` on an Agg
canvas), never pyplot, so nothing global changes for other users of matplotlib in the process
(no backend switch, no rcParams edits, no figure registry).

The format is the path's suffix: ``.png`` or ``.svg``. Sizes are fixed:

* :data:`LATENCY_SIZE` — 1200 × 500 px; :data:`WAVEFORM_SIZE` — 1400 × 600 px.
* PNG: exactly that many pixels (figure size in inches × 100 dpi).
* SVG: the same drawing, its root ``width``/``height`` set to the same numbers in ``pt``
  (pt used as px; the ``viewBox`` is kept, so it scales uniformly and looks like the PNG).

Audio is read with :func:`voicereplay.audio.load_channels`; a file it cannot read is a
:class:`~voicereplay.errors.RecordingError` naming the file. The waveform is reduced to a
min/max envelope per pixel column before drawing, so a long call draws as fast as a short one.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from voicereplay.audio import Audio, load_channels
from voicereplay.compare.model import Comparison, LatencyTurn
from voicereplay.models import Call, Replay, Turn
from voicereplay.turns import AgentReply, units

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LATENCY_SIZE", "WAVEFORM_SIZE", "latency_chart", "waveform_chart"]

LATENCY_SIZE: tuple[int, int] = (1200, 500)
"""The latency chart's (width, height) in pixels (PNG) or pt (SVG)."""
WAVEFORM_SIZE: tuple[int, int] = (1400, 600)
"""The waveform chart's (width, height) in pixels (PNG) or pt (SVG)."""

_DPI = 100

ChartFormat = Literal["png", "svg"]

# colours (colour-blind-safe-ish; the same role has the same colour in every chart)
_BASELINE = "#7f7f7f"
_STAGE_COLOURS = {
    "stt": "#4C72B0",
    "llm_ttft": "#DD8452",
    "tts_ttfa": "#55A868",
    "other": "#CCB974",
}
_STAGE_LABELS = {
    "stt": "replay: STT",
    "llm_ttft": "replay: LLM time to first token",
    "tts_ttfa": "replay: TTS time to first audio",
    "other": "replay: endpointing/other",
}
_REPLAY_EDGE = "#222222"
_AGENT = "#4C72B0"
_CALLER = "#DD8452"
_TOOL = "#C44E52"
_WAVE = "#333333"


# -- shared -----------------------------------------------------------------------------------


def _chart_format(path: Path) -> ChartFormat:
    suffix = path.suffix.lower()
    if suffix == ".png":
        return "png"
    if suffix == ".svg":
        return "svg"
    raise ValueError(
        f"cannot draw a chart as {path.name!r}: the file name must end in .png or .svg "
        f"(got {suffix or 'no suffix'!r})"
    )


def _new_figure(size: tuple[int, int]) -> Figure:
    """A figure of ``size`` pixels at 100 dpi on its own Agg canvas (no pyplot, no globals)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = size
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


_SVG_ROOT = re.compile(r"<svg\b[^>]*>", re.S)


def _save(figure: Figure, path: Path, size: tuple[int, int]) -> Path:
    path = Path(path)
    fmt = _chart_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "png":
        figure.savefig(path, format="png", dpi=_DPI)
        return path
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    width, height = size

    def sized(match: re.Match[str]) -> str:
        tag = re.sub(r'(?<=\s)width="[^"]*"', f'width="{width}pt"', match.group(0), count=1)
        return re.sub(r'(?<=\s)height="[^"]*"', f'height="{height}pt"', tag, count=1)

    text = _SVG_ROOT.sub(sized, buffer.getvalue(), count=1)
    path.write_text(text, encoding="utf-8")
    return path


def _short(identifier: str, keep: int = 8) -> str:
    return identifier if len(identifier) <= keep + 2 else identifier[:keep] + "…"


# -- latency ----------------------------------------------------------------------------------


def latency_chart(comparison: Comparison, path: Path) -> Path:
    """Response latency per agent turn, baseline against replay, the replay split by stage.

    Each agent turn gets two bars: the baseline's latency, and the replay's stacked from its
    stages (STT, LLM time to first token, TTS time to first audio, and whatever remains of the
    total as "endpointing/other"), outlined at the replay's total. Dashed lines mark each
    side's p90. A value that is missing is not drawn (and the slot says "n/a"), never drawn as
    zero. Reads ``comparison.latency``, ``baseline_metrics.latency.p90``,
    ``replay_metrics.latency.p90``, ``call_id`` and ``replay.id``. Returns ``path``.
    """
    path = Path(path)
    _chart_format(path)  # fail before drawing
    figure = _new_figure(LATENCY_SIZE)
    axes = figure.subplots()
    figure.suptitle(
        f"Response latency — call {_short(comparison.call_id)} · "
        f"replay {_short(comparison.replay.id)}",
        fontsize=13,
    )
    axes.set_ylabel("seconds")
    axes.grid(axis="y", color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)

    rows = comparison.latency
    if not rows:
        axes.text(0.5, 0.5, "no agent turns answered a caller turn", transform=axes.transAxes,
                  ha="center", va="center", fontsize=14, color="#555555")
        axes.set_xticks([])
        p90s = [comparison.baseline_metrics.latency.p90, comparison.replay_metrics.latency.p90]
        axes.set_ylim(0, max([1.0] + [v * 1.12 for v in p90s if v is not None]))
    else:
        _latency_bars(axes, rows)

    for value, colour, side in (
        (comparison.baseline_metrics.latency.p90, _BASELINE, "baseline"),
        (comparison.replay_metrics.latency.p90, _REPLAY_EDGE, "replay"),
    ):
        if value is not None:
            axes.axhline(value, color=colour, linestyle="--", linewidth=1.2,
                         label=f"{side} p90 {value:.2f} s")
    handles, labels = axes.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside right upper", fontsize=9, frameon=False)
    return _save(figure, path, LATENCY_SIZE)


def _latency_bars(axes: Axes, rows: Sequence[LatencyTurn]) -> None:
    width = 0.38
    annotate = len(rows) <= 24
    positions = np.arange(len(rows), dtype=float)
    values = [v for r in rows for v in _latency_values(r) if v is not None]
    top = max([0.1, *values])
    floor = min([0.0, *values])  # a negative gap: the agent spoke before the caller finished
    na_y = top * 0.015
    labelled: set[str] = set()

    def label(key: str) -> str:
        if key in labelled:
            return "_nolegend_"
        labelled.add(key)
        return _STAGE_LABELS.get(key, key)

    for x, row in zip(positions, rows, strict=True):
        left, right = x - width / 2, x + width / 2
        if row.baseline is not None:
            axes.bar(left, row.baseline, width, color=_BASELINE,
                     label="baseline" if "baseline" not in labelled else "_nolegend_")
            labelled.add("baseline")
            if annotate:
                axes.text(left, row.baseline, f"{row.baseline:.2f}", ha="center",
                          va="bottom" if row.baseline >= 0 else "top", fontsize=7)
        else:
            axes.text(left, na_y, "n/a", ha="center", va="bottom", fontsize=7, color="#777777")

        stages = [(key, getattr(row, key)) for key in ("stt", "llm_ttft", "tts_ttfa")]
        known = [(key, value) for key, value in stages if value is not None and value > 0]
        bottom = 0.0
        for key, value in known:
            axes.bar(right, value, width, bottom=bottom, color=_STAGE_COLOURS[key],
                     label=label(key))
            bottom += value
        if row.replay is not None:
            rest = row.replay - bottom
            if rest > 1e-9:
                axes.bar(right, rest, width, bottom=bottom, color=_STAGE_COLOURS["other"],
                         label=label("other"))
            axes.bar(right, row.replay, width, fill=False, edgecolor=_REPLAY_EDGE,
                     linewidth=1.0,
                     label="replay (total)" if "total" not in labelled else "_nolegend_")
            labelled.add("total")
            if annotate:
                axes.text(right, max(row.replay, bottom), f"{row.replay:.2f}", ha="center",
                          va="bottom" if row.replay >= 0 else "top", fontsize=7)
        elif known:  # stages measured, but no total: say so above the partial stack
            axes.text(right, bottom, "total n/a", ha="center", va="bottom", fontsize=7,
                      color="#777777")
        else:
            axes.text(right, na_y, "n/a", ha="center", va="bottom", fontsize=7, color="#777777")

    axes.set_xticks(positions)
    names = [f"turn {r.turn}" for r in rows]
    step = max(1, int(np.ceil(len(rows) / 40)))
    axes.set_xticklabels([n if i % step == 0 else "" for i, n in enumerate(names)],
                         rotation=0 if len(rows) <= 16 else 90,
                         fontsize=9 if len(rows) <= 16 else 7)
    axes.set_xlim(-0.6, len(rows) - 0.4)
    axes.set_ylim(floor * 1.12, top * 1.12)
    if floor < 0:
        axes.axhline(0, color="#444444", linewidth=0.8)


def _latency_values(row: LatencyTurn) -> list[float | None]:
    stages = sum(v for v in (row.stt, row.llm_ttft, row.tts_ttfa) if v is not None)
    return [row.baseline, row.replay, stages or None]


# -- waveform ---------------------------------------------------------------------------------


def waveform_chart(
    call: Call,
    replay: Replay,
    baseline_audio: Path | None,
    replay_audio: Path | None,
    path: Path,
) -> Path:
    """Baseline above, replay below: waveform, who spoke when, tool calls, agent turn numbers.

    Each panel shades the turns' spans by role (agent, caller) from their ``start``/``end``,
    marks tool calls at their start, and draws a vertical line where each agent turn starts,
    labelled with its number (:mod:`voicereplay.turns` numbering, each side its own).
    All channels of an audio file are drawn as one envelope (per pixel column, the lowest and
    highest sample of any channel), scaled so the loudest peak reaches 1. Audio ``None`` draws
    the spans only and says "no audio"; audio that cannot be read raises
    :class:`~voicereplay.errors.RecordingError` naming the file. Returns ``path``.
    """
    path = Path(path)
    _chart_format(path)
    baseline_channels = _read(baseline_audio)
    replay_channels = _read(replay_audio)

    end = _timeline_end(
        [call.duration, replay.duration],
        [call.turns, replay.turns],
        [baseline_channels, replay_channels],
    )
    figure = _new_figure(WAVEFORM_SIZE)
    top, bottom = figure.subplots(2, 1, sharex=True)
    figure.suptitle(
        f"Call {_short(call.call_id)} ({call.provider}) against replay {_short(replay.id)} "
        f"({replay.mode})",
        fontsize=13,
    )
    _waveform_panel(top, "baseline", baseline_audio, baseline_channels, call.turns, end)
    _waveform_panel(bottom, "replay", replay_audio, replay_channels, replay.turns, end)
    bottom.set_xlabel("seconds from call start")
    bottom.set_xlim(0, end)

    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=_AGENT, alpha=0.25, label="agent speaking"),
        Patch(facecolor=_CALLER, alpha=0.25, label="caller speaking"),
        Line2D([], [], color=_TOOL, marker="D", linestyle="none", label="tool call"),
        Line2D([], [], color=_AGENT, linestyle="-", linewidth=1.0,
               label="agent turn N starts"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9,
                  frameon=False)
    return _save(figure, path, WAVEFORM_SIZE)


def _read(audio: Path | None) -> list[Audio] | None:
    if audio is None:
        return None
    return load_channels(audio)


def _timeline_end(
    durations: Sequence[float | None],
    turn_lists: Sequence[Sequence[Turn]],
    audios: Sequence[list[Audio] | None],
) -> float:
    ends = [d for d in durations if d is not None]
    for turns in turn_lists:
        for turn in turns:
            ends.extend(t for t in (turn.start, _turn_end(turn)) if t is not None)
    for channels in audios:
        if channels:
            ends.append(max(c.duration for c in channels))
    end = max(ends, default=0.0)
    return end if end > 0 else 1.0


def _turn_end(turn: Turn) -> float | None:
    if turn.end is not None:
        return turn.end
    if turn.words:
        return max(w.end for w in turn.words)
    return None


def _envelope(channels: Sequence[Audio], columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, lows, highs): per column, the lowest and highest sample of any channel.

    With no more samples than ``columns`` every sample is its own column.
    """
    if not channels or columns <= 0:
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty, empty
    rate = channels[0].rate
    length = min(len(c.samples) for c in channels)
    if length == 0:
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty, empty
    if length <= columns:
        stack = np.vstack([c.samples[:length] for c in channels]).astype(np.float64)
        times = np.arange(length, dtype=np.float64) / rate
        return times, stack.min(axis=0), stack.max(axis=0)
    edges = np.linspace(0, length, columns + 1).astype(np.int64)
    starts = edges[:-1]
    lows = np.full(columns, np.inf)
    highs = np.full(columns, -np.inf)
    for channel in channels:
        samples = channel.samples[:length]
        lows = np.minimum(lows, np.minimum.reduceat(samples, starts))
        highs = np.maximum(highs, np.maximum.reduceat(samples, starts))
    times = (starts + edges[1:]) / 2.0 / rate
    return times, lows, highs


def _audio_label(path: Path) -> str:
    """A file's name, or "recording (<suffix>)" for a content-addressed blob (a hash name)."""
    if re.fullmatch(r"[0-9a-f]{40,}", path.stem):
        return f"recording ({path.suffix.lstrip('.') or 'audio'})"
    return path.name


def _waveform_panel(
    axes: Axes,
    side: str,
    audio_path: Path | None,
    channels: list[Audio] | None,
    turns: Sequence[Turn],
    end: float,
) -> None:
    title = side if audio_path is None else f"{side} — {_audio_label(Path(audio_path))}"
    axes.set_title(title, loc="left", fontsize=10)
    axes.set_ylim(-1.1, 1.1)
    axes.set_yticks([-1, 0, 1])
    axes.set_ylabel("level\n(peak = 1)", fontsize=8)
    axes.tick_params(labelsize=8)

    # who spoke when
    timed = False
    for turn in turns:
        colour = {"agent": _AGENT, "user": _CALLER}.get(turn.role)
        stop = _turn_end(turn)
        if colour is None or turn.start is None or stop is None:
            continue
        axes.axvspan(turn.start, max(stop, turn.start), color=colour, alpha=0.18, linewidth=0)
        timed = True

    # the waveform
    if channels:
        columns = WAVEFORM_SIZE[0]
        times, lows, highs = _envelope(channels, columns)
        peak = float(max(np.abs(lows).max(initial=0.0), np.abs(highs).max(initial=0.0)))
        scale = 1.0 / peak if peak > 1e-9 else 1.0
        axes.fill_between(times, lows * scale, highs * scale, color=_WAVE, linewidth=0.4,
                          step="mid")
    else:
        axes.text(0.5, 0.5, "no audio", transform=axes.transAxes, ha="center", va="center",
                  fontsize=14, color="#777777", style="italic",
                  bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "none",
                        "alpha": 0.85})
        axes.set_yticks([])

    # tool calls
    marks = axes.get_xaxis_transform()  # x in seconds, y in axes fraction
    for turn in turns:
        if turn.role != "tool_call" or turn.start is None:
            continue
        names = ", ".join(c.name for c in turn.tool_calls) or "tool"
        axes.plot([turn.start], [0.07], marker="D", color=_TOOL, markersize=6,
                  transform=marks, linestyle="none")
        axes.annotate(names, (turn.start, 0.07), xycoords=marks, xytext=(6, 0),
                      textcoords="offset points", fontsize=7, color=_TOOL, va="center",
                      ha="left", bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                                       "edgecolor": "none", "alpha": 0.8})
        timed = True

    # agent turn boundaries
    for unit in units(turns):
        if not isinstance(unit, AgentReply):
            continue
        starts = [t for t in (turns[i].start for i in unit.indices) if t is not None]
        if not starts:
            continue
        start = min(starts)
        axes.axvline(start, color=_AGENT, linewidth=1.0, alpha=0.9)
        axes.text(start, 0.98, f" {unit.number}", transform=marks, fontsize=8, color=_AGENT,
                  va="top", ha="left", fontweight="bold")
        timed = True

    if not timed and not channels:
        axes.text(0.5, 0.3, "no turn timings", transform=axes.transAxes, ha="center",
                  va="center", fontsize=10, color="#777777")
    axes.set_xlim(0, end)
