"""Aligning a replay with its baseline: caller turn with caller turn, agent reply with reply.

:func:`align` pairs the units of :mod:`voicereplay.turns` with a global alignment
(Needleman–Wunsch without gap costs): only units of the same kind can pair, more pairs always beat
fewer, and among equally many pairs the most alike win (caller turns by their words, agent replies
by their words, their tool calls, and the words of the caller turn they answer — so a reply pairs
with the baseline's reply to the same caller turn even when its words changed). So a replay with an
extra reply, a dropped caller turn or an early end still lines up. Each agent pair gets a word-level
diff (:func:`word_diff`) and a tool-call diff (:func:`tool_changes`); ``similarity`` is filled in by
the comparison with the chosen :mod:`~voicereplay.compare.similarity` scorer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any

from voicereplay.compare.model import AlignedTurn, ToolChange, WordOp
from voicereplay.compare.similarity import Lexical, words
from voicereplay.models import ToolCall, Turn
from voicereplay.turns import AgentReply, CallerTurn, Unit, units

__all__ = ["align", "call_text", "tool_changes", "word_diff"]

_PAIR = 2.0  # a pair's base score: more pairs always beat fewer (likeness adds at most 1)


def align(baseline: Sequence[Turn], replay: Sequence[Turn]) -> list[AlignedTurn]:
    """The aligned turns of ``baseline`` (``Call.turns``) and ``replay`` (``Replay.turns``)."""
    left, right = units(baseline), units(replay)
    lexical = Lexical()

    def score(a: Unit, b: Unit) -> float | None:
        if isinstance(a, CallerTurn) and isinstance(b, CallerTurn):
            return _PAIR + lexical.score(baseline[a.index].text, replay[b.index].text)
        if isinstance(a, AgentReply) and isinstance(b, AgentReply):
            text = lexical.score(a.text(baseline), b.text(replay))
            tools = _tool_likeness(a.tools(baseline), b.tools(replay))
            context = _context_likeness(a, b, baseline, replay, lexical)
            return _PAIR + (text + tools + context) / 3
        return None

    n, m = len(left), len(right)
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            options = [best[i + 1][j], best[i][j + 1]]
            paired = score(left[i], right[j])
            if paired is not None:
                options.append(best[i + 1][j + 1] + paired)
            best[i][j] = max(options)
    rows: list[AlignedTurn] = []
    i = j = 0
    while i < n or j < m:
        if i < n and j < m:
            paired = score(left[i], right[j])
            if paired is not None and abs(best[i][j] - (best[i + 1][j + 1] + paired)) < 1e-9:
                rows.append(_row(left[i], right[j], baseline, replay))
                i, j = i + 1, j + 1
                continue
        if i < n and (j >= m or abs(best[i][j] - best[i + 1][j]) < 1e-9):
            rows.append(_row(left[i], None, baseline, replay))
            i += 1
        else:
            rows.append(_row(None, right[j], baseline, replay))
            j += 1
    return rows


def _context_likeness(a: AgentReply, b: AgentReply, baseline: Sequence[Turn],
                      replay: Sequence[Turn], lexical: Lexical) -> float:
    """How alike the caller turns the two replies answer (both the opening: 1)."""
    if a.after_caller is None or b.after_caller is None:
        return 1.0 if a.after_caller == b.after_caller else 0.0
    return lexical.score(baseline[a.after_caller].text, replay[b.after_caller].text)


def _tool_likeness(a: list[str], b: list[str]) -> float:
    if not a and not b:
        return 1.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def _row(a: Unit | None, b: Unit | None, baseline: Sequence[Turn],
         replay: Sequence[Turn]) -> AlignedTurn:
    status = ("matched" if a is not None and b is not None
              else "dropped" if b is None else "inserted")
    if isinstance(a, CallerTurn) or isinstance(b, CallerTurn):
        ca = a if isinstance(a, CallerTurn) else None
        cb = b if isinstance(b, CallerTurn) else None
        return AlignedTurn(
            kind="caller", number=ca.number if ca else cb.number if cb else None,
            replay_number=cb.number if cb else None, status=status,
            baseline_turns=[ca.index] if ca else [], replay_turns=[cb.index] if cb else [],
            baseline_text=baseline[ca.index].text.strip() if ca else "",
            replay_text=replay[cb.index].text.strip() if cb else "")
    ra = a if isinstance(a, AgentReply) else None
    rb = b if isinstance(b, AgentReply) else None
    number = ra.number if ra else rb.number if rb else None
    base_calls = ra.tool_calls(baseline) if ra else []
    replay_calls = rb.tool_calls(replay) if rb else []
    base_text = ra.text(baseline) if ra else ""
    replay_text = rb.text(replay) if rb else ""
    return AlignedTurn(
        kind="agent", number=number, replay_number=rb.number if rb else None, status=status,
        baseline_turns=list(ra.indices) if ra else [], replay_turns=list(rb.indices) if rb else [],
        baseline_text=base_text, replay_text=replay_text,
        baseline_tools=[c.name for c in base_calls], replay_tools=[c.name for c in replay_calls],
        words=word_diff(base_text, replay_text),
        tool_changes=tool_changes(number, base_calls, replay_calls))


def word_diff(baseline: str, replay: str) -> list[WordOp]:
    """Word-level diff; words compare lower-cased without punctuation, display as written."""
    a, b = baseline.split(), replay.split()
    keys_a = [" ".join(words(w)) for w in a]
    keys_b = [" ".join(words(w)) for w in b]
    ops: list[WordOp] = []
    matcher = SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        ops.append(WordOp(op=tag, baseline=" ".join(a[i1:i2]),
                          replay=" ".join(b[j1:j2])))
    return ops


def call_text(call: ToolCall) -> str:
    """``name(arg='value', …)`` as a person reads a tool call."""
    if call.raw_arguments is not None and not call.arguments:
        return f"{call.name}({call.raw_arguments})"
    args = ", ".join(f"{k}={_value(v)}" for k, v in call.arguments.items())
    return f"{call.name}({args})"


def _value(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def tool_changes(turn: int | None, baseline: Sequence[ToolCall],
                 replay: Sequence[ToolCall]) -> list[ToolChange]:
    """The tool calls of one agent turn that were added, dropped, renamed or re-argued."""
    where = f"turn {turn}" if turn is not None else "turn ?"
    changes: list[ToolChange] = []
    matcher = SequenceMatcher(None, [c.name for c in baseline], [c.name for c in replay],
                              autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for old, new in zip(baseline[i1:i2], replay[j1:j2], strict=True):
                differing = _argument_changes(old, new)
                if differing:
                    said = "; ".join(f"{k}: {_value(v['baseline'])} → {_value(v['replay'])}"
                                     for k, v in differing.items())
                    changes.append(ToolChange(
                        turn=turn, kind="arguments", baseline=old, replay=new,
                        arguments=differing, summary=f"{where}: {old.name} {said}"))
            continue
        olds, news = list(baseline[i1:i2]), list(replay[j1:j2])
        for old, new in zip(olds, news, strict=False):
            changes.append(ToolChange(turn=turn, kind="renamed", baseline=old, replay=new,
                                      arguments=_argument_changes(old, new),
                                      summary=f"{where}: {old.name} → {new.name}"))
        for old in olds[len(news):]:
            changes.append(ToolChange(turn=turn, kind="dropped", baseline=old,
                                      summary=f"{where}: dropped {call_text(old)}"))
        for new in news[len(olds):]:
            changes.append(ToolChange(turn=turn, kind="added", replay=new,
                                      summary=f"{where}: added {call_text(new)}"))
    return changes


def _argument_changes(old: ToolCall, new: ToolCall) -> dict[str, dict[str, Any]]:
    a = old.arguments if old.arguments or old.raw_arguments is None else {"": old.raw_arguments}
    b = new.arguments if new.arguments or new.raw_arguments is None else {"": new.raw_arguments}
    return {k: {"baseline": a.get(k), "replay": b.get(k)}
            for k in sorted(set(a) | set(b), key=lambda k: (k not in a, k))
            if _canon(a.get(k)) != _canon(b.get(k))}


def _canon(value: Any) -> str:
    """Arguments compare as values: 4417 and "4417" are the same order id."""
    if isinstance(value, str):
        return value.strip().lower()
    return json.dumps(value, sort_keys=True).lower()
