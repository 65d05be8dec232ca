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
* calls with no messages at all but a ``transcript`` text (``AI: …`` / ``User: …`` lines);
* ``knowledge-base`` messages (retrieved knowledge-base content; Vapi's schema does not type
  them, so the text is read from ``message``/``content`` and documents from ``documents`` or
  ``results``, as a custom knowledge base answers ``{documents: [{content, similarity, uuid}]}``):
  each becomes a :class:`~voicereplay.models.KnowledgeContext` of the next agent turn.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from voicereplay import knowledge
from voicereplay.models import KnowledgeContext, Role, ToolCall, ToolResult, Turn
from voicereplay.providers.fields import Obj

__all__ = ["parse_conversation", "parse_messages", "parse_transcript"]

_AGENT_ROLES = {"bot", "assistant"}
_KNOWLEDGE_ROLES = {"knowledge-base", "knowledge_base", "knowledgeBase"}


@dataclass
class _Entry:
    message: Obj
    role: str
    time_ms: float | None
    end_ms: float | None
    seconds_from_start: float | None


def parse_messages(
    messages: list[Obj], *, call_start_ms: float | None, squad: bool
) -> list[Turn]:
    """Turns in the order they happened; ``call_start_ms`` defaults to the earliest ``time``."""
    return parse_conversation(messages, call_start_ms=call_start_ms, squad=squad)[0]


def parse_conversation(
    messages: list[Obj], *, call_start_ms: float | None, squad: bool
) -> tuple[list[Turn], list[KnowledgeContext]]:
    """Turns in the order they happened, and the knowledge-base contexts between them."""
    entries = [_entry(message) for message in messages]
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
    contexts: list[KnowledgeContext] = []
    pending: list[KnowledgeContext] = []  # waiting for the agent turn they informed
    for entry in ordered:
        start, end = _span(entry, start_ms)
        if entry.role in _KNOWLEDGE_ROLES:
            context = _knowledge(entry.message, start)
            if context is not None:
                pending.append(context)
            continue
        turn = _turn(entry, len(turns), squad=squad)
        if turn is None:
            continue
        if turn.role == "agent" and pending:
            contexts.extend(c.model_copy(update={"turn": len(turns)}) for c in pending)
            pending = []
        turns.append(turn.model_copy(update={"start": start, "end": end}))
    return turns, [*contexts, *pending]


def _knowledge(message: Obj, at: float | None) -> KnowledgeContext | None:
    """A ``knowledge-base`` message as a context (None: it holds no content)."""
    items = message.data.get("documents")
    if not isinstance(items, list):
        items = message.data.get("results")
    found = knowledge.documents(items if isinstance(items, list) else [])
    text = _text(message)
    if not text.strip() and not found:
        return None
    return KnowledgeContext(at=at, source="vapi-message", query=message.string("query"),
                            documents=found, text=text)


def _entry(message: Obj) -> _Entry:
    role = message.string("role")
    if not role:
        message.fail("role", "is missing; every message needs a role (bot, user, …)")
    message.number("duration")  # type-checked only: its unit drifted (s → ms)
    return _Entry(
        message=message,
        role=role,
        time_ms=message.epoch_ms("time"),
        end_ms=message.epoch_ms("endTime"),
        seconds_from_start=message.number("secondsFromStart"),
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


def _turn(entry: _Entry, position: int, *, squad: bool) -> Turn | None:
    message, role = entry.message, entry.role
    if role == "system":
        return Turn(role="system", text=_text(message))
    if role in _AGENT_ROLES:
        speaker = None
        if squad:
            speaker = message.string("assistantName") or message.ident("assistantId")
        return Turn(role="agent", text=_text(message), speaker=speaker)
    if role == "user":
        return Turn(role="user", text=_text(message))
    if role == "tool_calls":
        calls = message.objects("toolCalls") or message.objects("toolCallList")
        parsed = [_tool_call(item, f"call_{position}_{j}") for j, item in enumerate(calls)]
        return Turn(role="tool_call", tool_calls=parsed) if parsed else None
    if role == "function_call":
        name = _required_name(message)
        arguments, raw = message.arguments("args" if "args" in message.data else "arguments")
        call_id = message.ident("id") or f"function_call_{position}"
        return Turn(
            role="tool_call",
            tool_calls=[ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=raw)],
        )
    if role in ("tool_call_result", "function_result"):
        result = ToolResult(
            id=message.ident("toolCallId"),
            name=message.string("name"),
            result=_result_text(message.data.get("result")),
        )
        return Turn(role="tool_result", tool_result=result)
    return None  # a role Vapi added later (e.g. transfer notes): not part of the conversation


def _text(message: Obj) -> str:
    text = message.string("message")
    if text is None:
        text = message.string("content")
    return text or ""


def _required_name(obj: Obj) -> str:
    name = obj.string("name")
    if not name:
        obj.fail("name", "is missing; a tool call must name its tool")
    return name


def _tool_call(item: Obj, fallback_id: str) -> ToolCall:
    function = item.obj("function")
    if function is not None:
        name = _required_name(function)
        arguments, raw_text = function.arguments("arguments")
    else:  # the docs' flattened {id, name, parameters} form
        name = _required_name(item)
        arguments, raw_text = item.arguments(
            "arguments" if "arguments" in item.data else "parameters"
        )
    call_id = item.ident("id") or fallback_id
    return ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=raw_text)


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
