"""An LLM judge: does a replay satisfy a rubric a person wrote in plain words?

:class:`Judge` asks any :class:`JudgeModel`; the pipeline adapts the LLM backends a replay uses
to it (:mod:`voicereplay.pipeline.judging`), so nothing here builds a model. It shows the model
the rubric, the baseline call's transcript (context) and the replay's transcript (the one
judged), agent turns numbered the way a comparison numbers them (:mod:`voicereplay.turns`)
and tool calls shown as ``name(arg='value')``, and asks for one JSON object
``{"reasoning": "...", "pass": true|false}`` (:data:`VERDICT_SCHEMA`; the embedded model's
grammar enforces it, other backends are asked for a JSON object), at temperature 0 with a fixed
seed. The answer is parsed leniently (the first JSON object in
the text; ``pass`` may be a bool or ``"pass"``/``"fail"``); an answer that does not parse is a
:class:`Verdict` with ``passed=None`` whose reasoning carries the raw answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from voicereplay import turns as turn_units
from voicereplay.models import Call, Replay, ToolCall, Turn

__all__ = [
    "JUDGE_SEED",
    "VERDICT_SCHEMA",
    "Judge",
    "JudgeFor",
    "JudgeModel",
    "Verdict",
    "format_tool_call",
    "parse_verdict",
    "transcript",
]

JUDGE_SEED = 7
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string", "maxLength": 400},
        "pass": {"type": "boolean"},
    },
    "required": ["reasoning", "pass"],
}
_TOOL_RESULT_CHARS = 200

SYSTEM_PROMPT = (
    "You evaluate phone calls handled by a voice agent. You are given a rubric, the transcript "
    "of the original call (the baseline, for context only) and the transcript of a replay of "
    "that call with a changed agent. Decide whether the agent in the REPLAY satisfies the "
    "rubric. Agent turns are numbered; tool calls the agent made are shown as "
    "[tool call] name(arguments) and what they returned as [tool result]. Answer with one JSON "
    'object and nothing else: {"reasoning": "<one or two sentences, citing agent turn '
    'numbers>", "pass": true or false}.'
)


class Verdict(BaseModel):
    """A judge's answer. ``passed`` None: the answer was not a JSON verdict."""

    model_config = ConfigDict(frozen=True)

    passed: bool | None
    reasoning: str
    model: str
    raw: str


class JudgeModel(Protocol):
    """What a judge needs of an LLM: one chat answer as text.

    The pipeline adapts a replay's LLM backend to it (:mod:`voicereplay.pipeline.judging`);
    ``name`` names the judge in reports. ``response_format`` is OpenAI's (``json_object`` or a
    ``json_schema``); a backend that cannot constrain its output may ignore it.
    """

    name: str

    def answer(self, messages: list[dict[str, str]], *, schema: dict[str, Any],
               seed: int, max_tokens: int | None) -> str: ...


JudgeFor = Callable[[str | None, str | None, str | None], "Judge"]
"""Builds the judge an ``llm_judge`` check names: (model, base_url, api_key) → Judge."""


class Judge:
    """Judges replays against rubrics with ``model`` (at temperature 0, a fixed seed)."""

    def __init__(self, model: JudgeModel, *, seed: int = JUDGE_SEED,
                 max_tokens: int | None = 600) -> None:
        self.llm = model
        self.model = model.name
        self.seed = seed
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"Judge({self.model!r})"

    def messages(self, rubric: str, call: Call, replay: Replay) -> list[dict[str, str]]:
        """The chat :meth:`judge` sends."""
        prompt = "\n\n".join([
            f"Rubric: {rubric.strip()}",
            "Baseline call (the original, for context):\n" + transcript(call.turns),
            "Replay (judge this one):\n" + transcript(replay.turns),
            "Does the agent in the replay satisfy the rubric? Answer with the JSON object only.",
        ])
        return [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": prompt}]

    def judge(self, rubric: str, call: Call, replay: Replay) -> Verdict:
        """The verdict on ``replay`` (a replay of ``call``). A backend failure raises its
        :class:`~voicereplay.errors.VoiceReplayError`; an answer that does not parse is a
        verdict with ``passed=None``."""
        text = self.llm.answer(self.messages(rubric, call, replay), schema=VERDICT_SCHEMA,
                               seed=self.seed, max_tokens=self.max_tokens)
        passed, reasoning = parse_verdict(text)
        if passed is None:
            reasoning = f"the judge's answer is not a JSON verdict: {text!r}"
        return Verdict(passed=passed, reasoning=reasoning, model=self.model, raw=text)


def transcript(turns: Sequence[Turn]) -> str:
    """A call's turns as the judge reads them: ``Agent turn N: ...`` and ``Caller: ...``."""
    lines: list[str] = []
    for unit in turn_units.units(turns):
        if isinstance(unit, turn_units.CallerTurn):
            lines.append(f"Caller: {_one_line(turns[unit.index].text)}")
            continue
        parts: list[str] = []
        for index in unit.indices:
            turn = turns[index]
            parts.extend(f"[tool call] {format_tool_call(c)}" for c in turn.tool_calls)
            if turn.tool_result is not None:
                result = _one_line(turn.tool_result.result)
                if len(result) > _TOOL_RESULT_CHARS:
                    result = result[:_TOOL_RESULT_CHARS] + "…"
                parts.append(f"[tool result] {result}")
            elif turn.role == "agent" and turn.text.strip():
                parts.append(_one_line(turn.text))
        lines.append(f"Agent turn {unit.number}: " + (" ".join(parts) or "(nothing)"))
    return "\n".join(lines) or "(no turns)"


def format_tool_call(call: ToolCall, *, limit: int = 80) -> str:
    """``issue_refund(order_id='4417')``; arguments that were not JSON are shown as sent."""
    if call.raw_arguments is not None and not call.arguments:
        return f"{call.name}({_clip(call.raw_arguments, limit)})"
    shown = ", ".join(f"{key}={_clip(repr(value), limit)}" for key, value in call.arguments.items())
    return f"{call.name}({shown})"


_PASS_WORDS = {"pass": True, "passed": True, "true": True, "yes": True,
               "fail": False, "failed": False, "false": False, "no": False}


def parse_verdict(text: str) -> tuple[bool | None, str]:
    """``(passed, reasoning)`` from a judge's answer: the first JSON object in ``text`` that
    has a verdict (``pass``, or ``passed``/``verdict``/``result``) as a bool or a
    pass/fail word. ``passed`` is None when there is none."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            found, _end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if not isinstance(found, dict):
            continue
        lowered = {str(k).strip().lower(): v for k, v in found.items()}
        for key in ("pass", "passed", "verdict", "result"):
            passed = _as_verdict(lowered.get(key))
            if passed is not None:
                reasoning = lowered.get("reasoning", lowered.get("reason", ""))
                return passed, reasoning if isinstance(reasoning, str) else json.dumps(reasoning)
    return None, ""


def _as_verdict(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _PASS_WORDS.get(value.strip().lower())
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
