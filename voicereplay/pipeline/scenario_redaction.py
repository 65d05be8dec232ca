"""``voicereplay save --redact``: the redaction engine (:mod:`voicereplay.redact`) over a
scenario, before anything is written.

:class:`ScenarioRedaction` is the redactor hook :func:`~voicereplay.pipeline.scenarios.
save_scenario` takes. In order (the engine's rule: learn everything first, so a value found
late is redacted early too):

1. learn every caller and agent text, tool-call argument, tool result and mock of the
   scenario, plus the names and patterns the user lists (``--redact-name``,
   ``--redact-pattern``); ``--redact-allow`` keeps a name (the business's own, which spaCy
   may take for a person);
2. replace each known value with its typed placeholder (``<PHONE_NUMBER_1>``) everywhere:
   turn texts, tool-call arguments (JSON values, and the raw argument text), tool results,
   mocks;
3. redact each caller audio segment: the words behind a redacted value are muted (or replaced
   with a tone), padded, using word timings from the STT (a scenario keeps none), then the
   segment is **transcribed again**; a segment where a value is still heard is muted whole;
4. record the report in the scenario (``redaction:``: where, which type, which detector, the
   placeholder, the muted ranges — values masked, never kept).

``save --redact --dry-run`` runs all of it and prints the report without writing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from voicereplay.audio import Audio
from voicereplay.models import KnowledgeContext
from voicereplay.redact import RedactionReport, Redactor, redact_segment
from voicereplay.scenario import Scenario, ScenarioTurn
from voicereplay.simulate.caller import CallerSegment
from voicereplay.simulate.stages import STT

__all__ = ["ScenarioRedaction"]


@dataclasses.dataclass
class ScenarioRedaction:
    """Redact a scenario and its caller segments (a ``save_scenario`` redactor hook)."""

    names: Sequence[str] = ()
    patterns: Sequence[str | tuple[str, str]] = ()  # regex, or (entity, regex)
    allow: Sequence[str] = ()  # never redacted: the business's or the agent's own name
    stt: str = "faster-whisper"
    stt_model: str | None = None
    mode: Literal["mute", "tone"] = "mute"
    analyzer: Any = None  # None: Presidio (tests pass a stand-in)
    report: RedactionReport | None = None

    def __call__(self, scenario: Scenario, segments: dict[str, CallerSegment]
                 ) -> tuple[Scenario, dict[str, CallerSegment]]:
        redactor = Redactor(extra_names=self.names, extra_patterns=self.patterns,
                            allow=self.allow, analyzer=self.analyzer)
        redactor.learn(*_texts(scenario), scenario.mocks)
        turns = [_turn(redactor, turn, n) for n, turn in enumerate(scenario.turns, 1)]
        mocks = redactor.redact_value(scenario.mocks, where="mocks") if scenario.mocks else {}
        texts = {t.audio: t.caller for t in turns if t.audio and t.caller is not None}
        redacted: dict[str, CallerSegment] = {}
        if segments:
            options: dict[str, Any] = {"model": self.stt_model} if self.stt_model else {}
            stt = STT.create(self.stt, **options)
            for key, segment in segments.items():
                samples, _result = redact_segment(
                    redactor, segment.audio.samples, segment.audio.rate, stt,
                    where=f"audio {key.rsplit('/', 1)[-1]}", mode=self.mode)
                redacted[key] = dataclasses.replace(
                    segment, audio=Audio(samples, segment.audio.rate),
                    text=texts.get(key, segment.text))
        self.report = redactor.report
        knowledge = [_knowledge(redactor, k, n) for n, k in enumerate(scenario.knowledge)]
        return scenario.model_copy(update={
            "turns": turns, "mocks": mocks, "knowledge": knowledge,
            "redaction": redactor.report.to_json()}), redacted


def _texts(scenario: Scenario) -> list[Any]:
    found: list[Any] = []
    for turn in scenario.turns:
        found += [text for text in (turn.caller, turn.agent) if text]
        for call in turn.tool_calls or []:
            found.append(call.arguments)
            if call.raw_arguments:
                found.append(call.raw_arguments)
        if turn.tool_result is not None:
            found.append(turn.tool_result.result)
    for context in scenario.knowledge:
        found += [text for text in (context.query, context.text) if text]
        found += [d.content for d in context.documents if d.content]
    return found


def _knowledge(redactor: Redactor, context: KnowledgeContext, n: int) -> KnowledgeContext:
    """A retrieved context with its query, text and documents redacted (a caller's words end
    up in a query; a knowledge base may hold customer records)."""
    where = f"knowledge {n + 1}"
    return context.model_copy(update={
        "query": redactor.redact_text(context.query, where=f"{where} query")
        if context.query else context.query,
        "text": redactor.redact_text(context.text, where=where) if context.text else "",
        "documents": [d.model_copy(update={"content": redactor.redact_text(
            d.content, where=f"{where} document")}) for d in context.documents]})


def _turn(redactor: Redactor, turn: ScenarioTurn, n: int) -> ScenarioTurn:
    where = f"turn {n}"
    update: dict[str, Any] = {}
    if turn.caller:
        update["caller"] = redactor.redact_text(turn.caller, where=f"{where} (caller)")
    if turn.agent:
        update["agent"] = redactor.redact_text(turn.agent, where=f"{where} (agent)")
    if turn.tool_calls:
        update["tool_calls"] = [call.model_copy(update={
            "arguments": redactor.redact_value(call.arguments,
                                               where=f"{where} {call.name} arguments"),
            "raw_arguments": (redactor.redact_text(call.raw_arguments,
                                                   where=f"{where} {call.name} arguments")
                              if call.raw_arguments else None)}) for call in turn.tool_calls]
    if turn.tool_result is not None:
        update["tool_result"] = turn.tool_result.model_copy(update={
            "result": redactor.redact_text(turn.tool_result.result,
                                           where=f"{where} tool result")})
    return turn.model_copy(update=update)
