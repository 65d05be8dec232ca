"""The three stages of a voice simulation — speech-to-text, LLM, text-to-speech — as small
abstract classes.

Each public method (``transcribe``, ``complete``, ``synthesize``) owns timing, retries and error
wrapping, and calls an abstract ``_impl`` that a backend fills in; backends live in their own
modules and register by name in :data:`STT`, :data:`LLMS`, :data:`TTS`. A backend raises
:class:`~voicereplay.errors.StageError` (``retryable=True`` for transient failures such as a 429
or a timeout); anything else it raises is wrapped into a ``StageError`` naming the backend.

``Audio`` is :class:`voicereplay.audio.Audio`, re-exported here for the backends.

Latencies are seconds, measured with ``time.perf_counter`` around the backend call, so they are
what this machine took; the replay's virtual clock places them on the call's timeline.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

from voicereplay.audio import Audio
from voicereplay.errors import StageError, VoiceReplayError
from voicereplay.models import ToolCall, Word
from voicereplay.registry import Registry
from voicereplay.retry import RetryPolicy

__all__ = [
    "LLMS",
    "STT",
    "TTS",
    "Audio",
    "ChatDelta",
    "ChatRequest",
    "ChatResult",
    "LanguageModel",
    "SpeechToText",
    "Synthesis",
    "TextToSpeech",
    "Transcription",
]

T = TypeVar("T")


@dataclass
class Transcription:
    text: str
    words: list[Word] = field(default_factory=list)  # times in seconds from the audio's start
    language: str | None = None
    latency: float = 0.0  # seconds this machine took


@dataclass
class ChatRequest:
    """One Chat Completions request, in OpenAI terms."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None  # e.g. {"type": "json_object"}


@dataclass
class ChatResult:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft: float = 0.0  # seconds to the first token (or tool-call delta)
    latency: float = 0.0  # seconds to the whole reply


@dataclass
class ChatDelta:
    """A piece of a streamed reply: text, and/or a finished tool call, and/or usage."""

    text: str = ""
    tool_call: ToolCall | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class Synthesis:
    audio: Audio
    ttfa: float = 0.0  # seconds to the first audio chunk
    latency: float = 0.0  # seconds to all of it


class _Stage:
    """What the three stages share: a name, retries, and error wrapping."""

    name: ClassVar[str] = "stage"
    max_retries: int = 2
    backoff: float = 0.5

    def load(self) -> None:
        """Load models ahead of use, so loading is not timed as a turn's latency (optional)."""

    def _run(self, what: str, call: Callable[[], T],
             sleep: Callable[[float], None] | None = None) -> T:
        policy = RetryPolicy(attempts=self.max_retries + 1, backoff=self.backoff,
                             sleep=sleep or time.sleep)
        for attempt in range(policy.attempts):
            try:
                return call()
            except StageError as exc:
                if not exc.retryable or policy.gives_up(attempt):
                    raise
                policy.sleep(policy.delay(attempt, exc.retry_after))
            except VoiceReplayError:
                raise
            except Exception as exc:  # a backend's own failure: name it, keep the cause
                raise StageError(f"{self.name}: {what} failed: {type(exc).__name__}: {exc}",
                                 stage=self.name) from exc
        raise AssertionError("unreachable")  # pragma: no cover


class SpeechToText(_Stage):
    def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcription:
        def run() -> Transcription:
            started = time.perf_counter()
            result = self._transcribe_impl(audio, language)
            result.latency = time.perf_counter() - started
            return result

        return self._run(f"transcribing {audio.duration:.1f} s of audio", run)

    @abstractmethod
    def _transcribe_impl(self, audio: Audio, language: str | None) -> Transcription: ...


class LanguageModel(_Stage):
    @property
    def model_name(self) -> str | None:
        """The model this backend serves (a name, or a model file's stem), when it knows."""
        path = getattr(self, "model_path", None)
        if path is not None:
            return str(getattr(path, "stem", path))
        model = getattr(self, "model", None)
        return model if isinstance(model, str) and model else None

    def reset(self) -> None:
        """Forget what the last replay used up; the engine calls it before every replay.

        Most backends keep nothing between requests; the ``recorded`` one rewinds its replies,
        so every run of ``--runs N`` replays the whole baseline.
        """

    def complete(self, request: ChatRequest) -> ChatResult:
        def run() -> ChatResult:
            started = time.perf_counter()
            result = ChatResult()
            first: float | None = None
            text: list[str] = []
            for delta in self._stream_impl(request):
                if first is None and (delta.text or delta.tool_call):
                    first = time.perf_counter() - started
                text.append(delta.text)
                if delta.tool_call is not None:
                    result.tool_calls.append(delta.tool_call)
                result.finish_reason = delta.finish_reason or result.finish_reason
                result.prompt_tokens = delta.prompt_tokens or result.prompt_tokens
                result.completion_tokens = delta.completion_tokens or result.completion_tokens
            result.latency = time.perf_counter() - started
            result.ttft = first if first is not None else result.latency
            result.text = "".join(text).strip()
            return result

        return self._run(f"chat completion with {len(request.messages)} messages", run)

    @abstractmethod
    def _stream_impl(self, request: ChatRequest) -> Iterator[ChatDelta]: ...


class TextToSpeech(_Stage):
    def synthesize(self, text: str, *, voice: str | None = None,
                   speed: float | None = None) -> Synthesis:
        def run() -> Synthesis:
            started = time.perf_counter()
            first: float | None = None
            chunks: list[np.ndarray] = []
            rate = 0
            for chunk in self._synthesize_impl(text, voice, speed):
                if first is None:
                    first = time.perf_counter() - started
                chunks.append(chunk.samples)
                rate = chunk.rate
            latency = time.perf_counter() - started
            samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
            return Synthesis(Audio(samples.astype(np.float32), rate or 16000),
                             ttfa=first if first is not None else latency, latency=latency)

        return self._run(f"synthesizing {len(text)} characters", run)

    @abstractmethod
    def _synthesize_impl(self, text: str, voice: str | None,
                         speed: float | None) -> Iterator[Audio]: ...


STT: Registry[SpeechToText] = Registry(
    "speech-to-text backend", builtins=("voicereplay.simulate.backends",))
LLMS: Registry[LanguageModel] = Registry(
    "LLM backend", builtins=("voicereplay.simulate.backends",))
TTS: Registry[TextToSpeech] = Registry(
    "text-to-speech backend", builtins=("voicereplay.simulate.backends",))
