"""Retell's retrieved knowledge-base contents → per-turn knowledge contexts of a call.

A Retell call that used a knowledge base names ``knowledge_base_retrieved_contents_url``: a file
Retell documents as "the response id and the retrieved contents related to that response"
(its exact layout is not published). The adapter fetches it on import
(:meth:`~voicereplay.providers.retell.RetellProvider.fetch_knowledge`); this module reads it,
pure functions, no I/O. Accepted layouts:

* a JSON list of entries ``{"response_id": 3, "retrieved_contents": [...]}`` (the contents may
  also be under ``contents``, ``chunks``, ``documents`` or ``content``; each item a string or
  ``{content|text, score?, id?}``; an optional ``query``);
* a JSON object holding such a list under ``retrieved_contents``, ``items`` or ``results``;
* a JSON object mapping each response id to its contents (``{"3": [...]}``).

Matching to turns: an agent utterance in ``transcript_object`` / ``transcript_with_tool_calls``
carries ``metadata.response_id`` (observed, undocumented). When every entry's response id is
found there, each context belongs to that agent turn. Otherwise the entries are attached **by
order**: the n-th entry to the n-th agent turn that answers the caller (retrieval runs on what
the caller said), and the call says so in a note. Entries beyond those turns, and a file that
is not JSON, are kept with no turn: shown on the call, never served to a replay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from voicereplay import knowledge
from voicereplay.models import Call, KnowledgeContext, KnowledgeDocument
from voicereplay.providers.retell_fields import call_body

__all__ = ["knowledge_url", "parse_retrieved", "with_retrieved"]

_CONTENT_KEYS = ("retrieved_contents", "contents", "chunks", "documents", "content",
                 "retrieved_content")
_LIST_KEYS = ("retrieved_contents", "items", "results")
_QUERY_KEYS = ("query", "user_query", "retrieval_query")
_TRANSCRIPTS = ("transcript_with_tool_calls", "transcript_object")


def knowledge_url(call: Call) -> str | None:
    """The call's ``knowledge_base_retrieved_contents_url``, if it has one."""
    body, _ = call_body(call.raw) if call.raw else ({}, "")
    url = body.get("knowledge_base_retrieved_contents_url") if isinstance(body, Mapping) else None
    return url if isinstance(url, str) and url.strip() else None


def with_retrieved(call: Call, text: str) -> Call:
    """``call`` with the contexts of a retrieved-contents file (replacing any it had), and the
    note on how they were matched among its warnings."""
    contexts, note = parse_retrieved(text, call)
    kept = [k for k in call.knowledge if k.source != "retell-url"]
    return call.model_copy(update={"knowledge": [*kept, *contexts],
                                   "warnings": [*call.warnings, *([note] if note else [])]})


def parse_retrieved(text: str, call: Call) -> tuple[list[KnowledgeContext], str | None]:
    """The contexts in a retrieved-contents file, and a note on how they were matched."""
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    entries = _entries(document) if document is not None else None
    if entries is None:
        if not text.strip():
            return [], None
        context = KnowledgeContext(source="retell-url", text=text.strip())
        return [context], ("the knowledge-base contents are not in a known JSON layout: kept "
                           "as one text with no turn (shown, not served to replays)")
    by_response = _response_turns(call)
    ids = [response for response, _, _ in entries]
    if entries and all(r is not None and r in by_response for r in ids):
        return [KnowledgeContext(turn=by_response[r], source="retell-url", query=q,
                                 documents=d) for r, q, d in entries if r is not None], None
    answering = _answering_turns(call)
    contexts = [KnowledgeContext(turn=answering[n] if n < len(answering) else None,
                                 source="retell-url", query=q, documents=d)
                for n, (_, q, d) in enumerate(entries)]
    if not contexts:
        return [], None
    note = ("the knowledge-base contents could not be matched to agent turns by response id; "
            "they are attached in order to the agent's answers")
    if len(entries) > len(answering):
        note += f" ({len(entries) - len(answering)} left without a turn: shown, not served)"
    return contexts, note


def _entries(document: Any) -> list[tuple[int | None, str | None,
                                          list[KnowledgeDocument]]] | None:
    """(response id, query, documents) per entry, or None for a layout this does not know."""
    if isinstance(document, Mapping):
        for key in _LIST_KEYS:
            if isinstance(document.get(key), list):
                return _entries(document[key])
        if document and all(_integer(k) is not None for k in document):
            return [(_integer(k), None, _documents(v)) for k, v in document.items()
                    if _documents(v)]
        return None
    if not isinstance(document, list):
        return None
    found: list[tuple[int | None, str | None, list[KnowledgeDocument]]] = []
    for item in document:
        if not isinstance(item, Mapping):
            return None
        contents = next((item[k] for k in _CONTENT_KEYS if k in item), None)
        docs = _documents(contents)
        if not docs:
            continue
        query = next((item[k] for k in _QUERY_KEYS if isinstance(item.get(k), str)), None)
        found.append((_integer(item.get("response_id")), query, docs))
    return found


def _documents(value: Any) -> list[KnowledgeDocument]:
    if isinstance(value, str):
        return knowledge.documents([value])
    return knowledge.documents(value) if isinstance(value, list) else []


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _response_turns(call: Call) -> dict[int, int]:
    """Response id → index of its first agent turn, from the utterances' ``metadata``.

    The transcript parser makes one turn per entry of the richest transcript list, so entry i
    is turn i.
    """
    body, _ = call_body(call.raw) if call.raw else ({}, "")
    entries: list[Any] = next((body[k] for k in _TRANSCRIPTS
                    if isinstance(body, Mapping) and isinstance(body.get(k), list) and body[k]),
                   [])
    if len(entries) != len(call.turns):
        return {}
    found: dict[int, int] = {}
    for index, entry in enumerate(entries):
        metadata = entry.get("metadata") if isinstance(entry, Mapping) else None
        response = _integer(metadata.get("response_id")) if isinstance(metadata, Mapping) \
            else None
        if response is not None and call.turns[index].role == "agent":
            found.setdefault(response, index)
    return found


def _answering_turns(call: Call) -> list[int]:
    """Agent turns that answer the caller: the first agent turn after each caller turn."""
    answering: list[int] = []
    previous: str | None = None
    for index, turn in enumerate(call.turns):
        if turn.role == "agent" and previous == "user":
            answering.append(index)
        if turn.role in ("agent", "user"):
            previous = turn.role
    return answering
