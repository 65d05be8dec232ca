"""The agent's side of a replay: the chat history, and one LLM reply with its tool rounds.

:class:`Conversation` keeps the history in OpenAI Chat Completions form (system prompt first,
``assistant`` messages with ``tool_calls``, ``tool`` messages with results) and turns one heard
caller turn into :class:`Step` s: agent text to speak, tool calls, tool results. Each step
carries ``offset``: the seconds of LLM (and tool) time from the moment the LLM was first asked
to the moment the step happened — for spoken text, the time to its first token — so the
virtual clock can place it. Speech synthesis is not done here; the engine does it.

A reply with no text and no tool call is no step at all: the agent stayed silent (the recorded
LLM answers so after a caller's last words before hanging up), so no empty agent turn is laid out.

Knowledge-base context the production agent retrieved for a reply (``Call.knowledge``, see
:mod:`voicereplay.knowledge`) is served before that reply's first request, as a ``system``
message: in the history for good (Vapi), or in that reply's requests only (Retell); the first
step of the reply records what was served.

A reply may call tools up to :data:`MAX_TOOL_ROUNDS` times; a tool call to the snapshot's
end-call tool, or spoken text containing one of its end-call phrases, ends the call after the
text is spoken.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from voicereplay import knowledge as kb
from voicereplay.errors import SimulationError
from voicereplay.models import KnowledgeContext, ToolCall, ToolResult
from voicereplay.simulate.stages import ChatRequest, ChatResult
from voicereplay.simulate.tools import ToolServer
from voicereplay.snapshot import AgentSnapshot

__all__ = ["MAX_TOOL_ROUNDS", "Conversation", "Step", "openai_tool_call"]

MAX_TOOL_ROUNDS = 5


@dataclass
class Step:
    """One thing the agent did in reply to a caller turn, ``offset`` s after the LLM was asked."""

    kind: Literal["say", "tool_call", "tool_result"]
    offset: float
    text: str = ""
    tool_call: ToolCall | None = None
    tool_result: ToolResult | None = None
    llm_request: dict[str, Any] | None = None
    llm_ttft: float | None = None  # for "say": LLM time to this text's first token
    llm_total: float | None = None  # for "say": LLM time to the end of this reply
    ends_call: bool = False
    prompt_tokens: int | None = None  # usage of the LLM request behind this step (one step per
    completion_tokens: int | None = None  # request carries it: the text, else its first call)
    knowledge: list[KnowledgeContext] = field(default_factory=list)  # served before the reply


@dataclass
class Conversation:
    """The chat history of one replay and the settings every request shares."""

    snapshot: AgentSnapshot
    seed: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    # knowledge served for the current reply only: (its place in the history, the messages)
    _transient: tuple[int, list[dict[str, Any]]] | None = field(default=None, init=False,
                                                                 repr=False)

    def __post_init__(self) -> None:
        if self.snapshot.system_prompt:
            self.history.append({"role": "system", "content": self.snapshot.system_prompt})
        offered = [t for t in self.snapshot.tools if t.kind in ("function", "end_call")]
        self.tools = [t.openai_schema() for t in offered]
        self.end_call_tools = {t.name for t in offered if t.kind == "end_call"}
        self.phrases = [" ".join(p.lower().split())
                        for p in self.snapshot.turn_taking.end_call_phrases if p.strip()]

    @property
    def seed_used(self) -> int | None:
        """The seed every request carries: the replay's, else the snapshot's."""
        return self.seed if self.seed is not None else self.snapshot.model.seed

    def request(self) -> ChatRequest:
        """The next chat request: the whole history so far, the tools, the model settings."""
        model = self.snapshot.model
        messages = [dict(m) for m in self.history]
        if self._transient is not None:
            at, extra = self._transient
            messages[at:at] = [dict(m) for m in extra]
        return ChatRequest(messages=messages, tools=list(self.tools),
                           temperature=model.temperature, max_tokens=model.max_tokens,
                           seed=self.seed_used)

    def agent_said(self, text: str) -> None:
        self.history.append({"role": "assistant", "content": text})

    def ends_call(self, text: str) -> bool:
        """Does ``text`` contain one of the end-call phrases (case-insensitive)?"""
        lowered = " ".join(text.lower().split())
        return any(phrase in lowered for phrase in self.phrases)

    def serve(self, contexts: Sequence[KnowledgeContext]) -> None:
        """Put knowledge-base ``contexts`` before the next request (see the module docstring)."""
        transient = [kb.message(c) for c in contexts if not kb.persists(c)]
        self.history.extend(kb.message(c) for c in contexts if kb.persists(c))
        self._transient = (len(self.history), transient) if transient else None

    def reply(
        self,
        heard: str | None,
        complete: Callable[[ChatRequest], ChatResult],
        tools: ToolServer,
        *,
        tag: str = "reply",
        knowledge: Sequence[KnowledgeContext] = (),
    ) -> list[Step]:
        """The agent's reply to the caller having said ``heard`` (``None``: the agent opens).

        ``complete`` runs one chat request; ``tag`` prefixes generated tool-call ids;
        ``knowledge`` is the baseline's knowledge-base context for this reply.
        """
        if heard is not None:
            self.history.append({"role": "user", "content": heard})
        self.serve(knowledge)
        try:
            steps = self._reply(complete, tools, tag)
        finally:
            self._transient = None
        if steps and knowledge:
            steps[0].knowledge = list(knowledge)
        return steps

    def _reply(self, complete: Callable[[ChatRequest], ChatResult], tools: ToolServer,
               tag: str) -> list[Step]:
        steps: list[Step] = []
        elapsed = 0.0  # LLM and tool seconds since the LLM was first asked
        for round_index in range(MAX_TOOL_ROUNDS + 1):
            request = self.request()
            logged = {"messages": request.messages, "tools": request.tools}
            result = complete(request)
            text = result.text.strip()
            first, elapsed = elapsed + result.ttft, elapsed + result.latency
            say = Step("say", first, text=text, llm_request=logged, llm_ttft=first,
                       llm_total=elapsed, ends_call=self.ends_call(text),
                       prompt_tokens=result.prompt_tokens,
                       completion_tokens=result.completion_tokens)
            if not result.tool_calls:
                if not text:  # the agent said nothing: no turn (a caller who hung up)
                    return steps
                self.agent_said(text)
                return [*steps, say]
            if round_index == MAX_TOOL_ROUNDS:
                raise SimulationError(f"the LLM still called tools after {MAX_TOOL_ROUNDS} "
                                      "rounds of tool results")
            calls = [c if c.id else c.model_copy(update={"id": f"{tag}-{round_index}-{i}"})
                     for i, c in enumerate(result.tool_calls)]
            self.history.append({"role": "assistant", "content": text or None,
                                 "tool_calls": [openai_tool_call(c) for c in calls]})
            if text:  # said while the tools run, as a voice agent does
                steps.append(say)
            for n, call in enumerate(calls):
                ends = call.name in self.end_call_tools
                usage = not text and n == 0  # the request's usage rides on one step
                steps.append(Step("tool_call", elapsed, tool_call=call, llm_request=logged,
                                  ends_call=ends,
                                  prompt_tokens=result.prompt_tokens if usage else None,
                                  completion_tokens=result.completion_tokens if usage else None))
                if ends:
                    continue
                started = time.perf_counter()
                answer = tools.answer(call)
                elapsed += time.perf_counter() - started
                steps.append(Step("tool_result", elapsed, tool_result=answer))
                self.history.append({"role": "tool", "tool_call_id": call.id,
                                     "content": answer.result})
            if any(s.ends_call for s in steps):
                return steps
        raise AssertionError("unreachable")  # pragma: no cover


def openai_tool_call(call: ToolCall) -> dict[str, Any]:
    """A tool call as an OpenAI ``tool_calls`` entry (arguments as the JSON string sent)."""
    arguments = call.raw_arguments if call.raw_arguments is not None else json.dumps(
        call.arguments, ensure_ascii=False)
    return {"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": arguments}}
