"""What the web pages show, worked out once here so the routes and templates hold no logic.

:func:`comparison_view` turns a :class:`~voicereplay.pipeline.calling.ReplayResult` into the
comparison page's model: the aligned rows with each side's time span (so a click on a turn can
seek both players to it, and "play both" can keep them in step), the turn regions of each
player (caller and agent apart, agent turn numbers), the tracks on disk, the snapshot changes
with a line diff of the system prompt, the latency chart's bars and the report files.
:func:`recording_file` finds a recording by call or replay id and track name, from the store
only. Pure functions of stored data; nothing here knows about URLs or HTML.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from voicereplay.compare.align import call_text
from voicereplay.compare.comparison import recordings_dir
from voicereplay.compare.model import (
    LatencyTurn,
    MetricRow,
    MetricUnit,
    ToolChange,
    WerTurn,
    WordOp,
)
from voicereplay.compare.summary import checks_line, divergence_line, fidelity_line
from voicereplay.errors import NotStoredError
from voicereplay.models import (
    RECORDING_KINDS,
    Call,
    KnowledgeContext,
    Recording,
    RecordingKind,
    Replay,
    Turn,
    local_recordings,
)
from voicereplay.pipeline.calling import ReplayResult
from voicereplay.snapshot import AgentSnapshot, diff
from voicereplay.store import Store

__all__ = ["ComparisonView", "Metric", "Region", "Row", "SnapshotChange", "Span",
           "comparison_view", "number", "prompt_diff", "recording_file", "report_files",
           "snapshot_summary", "tracks"]

Side = Literal["baseline", "replay"]
REPORT_FILES = ("report.json", "report.md", "junit.xml", "latency.png", "latency.svg",
                "waveform.png", "waveform.svg")
MIN_REGION = 0.3  # seconds: a turn with no end (a tool call) still gets a visible region


class Span(BaseModel):
    start: float
    end: float


class Row(BaseModel):
    """One aligned turn: what each side said and when (``None``: that side has no such turn)."""

    index: int
    kind: Literal["caller", "agent"]
    number: int | None
    status: str
    baseline: Span | None = None
    replay: Span | None = None
    baseline_text: str = ""
    replay_text: str = ""
    words: list[WordOp] = Field(default_factory=list)
    baseline_tools: list[str] = Field(default_factory=list)
    replay_tools: list[str] = Field(default_factory=list)
    tool_changes: list[ToolChange] = Field(default_factory=list)
    changed_baseline: list[str] = Field(default_factory=list, description="tool names changed")
    changed_replay: list[str] = Field(default_factory=list)
    similarity: float | None = None
    diverges: bool = False
    heard: WerTurn | None = None
    latency: LatencyTurn | None = None
    baseline_knowledge: list[KnowledgeContext] = Field(
        default_factory=list, description="knowledge-base context the baseline's turn had")
    replay_knowledge: list[KnowledgeContext] = Field(
        default_factory=list, description="knowledge-base context the replay served")


class Region(BaseModel):
    """A turn's region on one player's waveform."""

    row: int
    role: Literal["caller", "agent"]
    start: float
    end: float
    label: str = ""


class SnapshotChange(BaseModel):
    path: str
    before: Any = None
    after: Any = None
    lines: list[str] = Field(default_factory=list, description="a unified diff of long text")


class Bar(BaseModel):
    """One agent turn of the latency chart: the replay's stage split and the baseline."""

    turn: int
    baseline: float | None
    replay: float | None
    stages: list[tuple[str, float]] = Field(default_factory=list,
                                            description="(stage, seconds), stacked")


class Metric(BaseModel):
    """A metrics table line as shown: values by unit, the signed delta, better/worse/same."""

    label: str
    baseline: str
    replay: str
    delta: str
    verdict: str | None = None


