"""Fake STT/LLM/TTS backends registered by name, so CLI and pipeline tests can choose them.

Like simonw/llm's mock models, they register the way a plugin would (``STT.register`` …) and
are picked by name: ``voicereplay call ID --stt fake-stt --tts fake-tts --caller-tts fake-tts
--llm-backend fake-llm`` or ``ReplayRequest(stt="fake-stt", …)``. No model is loaded.

- ``fake-stt`` hears ``caller turn N`` for the N-th non-silent audio it is given (per backend
  instance), with a fixed latency: deterministic, and honest that it does not recognise speech.
- ``fake-llm`` is a :class:`~tests.fakes.scripted_llm.ScriptedLLM` that answers every caller
  turn with ``You said: <what it heard>`` and calls ``check_status`` on the demo call's order
  question; the script can be changed through :data:`FAKE_LLM_SCRIPT`.
- ``slow-llm`` is ``fake-llm`` taking real time (0.5 s to the first token, 0.5 s per reply),
  so a worker can be stopped or killed in the middle of a replay.
- ``fake-tts`` speaks a 220 Hz tone, 60 ms per character, at 16 kHz.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from tests.fakes.scripted_llm import Reply, ScriptedLLM, tool_call
from voicereplay.simulate.stages import (
    LLMS,
    STT,
    TTS,
    Audio,
    ChatRequest,
    SpeechToText,
    Synthesis,
    TextToSpeech,
    Transcription,
)

__all__ = ["FAKE_LLM_SCRIPT", "FakeSTT", "ToneTTS", "register"]

FAKE_LLM_SCRIPT: dict[str | int, Reply | str] = {
    "caller turn 3": Reply(tool_calls=[tool_call("check_status", order_id="4417")]),
}


class FakeSTT(SpeechToText):
    name = "fake-stt"

    def __init__(self, latency: float = 0.1, **_: Any) -> None:
        self.latency = latency
        self.heard = 0

    def _transcribe_impl(self, audio: Audio, language: str | None) -> Transcription:
        if audio.samples.size == 0 or float(np.abs(audio.samples).max()) < 1e-3:
            return Transcription("", language=language, latency=self.latency)
        self.heard += 1
        return Transcription(f"caller turn {self.heard}", language=language,
                             latency=self.latency)


class ToneTTS(TextToSpeech):
    name = "fake-tts"

    def __init__(self, hz: float = 220.0, **_: Any) -> None:
        self.hz = hz

    def synthesize(self, text: str, *, voice: str | None = None,
                   speed: float | None = None) -> Synthesis:
        count = round(len(text) * 0.06 * 16000)
        tone = 0.3 * np.sin(2 * np.pi * self.hz * np.arange(count) / 16000)
        return Synthesis(Audio(tone.astype(np.float32), 16000), ttfa=0.05, latency=0.1)

    def _synthesize_impl(self, text: str, voice: str | None,
                         speed: float | None) -> Iterator[Audio]:
        yield self.synthesize(text, voice=voice, speed=speed).audio


class FakeLLM(ScriptedLLM):
    """The script for caller turns; after a tool result, it reports the result."""

    name = "fake-llm"

    def reply_for(self, request: ChatRequest, index: int) -> Reply:
        last = request.messages[-1] if request.messages else {}
        if last.get("role") == "tool":
            return Reply(text=f"Here is what I found: {str(last.get('content'))[:40]}")
        return super().reply_for(request, index)


def _fake_llm(**_: Any) -> ScriptedLLM:
    return FakeLLM(dict(FAKE_LLM_SCRIPT), default="Okay, let me check that.", ttft=0.2,
                   duration=0.3)


def _slow_llm(**_: Any) -> ScriptedLLM:
    return FakeLLM(dict(FAKE_LLM_SCRIPT), default="Okay, let me check that.", ttft=0.5,
                   duration=0.5, clock="real")


def register() -> None:
    STT.register("fake-stt", FakeSTT)
    TTS.register("fake-tts", ToneTTS)
    LLMS.register("fake-llm", _fake_llm)
    LLMS.register("slow-llm", _slow_llm)
