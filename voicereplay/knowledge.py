"""Knowledge-base context: what the production agent retrieved per turn, and how a replay serves it.

Providers record retrieval differently (parsed in :mod:`voicereplay.providers`):

* ``vapi-message`` — a ``knowledge-base`` message in the call's messages (the retrieved text as
  Vapi put it into the conversation);
* ``vapi-tool`` — the result of a knowledge-base tool (a Vapi ``query`` tool) the agent called;
* ``retell-url`` — Retell's ``knowledge_base_retrieved_contents_url``: the contents retrieved
  for each agent response, fetched on import.

Each becomes a :class:`~voicereplay.models.KnowledgeContext` on ``Call.knowledge`` whose
``turn`` is the agent turn it informed. A replay serves it at the same agent reply — the reply
to the same caller turn — the way the production model saw it (:func:`message`): Vapi contexts
join the conversation history as a ``system`` message before that reply's first request and
stay there (as a tool result does); a Retell context is a ``system`` message in that reply's
requests only, as Retell retrieves afresh for every response. A context with no turn (it could
not be matched to one) is shown, never served.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from voicereplay.models import Call, KnowledgeContext, KnowledgeDocument, Turn
from voicereplay.snapshot import AgentSnapshot
from voicereplay.turns import AgentReply

__all__ = ["TOOL_KINDS", "by_turn", "documents", "for_reply", "from_tool_results", "message",
           "next_agent_turn", "persists", "tool_names", "tool_query"]

TOOL_KINDS = frozenset({"query"})  # snapshot tool kinds that search a knowledge base (Vapi)


def tool_names(snapshot: AgentSnapshot | None) -> set[str]:
    """The names of the snapshot's knowledge-base tools (Vapi ``query`` tools)."""
    return {t.name for t in snapshot.tools if t.kind in TOOL_KINDS} if snapshot else set()


def next_agent_turn(turns: Sequence[Turn], start: int) -> int | None:
    """The index of the first agent turn at or after ``start`` (None: the agent never spoke)."""
    return next((i for i in range(start, len(turns)) if turns[i].role == "agent"), None)


def for_reply(call: Call, reply: AgentReply | None) -> list[KnowledgeContext]:
    """The call's contexts that informed ``reply`` (one of ``voicereplay.turns.agent_replies``)."""
    if reply is None:
        return []
    indices = set(reply.indices)
    return [k for k in call.knowledge if k.turn is not None and k.turn in indices]


def by_turn(contexts: Iterable[KnowledgeContext]) -> dict[int | None, list[KnowledgeContext]]:
    """Contexts grouped by the turn they informed (``None``: not matched to a turn)."""
    grouped: dict[int | None, list[KnowledgeContext]] = {}
    for context in contexts:
        grouped.setdefault(context.turn, []).append(context)
    return grouped


def persists(context: KnowledgeContext) -> bool:
    """Does the context stay in the conversation history after its reply? (Vapi: yes.)"""
    return context.source != "retell-url"


def message(context: KnowledgeContext) -> dict[str, Any]:
    """The chat message that serves ``context`` to the replayed LLM."""
    content = context.content
    if context.source != "vapi-message" or not context.text.strip():
        asked = f" for {context.query!r}" if context.query else ""
        content = f"Knowledge base results{asked}:\n{content}"
    return {"role": "system", "content": content}


def tool_query(arguments: dict[str, Any], raw: str | None) -> str | None:
    """What a knowledge-base tool call searched for: its ``query`` argument, else its arguments."""
    for key in ("query", "question", "q", "search"):
        value = arguments.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    if arguments:
        return json.dumps(arguments, ensure_ascii=False, sort_keys=True)
    return raw.strip() if raw and raw.strip() else None


def from_tool_results(call: Call, tool_names: Iterable[str]) -> Call:
    """``call`` with a ``vapi-tool`` context for every result of a tool in ``tool_names``.

    Results already captured (by tool call id) are not added twice, so this can run both when
    the payload is parsed (an inline assistant) and once the snapshot is known (on import).
    """
    names = set(tool_names)
    if not names:
        return call
    known = {k.tool_call_id for k in call.knowledge if k.tool_call_id}
    calls = {c.id: c for t in call.turns for c in t.tool_calls}
    added: list[KnowledgeContext] = []
    for index, turn in enumerate(call.turns):
        result = turn.tool_result
        if result is None:
            continue
        tool_call = calls.get(result.id or "")
        name = result.name or (tool_call.name if tool_call else None)
        key = result.id or f"turn-{index}"
        if name not in names or key in known:
            continue
        query = tool_query(tool_call.arguments, tool_call.raw_arguments) if tool_call else None
        added.append(KnowledgeContext(
            turn=next_agent_turn(call.turns, index + 1), at=turn.start, source="vapi-tool",
            query=query, text=result.result, tool_call_id=key))
        known.add(key)
    if not added:
        return call
    return call.model_copy(update={"knowledge": [*call.knowledge, *added]})


def documents(items: Iterable[Any]) -> list[KnowledgeDocument]:
    """Retrieved documents from a provider list: strings, or objects with the text under
    ``content``/``text``/``chunk`` and an optional ``similarity``/``score`` and id."""
    found: list[KnowledgeDocument] = []
    for item in items:
        if isinstance(item, str):
            if item.strip():
                found.append(KnowledgeDocument(content=item))
            continue
        if not isinstance(item, dict):
            continue
        text = next((item[k] for k in ("content", "text", "chunk", "page_content")
                     if isinstance(item.get(k), str)), None)
        if text is None or not text.strip():
            continue
        score = next((item[k] for k in ("similarity", "score", "relevance")
                      if isinstance(item.get(k), int | float)
                      and not isinstance(item.get(k), bool)), None)
        ident = next((item[k] for k in ("uuid", "id", "chunk_id", "source")
                      if isinstance(item.get(k), str | int) and not isinstance(item.get(k), bool)),
                     None)
        found.append(KnowledgeDocument(content=text, score=score,
                                       id=None if ident is None else str(ident)))
    return found