def number(value: float | None, unit: MetricUnit = MetricUnit.COUNT, *, signed: bool = False
           ) -> str:
    """A metric value as a person reads it (ratios as percentages, seconds, dollars)."""
    if value is None:
        return "—"
    sign = ("+" if value > 0 else "−" if value < 0 else "±") if signed else \
        ("−" if value < 0 else "")
    size = abs(value)
    if unit is MetricUnit.RATIO:
        return f"{sign}{size * 100:.0f}{' pts' if signed else '%'}"
    if unit is MetricUnit.USD:
        return f"{sign}${size:.4f}"
    if unit is MetricUnit.SECONDS:
        return f"{sign}{size:.2f} s"
    text = f"{size:g}" if float(size).is_integer() else f"{size:.1f}"
    return f"{sign}{text}{' ' + unit.value if unit.value else ''}"


def _metrics(rows: list[MetricRow]) -> list[Metric]:
    return [Metric(label=r.label, baseline=number(r.baseline, r.unit),
                   replay=number(r.replay, r.unit),
                   delta=number(r.delta, r.unit, signed=True), verdict=r.verdict)
            for r in rows]


class ComparisonView(BaseModel):
    runs: list[tuple[int, str]] = Field(
        default_factory=list, description="(run index, replay id) of the replay's batch")
    rows: list[Row]
    metrics: list[Metric]
    regions: dict[str, list[Region]]
    tracks: dict[str, list[str]]
    changes: list[SnapshotChange]
    bars: list[Bar]
    report_files: list[str]
    divergence: str
    fidelity: str
    checks: str
    warnings: list[str]


def _span(turns: list[Turn], indices: list[int]) -> Span | None:
    starts = [turns[i].start for i in indices if turns[i].start is not None]
    if not starts:
        return None
    ends = [t for i in indices for t in (turns[i].end, turns[i].start) if t is not None]
    start = min(s for s in starts if s is not None)
    return Span(start=start, end=max(max(ends), start + MIN_REGION))


def _tools(turns: list[Turn], indices: list[int]) -> list[str]:
    return [call_text(c) for i in indices for c in turns[i].tool_calls]


def _rows(result: ReplayResult) -> list[Row]:
    comparison, call, replay = result.comparison, result.call, result.replay
    heard = {t.turn: t for t in comparison.word_errors.turns} if comparison.word_errors else {}
    latency = {t.turn: t for t in comparison.latency}
    diverged = comparison.divergence.turn if comparison.divergence else None
    replay_turns: list[Turn] = list(replay.turns)
    rows = []
    for index, aligned in enumerate(comparison.alignment):
        agent = aligned.kind == "agent"
        rows.append(Row(
            index=index, kind=aligned.kind, number=aligned.number, status=aligned.status,
            baseline=_span(call.turns, aligned.baseline_turns),
            replay=_span(replay_turns, aligned.replay_turns),
            baseline_text=aligned.baseline_text, replay_text=aligned.replay_text,
            words=aligned.words, similarity=aligned.similarity,
            baseline_tools=_tools(call.turns, aligned.baseline_turns),
            replay_tools=_tools(replay_turns, aligned.replay_turns),
            tool_changes=aligned.tool_changes,
            changed_baseline=[c.baseline.name for c in aligned.tool_changes if c.baseline],
            changed_replay=[c.replay.name for c in aligned.tool_changes if c.replay],
            diverges=agent and aligned.number is not None and aligned.number == diverged,
            heard=None if agent or aligned.status != "matched" else heard.get(aligned.number or -1),
            latency=latency.get(aligned.number or -1) if agent else None,
            baseline_knowledge=[k for k in call.knowledge
                                if k.turn is not None and k.turn in aligned.baseline_turns],
            replay_knowledge=[k for i in aligned.replay_turns
                              for k in replay.turns[i].knowledge]))
    return rows


def _regions(rows: list[Row], side: Side) -> list[Region]:
    regions = []
    for row in rows:
        span = row.baseline if side == "baseline" else row.replay
        if span is None:
            continue
        label = str(row.number) if row.kind == "agent" and row.number is not None else ""
        regions.append(Region(row=row.index, role=row.kind, start=span.start, end=span.end,
                              label=label))
    return regions


def tracks(recordings: list[Recording]) -> list[RecordingKind]:
    """The tracks whose files are in the store, in a stable order."""
    present = local_recordings(recordings)
    return [kind for kind in RECORDING_KINDS if kind in present]


