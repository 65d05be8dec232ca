"""Caller satisfaction (CSAT) estimated by a judge model: a score 1–5 and a one-line reason.

:class:`CsatEstimator` shows a :class:`~voicereplay.compare.judge.JudgeModel` one call's
transcript (the same rendering the ``llm_judge`` checks use: numbered agent turns, tool calls
and their results) and asks for ``{"reason": "...", "score": 1..5}`` (:data:`CSAT_SCHEMA`; the
embedded llama.cpp model is held to it by its grammar, other backends are asked for a JSON
object) at temperature 0 with the judge's fixed seed (:data:`~.judge.JUDGE_SEED`).

The answer is validated, never trusted: the first JSON object in the text with a ``score``;
the score must be a whole number from 1 to 5, the reason a non-empty string, which is put on one
line and clipped to :data:`REASON_CHARS` characters. An answer that fails any of that, or a
backend that fails, is an estimate with ``score=None`` and the cause in ``error`` — it never
stops a comparison.

:func:`csat_pair` estimates the baseline call and the replay; the pipeline may hand it the
baseline's estimate from a cache (:meth:`CsatEstimator.cache_key` names the exact question, so
the same call asked of the same judge model is answered once; see
:mod:`voicereplay.pipeline.judging`). An estimate is a small model's impression, not a survey
result: compare the two sides of one call, and trust distributions over many calls more than one
score.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from voicereplay.compare.judge import JUDGE_SEED, JudgeModel, transcript
from voicereplay.compare.model import CsatEstimate, CsatPair
from voicereplay.errors import PayloadError, VoiceReplayError
from voicereplay.models import Call, Replay, Turn

__all__ = ["CSAT_SCHEMA", "REASON_CHARS", "CsatEstimator", "csat_pair", "parse_csat"]

REASON_CHARS = 200
SCORES = (1, 2, 3, 4, 5)
CSAT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {"type": "string", "minLength": 1, "maxLength": REASON_CHARS},
        "score": {"type": "integer", "enum": list(SCORES)},
    },
    "required": ["reason", "score"],
}
_RAW_CHARS = 160  # of a malformed answer, quoted in the error

SYSTEM_PROMPT = (
    "You read the transcript of a phone call between a caller and a voice agent and estimate "
    "how satisfied the caller was at the end of the call, as a customer satisfaction score "
    "from 1 to 5: 1 very dissatisfied (the problem was not solved, the agent was wrong, "
    "unhelpful or rude, the caller was upset), 3 neutral, 5 very satisfied (the problem was "
    "solved and the caller was pleased). Agent turns are numbered; tool calls the agent made "
    "are shown as [tool call] name(arguments) and what they returned as [tool result]. Answer "
    'with one JSON object and nothing else: {"reason": "<one sentence>", "score": <1 to 5>}.'
)


class CsatEstimator:
    """Estimates caller satisfaction with ``model`` (temperature 0, a fixed seed)."""

    def __init__(self, model: JudgeModel, *, seed: int = JUDGE_SEED,
                 max_tokens: int | None = 160) -> None:
        self.llm = model
        self.model = model.name
        self.seed = seed
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"CsatEstimator({self.model!r})"

    def messages(self, turns: Sequence[Turn]) -> list[dict[str, str]]:
        """The chat :meth:`estimate` sends for a call with these turns."""
        prompt = ("Call transcript:\n" + transcript(turns) + "\n\nHow satisfied was the "
                  "caller at the end of this call? Answer with the JSON object only.")
        return [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": prompt}]

    def cache_key(self, turns: Sequence[Turn], *, served_by: str | None = None) -> str:
        """The sha256 of everything that decides the answer: the judge model (and the server
        ``served_by``, when the caller knows it), the messages (so the call's content), the
        schema, the seed and the token limit."""
        question = {"model": self.model, "served_by": served_by,
                    "messages": self.messages(turns),
                    "schema": CSAT_SCHEMA, "seed": self.seed, "max_tokens": self.max_tokens}
        canonical = json.dumps(question, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def estimate(self, turns: Sequence[Turn]) -> CsatEstimate:
        """The estimate for a call with ``turns``; a failure is an estimate with an error."""
        try:
            text = self.llm.answer(self.messages(turns), schema=CSAT_SCHEMA, seed=self.seed,
                                   max_tokens=self.max_tokens)
        except VoiceReplayError as exc:
            return CsatEstimate(model=self.model, error=f"the judge failed: {exc.message}")
        try:
            score, reason = parse_csat(text)
        except PayloadError as exc:
            return CsatEstimate(model=self.model, error=exc.message)
        return CsatEstimate(score=score, reason=reason, model=self.model)


def csat_pair(estimator: CsatEstimator, call: Call, replay: Replay, *,
              baseline: CsatEstimate | None = None) -> CsatPair:
    """The baseline call's estimate (``baseline`` when the caller has it) and the replay's."""
    before = baseline if baseline is not None else estimator.estimate(call.turns)
    after = estimator.estimate(replay.turns)
    delta = (after.score - before.score
             if after.score is not None and before.score is not None else None)
    return CsatPair(baseline=before, replay=after, delta=delta)


def parse_csat(text: str) -> tuple[int, str]:
    """``(score, reason)`` from a judge's answer (rules in the module docs); a
    :class:`~voicereplay.errors.PayloadError` that says what is wrong otherwise."""
    found = _first_object_with_score(text)
    if found is None:
        raise PayloadError(f"the judge's answer is not a JSON estimate with a score: "
                           f"{_clip(text.strip(), _RAW_CHARS)!r}")
    score = _whole(found["score"])
    if score is None:
        raise PayloadError(f"the judge's score {found['score']!r} is not a whole number 1–5")
    if score not in SCORES:
        raise PayloadError(f"the judge's score {score} is outside 1–5")
    reason = found.get("reason", found.get("reasoning"))
    if not isinstance(reason, str) or not reason.strip():
        raise PayloadError(f"the judge gave score {score} but no reason")
    return score, _clip(" ".join(reason.split()), REASON_CHARS)


def _first_object_with_score(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            found, _end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(found, dict):
            lowered = {str(k).strip().lower(): v for k, v in found.items()}
            if "score" in lowered:
                return lowered
    return None


def _whole(value: Any) -> int | None:
    """An int from ``4``, ``4.0`` or ``"4"``; None for anything else (booleans too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
