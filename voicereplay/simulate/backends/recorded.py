"""The ``recorded`` LLM backend: the baseline call's agent replies, replayed verbatim.

With the LLM held fixed, a replay measures only what a voice or transcriber change does. Each
``complete()`` returns the next recorded step, whatever the request says:

- an agent turn → a text step;
- an agent turn directly followed by tool calls → one step with that text and those calls
  (the LLM answered both in one response; splitting them would make the engine wait for the
  caller between them);
- tool-call turns in a row → one step with all their calls (parallel tool calls).

When the steps run out, the reply is empty text with ``finish_reason="stop"``: the agent says
nothing (the baseline's caller spoke last and hung up), which is not an error. The engine calls
:meth:`RecordedLLM.reset` before every replay, so each run of a batch replays all the steps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from voicereplay.models import Call
from voicereplay.simulate.stages import LLMS, ChatDelta, ChatRequest, ChatResult, LanguageModel
from voicereplay.turns import agent_replies

__all__ = ["RecordedLLM", "recorded_steps"]

STAGE = "recorded"


class RecordedLLM(LanguageModel):
    """Returns ``steps`` in order, one per ``complete()``."""

    name = STAGE

    def __init__(self, steps: list[ChatResult]) -> None:
        self.steps = list(steps)
        self.position = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RecordedLLM({self.position}/{len(self.steps)} steps used)"

    def reset(self) -> None:
        """Start again from the first step (a new replay of the same call)."""
        with self._lock:
            self.position = 0

    @property
    def remaining(self) -> int:
        return len(self.steps) - self.position

    def _stream_impl(self, request: ChatRequest) -> Iterator[ChatDelta]:
        with self._lock:
            step = self.steps[self.position] if self.position < len(self.steps) else None
            self.position += step is not None
        if step is None:
            yield ChatDelta(finish_reason="stop")
            return
        if step.text:
            yield ChatDelta(text=step.text)
        for call in step.tool_calls:
            yield ChatDelta(tool_call=call.model_copy(deep=True))
        default = "tool_calls" if step.tool_calls else "stop"
        yield ChatDelta(finish_reason=step.finish_reason or default,
                        prompt_tokens=step.prompt_tokens,
                        completion_tokens=step.completion_tokens)


def recorded_steps(call: Call, *, skip_first_message: bool) -> list[ChatResult]:
    """The LLM's steps in ``call``, reply by reply (:func:`voicereplay.turns.agent_replies`).

    ``skip_first_message``: the engine speaks the snapshot's first message itself, so the
    opening's first agent turn (before any caller turn) is not an LLM step; a first agent turn
    after the caller spoke was the LLM's.
    """
    steps: list[ChatResult] = []
    for reply in agent_replies(call.turns):
        first_message = (reply.spoken[0] if skip_first_message and reply.after_caller is None
                         and reply.spoken else None)
        previous: str | None = None  # role of the last turn that made or extended a step
        for index in reply.indices:
            turn = call.turns[index]
            if index == first_message:
                previous = "first-message"
            elif turn.role == "agent" and turn.text.strip():
                steps.append(ChatResult(text=turn.text.strip(), finish_reason="stop"))
                previous = "agent"
            elif turn.role == "tool_call" and turn.tool_calls:
                calls = [c.model_copy(deep=True) for c in turn.tool_calls]
                if previous in ("agent", "tool_call"):
                    steps[-1].tool_calls.extend(calls)
                    steps[-1].finish_reason = "tool_calls"
                else:
                    steps.append(ChatResult(tool_calls=calls, finish_reason="tool_calls"))
                previous = "tool_call"
            elif turn.role == "tool_result":
                previous = "tool_result"
    return steps


LLMS.register(STAGE, RecordedLLM)
