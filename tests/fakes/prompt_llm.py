"""Scripted LLMs for scenario tests, registered by name like the other fakes.

- ``prompt-llm`` behaves like the demo's production agent when its system prompt is the
  production prompt (it says to "resolve the issue right away with issue_refund"): after the
  caller's third turn (the name on the order) it calls ``issue_refund``, as the real call did
  in agent turn 4 (counted from the request's user messages, so every run of ``--runs N`` is
  alike, whatever ``fake-stt`` heard). With any other prompt (the fixed one) it calls
  ``check_status`` there instead.
- ``flaky-llm`` calls ``issue_refund`` in the runs whose index is in :data:`FLAKY_REFUNDS`
  (counted by the engine's ``reset()`` before each run, per backend instance) and
  ``check_status`` in the others: a scenario whose checks pass in some runs only.
- ``broken-llm`` fails every request with a permanent StageError: a scenario that cannot be
  replayed.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.backends import FakeLLM
from tests.fakes.scripted_llm import Reply, tool_call
from voicereplay.errors import StageError
from voicereplay.simulate.stages import LLMS, ChatRequest

__all__ = ["FLAKY_REFUNDS", "register"]

PRODUCTION_MARK = "resolve the issue right away with issue_refund"
REFUND = Reply(tool_calls=[tool_call("issue_refund", order_id="4417",
                                     reason="customer inquiry")])
STATUS = Reply(tool_calls=[tool_call("check_status", order_id="4417")])
FLAKY_REFUNDS: set[int] = {1}  # run indices (0-based) that call issue_refund


def _third_caller_turn(request: ChatRequest) -> bool:
    messages = request.messages
    return bool(messages) and messages[-1].get("role") == "user" and sum(
        m.get("role") == "user" for m in messages) == 3


class PromptLLM(FakeLLM):
    name = "prompt-llm"

    def reply_for(self, request: ChatRequest, index: int) -> Reply:
        if _third_caller_turn(request):
            system = next((str(m.get("content")) for m in request.messages
                           if m.get("role") == "system"), "")
            return REFUND if PRODUCTION_MARK in system else STATUS
        return super().reply_for(request, index)


class FlakyLLM(FakeLLM):
    name = "flaky-llm"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run = -1

    def reset(self) -> None:
        self.run += 1

    def reply_for(self, request: ChatRequest, index: int) -> Reply:
        if _third_caller_turn(request):
            return REFUND if self.run in FLAKY_REFUNDS else STATUS
        return super().reply_for(request, index)


def register() -> None:
    LLMS.register("prompt-llm", lambda **_: PromptLLM({}, default="Okay, let me check that.",
                                                      ttft=0.2, duration=0.3))
    LLMS.register("broken-llm", lambda **_: FakeLLM(
        {}, failures=10**6, error=lambda: StageError("the endpoint answered HTTP 400",
                                                       stage="broken-llm")))
    LLMS.register("flaky-llm", lambda **_: FlakyLLM({}, default="Okay, let me check that.",
                                                    ttft=0.2, duration=0.3))
