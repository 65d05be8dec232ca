"""Turns and per-turn latency from a Retell call's transcript fields.

The richest form present wins:

1. ``transcript_with_tool_calls``: utterances with word timings, tool invocations and results,
   node transitions, DTMF, SMS and injected messages.
2. ``transcript_object``: utterances with word timings.
3. ``transcript``: plain ``Agent: …`` / ``User: …`` lines with no timings.

Word times are seconds of call audio. An utterance runs from its first word to its last.
Invocations, results and events often have no timestamp. They take ``time_sec`` when present,
otherwise the end of the turn before them, so they sit between their neighbours.
"""

from __future__ import annotations

import json
import re

from voicereplay.models import Role, ToolCall, ToolResult, Turn, TurnLatency, Word
from voicereplay.providers.fields import Obj

__all__ = ["build_turns", "latency_metrics"]

_UTTERANCE_ROLES: dict[str, Role] = {"agent": "agent", "user": "user", "transfer_target": "user"}
_LINE = re.compile(r"^\s*(agent|user|transfer[ _]target)\s*:\s?(.*)$", re.IGNORECASE)
# Retell latency name → TurnLatency field
_PER_TURN = {"e2e": "total", "llm": "model", "tts": "voice", "asr": "transcriber"}
_STATS = ("p50", "p90", "p95", "p99", "min", "max")


def build_turns(call: Obj, agent_name: str | None) -> list[Turn]:
    """The call's turns, from the richest transcript form it has."""
    rich = call.objects("transcript_with_tool_calls")
    plain = call.objects("transcript_object")
    text = call.string("transcript")
    if rich or plain:
        return _from_entries(rich or plain, agent_name)
    return _from_text(call, text, agent_name) if text else []


def _from_entries(entries: list[Obj], agent_name: str | None) -> list[Turn]:
    turns: list[Turn] = []
    tool_names: dict[str, str] = {}
    last_end: float | None = None
    for entry in entries:
        role = entry.string("role", required=True)
        assert role is not None
        if role in _UTTERANCE_ROLES:
            turn = _utterance(entry, role, agent_name)
        elif role == "tool_call_invocation":
            turn = _invocation(entry, last_end)
            for call in turn.tool_calls:
                tool_names[call.id] = call.name
        elif role == "tool_call_result":
            turn = _result(entry, last_end, tool_names)
        else:
            turn = _event(entry, role, last_end)
        if turn.end is not None:
            last_end = turn.end
        turns.append(turn)
    return turns


def _utterance(entry: Obj, role: str, agent_name: str | None) -> Turn:
    words = _words(entry.objects("words"))
    speaker = agent_name if role == "agent" else ("transfer_target" if role != "user" else None)
    return Turn(
        role=_UTTERANCE_ROLES[role],
        text=entry.string("content", required=True) or "",
        start=min((w.start for w in words), default=None),
        end=max((w.end for w in words), default=None),
        words=words,
        speaker=speaker,
    )


def _invocation(entry: Obj, last_end: float | None) -> Turn:
    arguments, raw_arguments = entry.arguments("arguments")
    at = _time(entry, last_end)
    call = ToolCall(
        id=entry.ident("tool_call_id", required=True) or "",
        name=entry.string("name", required=True) or "",
        arguments=arguments,
        raw_arguments=raw_arguments,
    )
    return Turn(role="tool_call", start=at, end=at, tool_calls=[call])


def _result(entry: Obj, last_end: float | None, tool_names: dict[str, str]) -> Turn:
    call_id = entry.ident("tool_call_id")
    content = entry.data.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        content = json.dumps(content, ensure_ascii=False, default=str)
    result = ToolResult(
        id=call_id,
        name=entry.string("name") or (tool_names.get(call_id) if call_id else None),
        result=content,
        success=entry.flag("successful"),
    )
    at = _time(entry, last_end)
    return Turn(role="tool_result", start=at, end=at, tool_result=result)


def _event(entry: Obj, role: str, last_end: float | None) -> Turn:
    if role == "node_transition":
        former = entry.string("former_node_name") or entry.string("former_node_id") or "(start)"
        new = entry.string("new_node_name") or entry.string("new_node_id") or "(unknown)"
        text = f"node transition: {former} → {new}"
    elif role == "dtmf":
        text = f"DTMF digit pressed: {entry.ident('digit', required=True)}"
    elif role == "sms":
        text = f"SMS sent: {entry.string('content') or ''}"
    elif role == "injected":
        text = f"injected: {entry.string('content') or ''}"
    else:
        content = entry.string("content")
        text = f"{role}: {content}" if content else role
    at = _time(entry, last_end)
    return Turn(role="system", text=text, start=at, end=at)


