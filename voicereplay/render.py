"""Terminal rendering of calls, snapshots and snapshot diffs with rich (no logic, no I/O)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from voicereplay import knowledge
from voicereplay.models import Call, KnowledgeContext, Replay, Turn
from voicereplay.snapshot import AgentSnapshot, FieldChange

__all__ = [
    "add_row",
    "call_table",
    "call_view",
    "diff_view",
    "literal",
    "replay_table",
    "replay_view",
    "snapshot_view",
]

_ROLE_STYLE = {
    "agent": "cyan",
    "user": "green",
    "tool_call": "magenta",
    "tool_result": "yellow",
    "system": "dim",
}


def literal(value: RenderableType | None) -> RenderableType:
    """``value`` as rich shows it, a ``str`` taken literally: text from providers, calls and
    users is never parsed as markup (an ended reason of ``[/]`` is just those characters)."""
    if value is None:
        return Text("")
    return Text(value) if isinstance(value, str) else value


def add_row(table: Table, *cells: RenderableType | None) -> None:
    """``table.add_row`` with every string cell taken literally (see :func:`literal`)."""
    table.add_row(*(literal(cell) for cell in cells))


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:6.2f}"


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:g}s"


def _duration(value: float | None) -> str:
    if value is None:
        return "—"
    minutes, seconds = divmod(int(round(value)), 60)
    return f"{minutes}:{seconds:02d}"


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "—"}[value]


def call_table(rows: Sequence[Any]) -> Table:
    """A table of stored call summaries (``Store.list_calls``)."""
    table = Table(title=f"{len(rows)} call(s)", header_style="bold")
    table.add_column("call id", no_wrap=True)
    table.add_column("started (UTC)", no_wrap=True)
    for name in ("dur", "ended reason", "ok", "cost", "turns", "audio"):
        table.add_column(name, overflow="fold")
    for row in rows:
        started = row.started_at.strftime("%Y-%m-%d %H:%M") if row.started_at else "—"
        add_row(table,
            f"{row.provider}:{row.call_id}", started, _duration(row.duration),
            row.ended_reason or "—", _yes_no(row.success), _money(row.cost_usd),
            str(row.turn_count), ",".join(row.recording_kinds) or "—",
        )
    return table


def _turn_text(turn: Turn) -> Text:
    text = Text(turn.text)
    for call in turn.tool_calls:
        args = json.dumps(call.arguments, ensure_ascii=False) if call.arguments else (
            call.raw_arguments or "{}")
        text.append(f"{call.name}({args})", style="bold magenta")
        text.append(f"  id={call.id}", style="dim")
    if turn.tool_result is not None:
        result = turn.tool_result
        text.append(f"{result.name or 'result'} → ", style="yellow")
        text.append(result.result)
    return text


def _knowledge_text(context: KnowledgeContext, width: int = 100) -> Text:
    """One line for a knowledge-base context: its source, query and the start of its text."""
    content = " ".join(context.content.split())
    text = Text(f"knowledge base ({context.source}", style="bold green")
    if context.query:
        text.append(f", query {context.query!r}", style="green")
    text.append("): ", style="bold green")
    text.append(content if len(content) <= width else content[:width - 1] + "…")
    return text


def call_view(call: Call, snapshot_id: str | None = None) -> RenderableType:
    """Header, turns (times, speakers, tool calls) and recordings of one call."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    started = call.started_at.isoformat() if call.started_at else "—"
    for label, value in (
        ("call", f"{call.provider}:{call.call_id}"),
        ("type / status", f"{call.type} / {call.status or '—'}"),
        ("started", started),
        ("duration", f"{_duration(call.duration)} ({call.duration or 0:.1f} s)"),
        ("ended reason", call.ended_reason or "—"),
        ("customer", call.customer_number or "—"),
        ("agent", f"{call.agent_id or '—'}" + (f" v{call.agent_version}"
                                                if call.agent_version else "")),
        ("snapshot", snapshot_id or "—"),
        ("cost", _money(call.cost.total_usd)),
        ("success", _yes_no(call.analysis.success)),
        ("summary", call.analysis.summary or "—"),
    ):
        add_row(head, label, value)

    turns = Table(header_style="bold", expand=True)
    turns.add_column("#", justify="right", width=3)
    turns.add_column("start", justify="right", width=7)
    turns.add_column("end", justify="right", width=7)
    turns.add_column("who", width=12)
    turns.add_column("text", ratio=1)
    kb = knowledge.by_turn(call.knowledge)
    for index, turn in enumerate(call.turns, 1):
        for context in kb.get(index - 1, []):
            add_row(turns, "", _secs(context.at), "", Text("retrieved", style="green"),
                    _knowledge_text(context))
        who = turn.role if not turn.speaker else f"{turn.role} ({turn.speaker})"
        body = _turn_text(turn)
        if turn.role == "system" and len(turn.text) > 120:
            body = Text(turn.text[:117].replace("\n", " ") + "…", style="dim")
        add_row(turns, str(index), _secs(turn.start), _secs(turn.end),
                      Text(who, style=_ROLE_STYLE[turn.role]), body)

    for context in kb.get(None, []):
        add_row(turns, "", _secs(context.at), "", Text("retrieved", style="green"),
                Text("(no turn) ", style="dim") + _knowledge_text(context))

    parts: list[RenderableType] = [Panel(head, title="call"), turns]
    parts.extend(Text(f"warning: {w}", style="yellow") for w in call.warnings)
    latencies = call.provider_metrics.turn_latencies
    if latencies:
        lat = Table(title="provider latencies (s)", header_style="bold")
        for name in ("turn", "total", "model", "voice", "transcriber", "endpointing"):
            lat.add_column(name, justify="right")
        for i, lt in enumerate(latencies, 1):
            add_row(lat, str(lt.turn if lt.turn is not None else i), _secs(lt.total),
                        _secs(lt.model), _secs(lt.voice), _secs(lt.transcriber),
                        _secs(lt.endpointing))
        parts.append(lat)
    rec = Table(title="recordings", header_style="bold")
    for name in ("kind", "local file", "sha256", "bytes"):
        rec.add_column(name, overflow="fold")
    for item in call.recordings:
        where = item.path or (f"not downloaded ({item.url})" if item.url else "not downloaded")
        add_row(rec, item.kind, where, (item.sha256 or "—")[:12], str(item.size or "—"))
    parts.append(rec if call.recordings else Text("no recordings", style="dim"))
    return Group(*parts)


