"""Vapi call messages (``artifact.messages`` or the legacy top-level ``messages``) → our turns.

Handles the drift seen in real payloads:

* roles ``bot`` (real data) and ``assistant`` (Vapi's doc examples) are both agent turns;
* ``duration`` is seconds in 2024 and milliseconds in 2025, so spans come from ``endTime - time``
  and ``duration`` is never used;
* squads reset ``secondsFromStart`` at every handoff, insert a new ``system`` message and do not
  keep entries strictly sorted, so turns are ordered by the absolute epoch-ms ``time`` and their
  start/end are ``(time - call start) / 1000``;
* tool-call ``arguments`` arrive as a JSON string or as an object; text that is not a JSON object
  is kept in ``raw_arguments``;
* legacy 2024-03 ``function_call`` messages;
* calls with no messages at all but a ``transcript`` text (``AI: …`` / ``User: …`` lines).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voicereplay.models import Role, ToolCall, ToolResult, Turn
from voicereplay.providers.vapi_fields import Fields, join

__all__ = ["parse_messages", "parse_transcript", "tool_arguments"]

_AGENT_ROLES = {"bot", "assistant"}


@dataclass
class _Entry:
    index: int
    data: dict[str, Any]
    where: str
    role: str
    time_ms: float | None
    end_ms: float | None
    seconds_from_start: float | None


def parse_messages(
    r: Fields,
    messages: list[Any],
    where: str,
    *,
    call_start_ms: float | None,
    squad: bool,
) -> list[Turn]:
    """Turns in the order they happened; ``call_start_ms`` defaults to the earliest ``time``."""
    entries = [_entry(r, raw, f"{where}[{i}]", i) for i, raw in enumerate(messages)]
    times = [e.time_ms for e in entries if e.time_ms is not None]
    start_ms = call_start_ms if call_start_ms is not None else (min(times) if times else None)

    # Order by absolute time; an entry without one keeps its place after its predecessor.
    keys: list[float] = []
    last = float("-inf")
    for entry in entries:
        last = entry.time_ms if entry.time_ms is not None else last
        keys.append(last)
    ordered = [e for _, e in sorted(zip(keys, entries, strict=True), key=lambda p: p[0])]

    turns: list[Turn] = []
    for entry in ordered:
        turn = _turn(r, entry, len(turns), squad=squad)
        if turn is None:
            continue
        start, end = _span(entry, start_ms)
        turns.append(turn.model_copy(update={"start": start, "end": end}))
    return turns


def _entry(r: Fields, raw: Any, where: str, index: int) -> _Entry:
    data = r.item(raw, where)
    role = r.text(data, "role", where)
    if not role:
        r.fail(join(where, "role"), "is missing; every message needs a role (bot, user, …)")
    r.number(data, "duration", where)  # type-checked only: its unit drifted (s → ms)
    return _Entry(
        index=index,
        data=data,
        where=where,
        role=role,
        time_ms=r.epoch_ms(data, "time", where),
        end_ms=r.epoch_ms(data, "endTime", where),
        seconds_from_start=r.number(data, "secondsFromStart", where),
    )


def _span(entry: _Entry, start_ms: float | None) -> tuple[float | None, float | None]:
    if entry.time_ms is not None and start_ms is not None:
        start = max(0.0, (entry.time_ms - start_ms) / 1000)
        end = None
        if entry.end_ms is not None:
            end = max(start, (entry.end_ms - start_ms) / 1000)
        return round(start, 3), None if end is None else round(end, 3)
    if entry.seconds_from_start is not None:
        return round(max(0.0, entry.seconds_from_start), 3), None
    return None, None


def _turn(r: Fields, entry: _Entry, position: int, *, squad: bool) -> Turn | None:
    data, where, role = entry.data, entry.where, entry.role
    if role == "system":
        return Turn(role="system", text=_text(r, data, where))
    if role in _AGENT_ROLES:
        speaker = None
        if squad:
            speaker = r.text(data, "assistantName", where) or r.ident(data, "assistantId", where)
        return Turn(role="agent", text=_text(r, data, where), speaker=speaker)
    if role == "user":
        return Turn(role="user", text=_text(r, data, where))
    if role == "tool_calls":
        calls = r.sequence(data, "toolCalls", where) or r.sequence(data, "toolCallList", where)
        parsed = [
            _tool_call(r, item, f"{where}.toolCalls[{j}]", f"call_{position}_{j}")
            for j, item in enumerate(calls or [])
        ]
        return Turn(role="tool_call", tool_calls=parsed) if parsed else None
    if role == "function_call":
        name = _required_name(r, data, where)
        arguments, raw = tool_arguments(r, data.get("args", data.get("arguments")),
                                        join(where, "args"))
        call_id = r.ident(data, "id", where) or f"function_call_{position}"
        return Turn(
            role="tool_call",
            tool_calls=[ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=raw)],
        )
    if role in ("tool_call_result", "function_result"):
        result = ToolResult(
            id=r.ident(data, "toolCallId", where),
            name=r.text(data, "name", where),
            result=_result_text(data.get("result")),
        )
        return Turn(role="tool_result", tool_result=result)
    return None  # a role Vapi added later (e.g. transfer notes): not part of the conversation


def _text(r: Fields, data: Mapping[str, Any], where: str) -> str:
    text = r.text(data, "message", where)
    if text is None:
        text = r.text(data, "content", where)
    return text or ""


def _required_name(r: Fields, data: Mapping[str, Any], where: str) -> str:
    name = r.text(data, "name", where)
    if not name:
        r.fail(join(where, "name"), "is missing; a tool call must name its tool")
    return name


def _tool_call(r: Fields, raw: Any, where: str, fallback_id: str) -> ToolCall:
    item = r.item(raw, where)
    function = r.mapping(item, "function", where)
    if function is not None:
        name = _required_name(r, function, join(where, "function"))
        arguments, raw_text = tool_arguments(
            r, function.get("arguments"), join(where, "function.arguments")
        )
    else:  # the docs' flattened {id, name, parameters} form
        name = _required_name(r, item, where)
        value = item.get("arguments", item.get("parameters"))
        arguments, raw_text = tool_arguments(r, value, join(where, "arguments"))
    call_id = r.ident(item, "id", where) or fallback_id
    return ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=raw_text)


def tool_arguments(r: Fields, value: Any, path: str) -> tuple[dict[str, Any], str | None]:
    """``(arguments, raw_arguments)`` from a JSON string or an object."""
    if value is None:
        return {}, None
    if isinstance(value, Mapping):
        return dict(value), None
    if isinstance(value, str):
        if not value.strip():
            return {}, None
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return {}, value
        if isinstance(parsed, dict):
            return parsed, None
        return {}, value
    r.fail(path, f"should be a JSON string or an object, got {type(value).__name__}")


def _result_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


_SPEAKER = re.compile(r"^\s*(AI|Assistant|Bot|Agent|User|Customer)\s*:\s?(.*)$", re.IGNORECASE)


def parse_transcript(text: str) -> list[Turn]:
    """Untimed turns from Vapi's ``AI: …`` / ``User: …`` transcript text."""
    turns: list[tuple[Role, list[str]]] = []
    for line in text.splitlines():
        match = _SPEAKER.match(line)
        if match:
            role: Role = "user" if match.group(1).lower() in ("user", "customer") else "agent"
            turns.append((role, [match.group(2).strip()]))
        elif turns and line.strip():
            turns[-1][1].append(line.strip())
    return [Turn(role=role, text=" ".join(p for p in parts if p)) for role, parts in turns]