def _time(entry: Obj, last_end: float | None) -> float | None:
    at = entry.number("time_sec")
    return at if at is not None else last_end


def _words(items: list[Obj]) -> list[Word]:
    """The utterance's words; one without ``start`` or ``end`` takes them from its neighbours.

    Every field of a Retell word is optional in the SDK. A missing ``start`` is the end of the
    word before (else the word's own end, else the start of the word after); a missing ``end``
    is the start of the word after (else the word's own start, else the end of the word
    before). A missing ``word`` is kept as empty text, so its timing still counts. Words with
    no timing anywhere in the utterance are dropped: there is nothing to place them by.
    """
    raw = [(w.string("word") or "", w.number("start"), w.number("end")) for w in items]
    # the nearest known time before and after each word, in two linear sweeps
    befores: list[float | None] = []
    latest: float | None = None
    for _, start, end in raw:
        befores.append(latest)
        latest = end if end is not None else (start if start is not None else latest)
    afters: list[float | None] = []
    earliest: float | None = None
    for _, start, end in reversed(raw):
        afters.append(earliest)
        earliest = start if start is not None else (end if end is not None else earliest)
    afters.reverse()
    words: list[Word] = []
    for (text, start, end), before, after in zip(raw, befores, afters, strict=True):
        if start is None:
            start = before if before is not None else (end if end is not None else after)
        if end is None:
            end = after if after is not None else (start if start is not None else before)
        if start is None or end is None:
            continue
        words.append(Word(word=text, start=start, end=max(start, end)))
    return words


def _from_text(call: Obj, text: str, agent_name: str | None) -> list[Turn]:
    """Turns from ``Agent: …`` lines; a line without a speaker continues the turn before."""
    turns: list[Turn] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            who = match.group(1).lower().replace(" ", "_")
            role: Role = "agent" if who == "agent" else "user"
            speaker = agent_name if who == "agent" else (None if who == "user" else who)
            turns.append(Turn(role=role, text=match.group(2).strip(), speaker=speaker))
        elif line.strip() and turns:
            last = turns[-1]
            turns[-1] = last.model_copy(update={"text": f"{last.text}\n{line.strip()}".strip()})
        elif line.strip():
            call.fail(
                "transcript",
                f"has a first line {line.strip()[:40]!r} that names no speaker "
                "(expected 'Agent: …' or 'User: …')",
            )
    return turns


def latency_metrics(
    latency: Obj | None, turns: list[Turn]
) -> tuple[dict[str, float], list[TurnLatency]]:
    """Aggregates (``e2e_p50`` …, seconds) and per-turn latencies from Retell's ``latency``.

    The i-th value of a metric belongs to the i-th agent turn that answers the user (agent turns
    right after a user utterance, so not the greeting when the agent speaks first).
    ``TurnLatency.turn`` is that turn's index in ``turns``, or None if there are more values
    than answering turns.
    """
    if latency is None:
        return {}, []
    summary: dict[str, float] = {}
    per_turn: dict[str, list[float]] = {}
    for name in latency.data:
        metric = latency.obj(str(name))
        if metric is None:
            continue
        for stat in _STATS:
            value = metric.number(stat)
            if value is not None:
                summary[f"{name}_{stat}"] = value / 1000
        if name in _PER_TURN:
            per_turn[_PER_TURN[name]] = [v / 1000 for v in metric.numbers("values")]
    count = max((len(v) for v in per_turn.values()), default=0)
    answering = _answering_turns(turns)
    latencies = [
        TurnLatency(
            turn=answering[i] if i < len(answering) else None,
            **{field: values[i] for field, values in per_turn.items() if i < len(values)},
        )
        for i in range(count)
    ]
    return summary, latencies


def _answering_turns(turns: list[Turn]) -> list[int]:
    answering = []
    previous: str | None = None
    for i, turn in enumerate(turns):
        if turn.role not in ("agent", "user"):
            continue
        if turn.role == "agent" and previous == "user":
            answering.append(i)
        previous = turn.role
    return answering