def snapshot_view(snapshot: AgentSnapshot, label: str = "") -> RenderableType:
    """Every field of a snapshot, the prompt in full."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    src = snapshot.source
    m, v, t, tt = snapshot.model, snapshot.voice, snapshot.transcriber, snapshot.turn_taking
    for key, value in (
        ("id", snapshot.id),
        ("source", f"{src.provider or '—'} agent {src.agent_id or '—'}"
                   + (f" v{src.agent_version}" if src.agent_version else "")
                   + (f", llm {src.llm_id} v{src.llm_version}" if src.llm_id else "")
                   + (f", call {src.call_id}" if src.call_id else "")
                   + (f", derived from {src.parent_id}" if src.parent_id else "")),
        ("model", f"{m.provider or '—'}/{m.name or '—'} temperature={m.temperature} "
                  f"max_tokens={m.max_tokens} seed={m.seed}"),
        ("voice", f"{v.provider or '—'} {v.voice_id or '—'} model={v.model} speed={v.speed}"),
        ("transcriber", f"{t.provider or '—'} {t.model or '—'} language={t.language}"),
        ("turn-taking", f"endpointing={_s(tt.endpointing)} silence_timeout="
                        f"{_s(tt.silence_timeout)} max_duration={_s(tt.max_duration)} "
                        f"end phrases={list(tt.end_call_phrases)}"),
        ("first message", f"[{snapshot.first_message_mode}] {snapshot.first_message or '—'}"),
        ("variables", json.dumps(snapshot.variables, ensure_ascii=False) or "{}"),
        ("states", str(len(snapshot.states)) if snapshot.states else "—"),
    ):
        add_row(grid, key, value)
    tools = Table(title="tools", header_style="bold", expand=True)
    for name in ("name", "kind", "parameters", "description"):
        tools.add_column(name, overflow="fold")
    for tool in snapshot.tools:
        params = ", ".join(tool.parameters.get("properties", {}).keys())
        add_row(tools, tool.name, tool.kind, params or "—", tool.description)
    prompt = Panel(Text(snapshot.system_prompt or "(no system prompt)"), title="system prompt")
    return Group(Panel(grid, title=Text(f"agent snapshot {label}".strip())), tools, prompt)


def diff_view(changes: Sequence[FieldChange], a_label: str, b_label: str) -> RenderableType:
    """Field-level changes; long texts as a line diff."""
    if not changes:
        return Text(f"no differences between {a_label} and {b_label}", style="green")
    table = Table(title=Text(f"{a_label} → {b_label}: {len(changes)} change(s)"),
                  header_style="bold", expand=True)
    table.add_column("field", style="bold", overflow="fold")
    table.add_column("before", style="red", overflow="fold")
    table.add_column("after", style="green", overflow="fold")
    texts: list[RenderableType] = []
    for change in changes:
        before, after = change.before, change.after
        if isinstance(before, str) and isinstance(after, str) and (
            "\n" in before or "\n" in after or len(before) + len(after) > 160
        ):
            add_row(table, change.path, "(text, see below)", "(text, see below)")
            texts.append(_text_diff(change.path, before, after))
            continue
        add_row(table, change.path, _short(before), _short(after))
    return Group(table, *texts)


def _short(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _text_diff(path: str, before: str, after: str) -> RenderableType:
    out = Text()
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), "before",
                                     "after", lineterm="", n=1):
        style = ("green" if line.startswith("+") else "red" if line.startswith("-")
                 else "cyan" if line.startswith("@@") else "")
        out.append(line + "\n", style=style)
    return Panel(out, title=Text(path))


def replay_table(rows: Sequence[Any]) -> Table:
    """A table of stored replay summaries (``store.replays.list``)."""
    table = Table(title=f"{len(rows)} replay(s)", header_style="bold")
    table.add_column("replay", no_wrap=True)
    table.add_column("call", no_wrap=True)
    for name in ("when (UTC)", "mode", "run", "status", "snapshot", "dur", "took"):
        table.add_column(name, overflow="fold")
    for row in rows:
        add_row(table,
            row.id[:12], f"{row.call_provider}:{row.call_id}",
            row.created_at.strftime("%Y-%m-%d %H:%M"), row.mode,
            f"{row.run_index + 1}" + (f" ({row.batch_id})" if row.batch_id else ""),
            row.status if not row.error else f"{row.status}: {row.error}", row.snapshot_id,
            _duration(row.duration), f"{row.wall_seconds or 0:.1f}s",
        )
    return table


def replay_view(call: Call, replay: Replay) -> RenderableType:
    """What a replay was: its run, snapshot, backends, timing, warnings and audio files.

    The turn-by-turn transcript beside the baseline is the comparison's
    (:func:`voicereplay.compare.terminal.comparison_view`).
    """
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    rtf = (replay.wall_seconds / replay.duration
           if replay.wall_seconds and replay.duration else None)
    for label, value in (
        ("replay", f"{replay.id} ({replay.mode}, run {replay.run_index + 1}"
                   f"{', batch ' + replay.batch_id if replay.batch_id else ''})"),
        ("call", f"{call.provider}:{call.call_id}"),
        ("snapshot", f"{replay.base_snapshot_id or '—'} → {replay.snapshot_id}"),
        ("backends", ", ".join(f"{k}={v}" for k, v in replay.backends.named().items()) or "—"),
        ("duration", f"baseline {_duration(call.duration)}, replay {_duration(replay.duration)}"),
        ("took", f"{replay.wall_seconds or 0:.1f} s" + (f" (RTF {rtf:.2f})" if rtf else "")),
        ("ended", replay.ended_reason or "—"),
        ("audio", "\n".join(f"{r.kind}: {r.path}" for r in replay.recordings) or "—"),
    ):
        add_row(head, label, value)
    return Panel(head, title="replay", expand=False)
