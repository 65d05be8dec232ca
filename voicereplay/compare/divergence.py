"""The divergence turn: the first agent turn whose meaning departs from the baseline.

An agent reply departs (:func:`departure`), in this order of reasons, when

1. ``tool-call`` — it calls other tools than the baseline's reply, or the same tools with other
   arguments (``issue_refund → check_status``);
2. ``intent`` — it does something else with its words: :func:`intent` tells a question from a
   statement, an apology, a hand-over to a person, and a goodbye, and the two differ;
3. ``text`` — its words are too different: similarity under the scorer's threshold.

Among aligned turns, a baseline reply the replay never gave is ``missing`` and a reply only the
replay gave is ``extra``. :func:`find_divergence` walks the alignment in order and returns the
first departure, or ``None`` when the replay kept to the baseline's meaning throughout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from voicereplay.compare.model import AlignedTurn, Divergence
from voicereplay.compare.similarity import Lexical, Similarity

__all__ = ["Departure", "departure", "find_divergence", "intent"]

_GOODBYE = re.compile(r"\b(good[\s-]?bye|bye|have a (great|good|nice) (day|one|evening))\b", re.I)
_HANDOVER = re.compile(r"\b(transfer(ring)?|escalat\w*|connect(ing)? you|put you through|"
                       r"hand (you )?over|speak (to|with) (a|an|our) (human|person|agent|manager|"
                       r"specialist|representative))\b", re.I)
_APOLOGY = re.compile(r"^\W*(i'?m|i am|we'?re|we are)?\s*(so |very |really |truly )?"
                      r"(sorry|apologi[sz]e)", re.I)
_QUESTION_START = re.compile(
    r"^\W*(could|can|would|will|may|do|does|did|is|are|was|were|have|has|what|what's|which|"
    r"when|where|who|whose|why|how)\b", re.I)
_SENTENCES = re.compile(r"[^.!?]+[.!?]*")


def intent(text: str) -> str | None:
    """What a reply does: goodbye, handover, question, apology or statement (None: silent)."""
    stripped = text.strip()
    if not stripped:
        return None
    if _GOODBYE.search(stripped):
        return "goodbye"
    if _HANDOVER.search(stripped):
        return "handover"
    sentences = [s.strip() for s in _SENTENCES.findall(stripped) if s.strip()]
    last = sentences[-1] if sentences else stripped
    if last.endswith("?") or (not last.endswith((".", "!")) and _QUESTION_START.match(last)):
        return "question"
    if _APOLOGY.match(stripped):
        return "apology"
    return "statement"


@dataclass(frozen=True)
class Departure:
    """Why one reply departs from the baseline's (see the module docs)."""

    reason: str
    detail: str
    similarity: float | None
    baseline_intent: str | None
    replay_intent: str | None


def departure(baseline_text: str, baseline_tools: Sequence[str], replay_text: str,
              replay_tools: Sequence[str], *, similarity: float | None = None,
              scorer: Similarity | None = None, tool_detail: str | None = None,
              threshold: float | None = None) -> Departure | None:
    """How a replay reply departs from the baseline's, or ``None`` if it keeps its meaning.

    ``similarity`` is the replies' score when already known (else ``scorer`` computes it);
    ``tool_detail`` describes a difference in tool arguments (it departs when given).
    """
    scorer = scorer or Lexical()
    limit = scorer.threshold if threshold is None else threshold
    if similarity is None:
        similarity = scorer.score(baseline_text, replay_text)
    base_intent, replay_intent = intent(baseline_text), intent(replay_text)
    if list(baseline_tools) != list(replay_tools):
        before = ", ".join(baseline_tools) or "no tool call"
        after = ", ".join(replay_tools) or "no tool call"
        return Departure("tool-call", f"{before} → {after}", similarity, base_intent,
                         replay_intent)
    if tool_detail:
        return Departure("tool-call", tool_detail, similarity, base_intent, replay_intent)
    if base_intent != replay_intent and base_intent is not None and replay_intent is not None:
        return Departure("intent", f"{base_intent} → {replay_intent}", similarity, base_intent,
                         replay_intent)
    if similarity < limit:
        return Departure("text", f"similarity {similarity:.2f} < {limit:g}", similarity,
                         base_intent, replay_intent)
    return None


def find_divergence(alignment: Sequence[AlignedTurn], threshold: float) -> Divergence | None:
    """The first agent turn of ``alignment`` that departs (similarities already filled in)."""
    for row in alignment:
        if row.kind != "agent":
            continue
        number = row.number or 0
        if row.status == "dropped":
            return Divergence(turn=number, reason="missing", threshold=threshold,
                              detail="the replay has no reply here",
                              baseline_text=row.baseline_text,
                              baseline_intent=intent(row.baseline_text))
        if row.status == "inserted":
            return Divergence(turn=number, reason="extra", threshold=threshold,
                              detail="a reply the baseline does not have",
                              replay_text=row.replay_text, replay_intent=intent(row.replay_text))
        argued = [c.summary.split(": ", 1)[-1] for c in row.tool_changes if c.kind == "arguments"]
        found = departure(row.baseline_text, row.baseline_tools, row.replay_text,
                          row.replay_tools, similarity=row.similarity, threshold=threshold,
                          tool_detail="; ".join(argued) or None)
        if found is not None:
            return Divergence(turn=number, reason=found.reason,
                              detail=found.detail, similarity=found.similarity,
                              threshold=threshold, baseline_text=row.baseline_text,
                              replay_text=row.replay_text, baseline_intent=found.baseline_intent,
                              replay_intent=found.replay_intent)
    return None