def prompt_diff(before: str | None, after: str | None) -> list[str]:
    """A unified line diff of two texts (the system prompt before and after an override)."""
    return [line.rstrip("\n") for line in difflib.unified_diff(
        (before or "").splitlines(), (after or "").splitlines(), "original", "replay",
        lineterm="", n=2)]


def _changes(store: Store, replay: Replay) -> list[SnapshotChange]:
    try:
        after = store.get_snapshot(replay.snapshot_id)
        before = store.get_snapshot(replay.base_snapshot_id) if replay.base_snapshot_id \
            else None
    except NotStoredError:
        before = after = None
    if before is None or after is None:
        return [SnapshotChange(path=k, after=v) for k, v in replay.overrides.items()]
    return [_change(c.path, c.before, c.after) for c in diff(before, after)]


def _change(path: str, before: Any, after: Any) -> SnapshotChange:
    texts = isinstance(before, str | None) and isinstance(after, str | None)
    long = texts and ("\n" in (before or "") + (after or "") or
                      len(before or "") + len(after or "") > 160)
    return SnapshotChange(path=path, before=before, after=after,
                          lines=prompt_diff(before, after) if long else [])


def _bars(result: ReplayResult) -> list[Bar]:
    bars = []
    for t in result.comparison.latency:
        stages = [(name, value) for name, value in
                  (("stt", t.stt), ("llm ttft", t.llm_ttft), ("tts ttfa", t.tts_ttfa))
                  if value is not None and value > 0]
        if t.replay is not None:
            rest = t.replay - sum(v for _, v in stages)
            if rest > 0.001:
                stages.append(("other", rest))
        bars.append(Bar(turn=t.turn, baseline=t.baseline, replay=t.replay, stages=stages))
    return bars


def report_files(replay: Replay) -> list[str]:
    """Names of the report files written beside the replay's audio."""
    folder = recordings_dir(replay)
    if folder is None:
        return []
    return [name for name in REPORT_FILES if (folder / name).is_file()]


def comparison_view(store: Store, result: ReplayResult) -> ComparisonView:
    """The comparison page's model (see the module docs)."""
    rows = _rows(result)
    comparison = result.comparison
    batch = result.replay.batch_id
    runs = sorted((r.run_index, r.id) for r in store.replays.list(batch_id=batch, limit=None)) \
        if batch else []
    return ComparisonView(
        runs=runs if len(runs) > 1 else [], rows=rows, metrics=_metrics(comparison.metrics),
        regions={side: _regions(rows, side) for side in ("baseline", "replay")},
        tracks={"baseline": list(tracks(result.call.recordings)),
                "replay": list(tracks(result.replay.recordings))},
        changes=_changes(store, result.replay), bars=_bars(result),
        report_files=report_files(result.replay), divergence=divergence_line(comparison),
        fidelity=fidelity_line(comparison), checks=checks_line(comparison),
        warnings=[*comparison.replay.warnings, *comparison.warnings])


def recording_file(store: Store, track: str, *, replay_id: str | None = None,
                   call_id: str | None = None, provider: str | None = None) -> Path:
    """The file of one track of a stored call or replay — by id and track name only."""
    if track not in RECORDING_KINDS:
        raise NotStoredError(f"no track {track!r}: use one of {', '.join(RECORDING_KINDS)}")
    if replay_id is not None:
        recordings, owner = store.replays.get(replay_id).recordings, f"replay {replay_id}"
    elif call_id is not None:
        call: Call = store.get_call(call_id, provider)
        recordings, owner = call.recordings, f"call {call.key}"
    else:
        raise NotStoredError("name a call or a replay")
    path = local_recordings(recordings).get(track)
    if path is None:
        raise NotStoredError(f"{owner} has no {track} track in the store")
    return path


def snapshot_summary(snapshot: AgentSnapshot | None) -> dict[str, Any]:
    """The parts of a snapshot the call page shows, by name."""
    if snapshot is None:
        return {}
    return {"model": snapshot.model.model_dump(exclude_none=True),
            "voice": snapshot.voice.model_dump(exclude_none=True),
            "transcriber": snapshot.transcriber.model_dump(exclude_none=True),
            "tools": [t.name for t in snapshot.tools],
            "source": snapshot.source.model_dump(exclude_none=True)}
