"""A scripted LLM for tests: replies keyed by what the caller said, with latency and failures.

    llm = ScriptedLLM({
        "order number": "Could you give me the order number?",        # substring of the last
        "4417": Reply(tool_calls=[tool_call("check_status", order_id="4417")]),  # user message
        0: "Thanks for calling Acme!",                                  # or the call index
    }, default="Sorry, could you repeat that?", ttft=0.3, duration=0.8, clock="fake")
    llm.fail_next(2)             # the next two attempts raise a retryable StageError
    result = llm.complete(request)

Matching: an ``int`` key matches the n-th ``complete()`` (0-based, retries not counted); a
``str`` key matches when it occurs (case-insensitive) in the latest user message; the first
match in insertion order wins, else ``default``.

Latency: ``clock="real"`` sleeps ``ttft`` before the first piece and spreads ``duration`` over
the rest (through ``sleep``, injectable); ``clock="fake"`` sleeps nothing and reports exactly
``ttft`` / ``ttft + duration`` as the result's latencies, for deterministic timelines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from voicereplay.errors import StageError
from voicereplay.models import ToolCall
from voicereplay.simulate.stages import ChatDelta, ChatRequest, ChatResult, LanguageModel

__all__ = ["Reply", "ScriptedLLM", "tool_call"]


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    ttft: float | None = None  # seconds; None: the LLM's default
    duration: float | None = None  # seconds after the first piece; None: the LLM's default


def tool_call(name: str, id: str | None = None, **arguments: Any) -> ToolCall:
    return ToolCall(id=id or f"call_{name}", name=name, arguments=arguments)


class ScriptedLLM(LanguageModel):
    name = "scripted"

    def __init__(
        self,
        replies: Mapping[str | int, Reply | str] | None = None,
        *,
        default: Reply | str = "",
        ttft: float = 0.0,
        duration: float = 0.0,
        clock: Literal["real", "fake"] = "fake",
        sleep: Callable[[float], None] = time.sleep,
        failures: int = 0,
        error: Callable[[], Exception] | None = None,
    ) -> None:
        self.replies = {key: _reply(value) for key, value in (replies or {}).items()}
        self.default = _reply(default)
        self.ttft = ttft
        self.duration = duration
        self.clock = clock
        self.sleep = sleep
        self.backoff = 0.0  # retries in tests need no wait
        self.requests: list[ChatRequest] = []  # every complete(), in order
        self.attempts = 0  # every _stream_impl call, retries included
        self._failures = failures
        self._error = error or (lambda: StageError("scripted: transient failure",
                                                   stage="scripted", retryable=True))

    def fail_next(self, times: int, error: Callable[[], Exception] | None = None) -> None:
        """Make the next ``times`` attempts raise ``error()`` (a retryable StageError)."""
        self._failures = times
        if error is not None:
            self._error = error

    def reply_for(self, request: ChatRequest, index: int) -> Reply:
        said = _last_user_text(request).lower()
        for key, reply in self.replies.items():
            if (isinstance(key, int) and key == index) or (
                    isinstance(key, str) and key.lower() in said):
                return reply
        return self.default

    def complete(self, request: ChatRequest) -> ChatResult:
        index = len(self.requests)
        self.requests.append(request)
        result = super().complete(request)
        if self.clock == "fake":
            reply = self.reply_for(request, index)
            result.ttft = self.ttft if reply.ttft is None else reply.ttft
            result.latency = result.ttft + (self.duration if reply.duration is None
                                             else reply.duration)
        return result

    def _stream_impl(self, request: ChatRequest) -> Iterator[ChatDelta]:
        self.attempts += 1
        if self._failures > 0:
            self._failures -= 1
            raise self._error()
        reply = self.reply_for(request, len(self.requests) - 1)
        words = reply.text.split(" ") if reply.text else []
        pieces = [w + " " for w in words[:-1]] + words[-1:]
        ttft = self.ttft if reply.ttft is None else reply.ttft
        duration = self.duration if reply.duration is None else reply.duration
        wait = self.sleep if self.clock == "real" else (lambda _s: None)
        wait(ttft)
        steps = max(1, len(pieces) + len(reply.tool_calls) - 1)
        for number, piece in enumerate(pieces):
            if number:
                wait(duration / steps)
            yield ChatDelta(text=piece)
        for call in reply.tool_calls:
            if pieces:
                wait(duration / steps)
            yield ChatDelta(tool_call=call.model_copy(deep=True))
        yield ChatDelta(finish_reason="tool_calls" if reply.tool_calls else "stop",
                        prompt_tokens=sum(len(str(m.get("content") or "").split())
                                          for m in request.messages),
                        completion_tokens=len(pieces))


def _reply(value: Reply | str) -> Reply:
    return Reply(text=value) if isinstance(value, str) else value


def _last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""
