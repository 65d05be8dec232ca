"""Fidelity: how closely a replay with no overrides reproduces its baseline, and flakiness.

A replay with no overrides runs the call's own agent, so everything it does differently is the
replay pipeline (the model behind the API answering differently, the STT hearing differently),
not a change. :func:`measure` scores that from an alignment as the mean of three parts, each in
[0, 1]:

* ``agent_similarity`` — mean similarity of the aligned agent turns (a dropped or an extra turn
  counts 0);
* ``tool_agreement`` — baseline tool calls the replay made the same (name and arguments), over
  the larger of the two sides' tool-call counts (1 when neither side calls a tool);
* ``turn_count_ratio`` — fewer agent turns over more agent turns.

Levels: ``high`` ≥ 0.85, ``medium`` ≥ 0.6, else ``low``. :func:`flakiness` measures how much the
N replays of one batch (``--runs N``) disagree with each other, turn by turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from voicereplay.compare.model import AlignedTurn, Fidelity, TurnFlakiness
from voicereplay.compare.similarity import Similarity

__all__ = ["HIGH", "MEDIUM", "flakiness", "level", "measure"]

HIGH = 0.85
MEDIUM = 0.6


def level(score: float | None) -> str:
    if score is None:
        return "unknown"
    return "high" if score >= HIGH else "medium" if score >= MEDIUM else "low"


def measure(alignment: Sequence[AlignedTurn], *, basis: str, replay_id: str | None = None,
            before_turn: int | None = None, note: str = "") -> Fidelity:
    """Fidelity of one aligned replay; ``before_turn`` limits it to the agent turns before it."""
    rows = [r for r in alignment if r.kind == "agent"
            and (before_turn is None or (r.number is not None and r.number < before_turn))]
    if not rows:
        return Fidelity(basis=basis, replay_id=replay_id, note=note or "no agent turns to score")
    similarity = sum(r.similarity or 0.0 for r in rows) / len(rows)
    baseline_calls = sum(len(r.baseline_tools) for r in rows)
    replay_calls = sum(len(r.replay_tools) for r in rows)
    changed = sum(1 for r in rows for c in r.tool_changes if c.baseline is not None)
    total = max(baseline_calls, replay_calls)
    tools = 1.0 if total == 0 else max(0, baseline_calls - changed) / total
    base_turns = sum(1 for r in rows if r.status != "inserted")
    replay_turns = sum(1 for r in rows if r.status != "dropped")
    ratio = min(base_turns, replay_turns) / max(base_turns, replay_turns)
    score = (similarity + tools + ratio) / 3
    return Fidelity(score=round(score, 4), level=level(score),
                    basis=basis, replay_id=replay_id, agent_similarity=round(similarity, 4),
                    tool_agreement=round(tools, 4), turn_count_ratio=round(ratio, 4), note=note)


def flakiness(runs: Sequence[Sequence[AlignedTurn]], scorer: Similarity) -> list[TurnFlakiness]:
    """Per baseline agent turn: how much ``runs`` (each aligned to the baseline) disagree."""
    texts: dict[int, list[str]] = {}
    tools: dict[int, list[tuple[str, ...]]] = {}
    for alignment in runs:
        for row in alignment:
            if row.kind != "agent" or row.status == "inserted" or row.number is None:
                continue
            texts.setdefault(row.number, []).append(row.replay_text)
            tools.setdefault(row.number, []).append(tuple(row.replay_tools))
    found: list[TurnFlakiness] = []
    for number in sorted(texts):
        said = texts[number]
        pairs = list(combinations(range(len(said)), 2))
        if not pairs:
            continue
        scores = scorer.score_many([(said[a], said[b]) for a, b in pairs])
        differing = sum(1 for a, b in pairs if tools[number][a] != tools[number][b])
        found.append(TurnFlakiness(turn=number,
                                   disagreement=round(1 - sum(scores) / len(scores), 4),
                                   tool_disagreement=round(differing / len(pairs), 4),
                                   texts=said))
    return found
