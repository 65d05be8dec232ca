"""The scripted replay engine over the real demo call, with fake stages.

The fakes return fixed latencies so the virtual clock can be checked exactly: the fake STT
answers with the baseline text of the turn whose padded duration matches the audio it got, the
fake LLM follows a small script (a tool call on "Jordan Miles", goodbye at the end), and the
fake TTS returns a tone of ``len(text) * 0.06`` s at 16 kHz.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import serve
from voicereplay.audio import detect_layout, load_channels, pick_channel, voice_activity, write_wav
from voicereplay.errors import RecordingError, SimulationError, StageError, StoreError
from voicereplay.models import Call, RecordingKind, ToolCall, Turn
from voicereplay.providers.vapi_payload import build_snapshot, parse_call
from voicereplay.simulate.caller import PAD, caller_segments, find_caller_track
from voicereplay.simulate.replay import ReplayEngine
from voicereplay.simulate.stages import (
    Audio,
    ChatDelta,
    ChatRequest,
    ChatResult,
    LanguageModel,
    SpeechToText,
    Synthesis,
    TextToSpeech,
    Transcription,
)
from voicereplay.simulate.timeline import Timeline, write_tracks
from voicereplay.simulate.tools import ToolServer
from voicereplay.snapshot import AgentSnapshot

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
STT_LATENCY, TTFT, LLM_LATENCY, TTFA, TTS_LATENCY = 0.15, 0.2, 0.4, 0.05, 0.1
RECORDED_REFUND = {"order_id": "4417", "reason": "customer inquiry"}


# -- fake stages ------------------------------------------------------------------------------
class FakeSTT(SpeechToText):
    """Hears the baseline text of the user turn whose (padded) duration matches the audio."""

    name = "fake-stt"

    def __init__(self, call: Call) -> None:
        self.table: list[tuple[float, str]] = []
        for turn in call.turns_by("user"):
            self.table.append((len(turn.text) * 0.06, turn.text))  # TTS of the transcript
            if turn.duration is not None:
                self.table.append((turn.duration + 2 * PAD, turn.text))  # cut with padding
        self.threads: list[str] = []

    def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcription:
        self.threads.append(threading.current_thread().name)
        gap, text = min((abs(d - audio.duration), t) for d, t in self.table)
        return Transcription(text if gap < 0.02 else "", language=language, latency=STT_LATENCY)

    def _transcribe_impl(self, audio: Audio, language: str | None) -> Transcription:
        raise AssertionError("not used")


class ScriptedLLM(LanguageModel):
    """On "Jordan Miles" calls ``tool``; after a tool result reports it; says goodbye to one."""

    name = "scripted-llm"

    def __init__(self, tool: tuple[str, dict[str, Any]] | None = ("check_status",
                                                                   {"order_id": "4417"}),
                 goodbye_on: str = "goodbye", end_tool_on: str | None = None) -> None:
        self.tool, self.goodbye_on, self.end_tool_on = tool, goodbye_on, end_tool_on
        self.requests: list[ChatRequest] = []

    def complete(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        last = request.messages[-1]
        if last["role"] == "tool":
            return self._say(f"Done: {last['content'][:30]}.")
        heard = last["content"] if last["role"] == "user" else ""
        if self.end_tool_on and self.end_tool_on in heard:
            return self._call("endCall", {})
        if "Jordan Miles" in heard and self.tool:
            return self._call(*self.tool)
        if self.goodbye_on in heard.lower():
            return self._say("Thanks for calling. Goodbye.")
        return self._say("Okay, got it." if heard else "Hello from the model.")

    def _say(self, text: str) -> ChatResult:
        return ChatResult(text=text, ttft=TTFT, latency=LLM_LATENCY)

    def _call(self, name: str, arguments: dict[str, Any]) -> ChatResult:
        return ChatResult(tool_calls=[ToolCall(id=f"call_{len(self.requests)}", name=name,
                                               arguments=arguments)],
                          ttft=TTFT, latency=LLM_LATENCY)

    def _stream_impl(self, request: ChatRequest) -> Iterator[ChatDelta]:
        raise AssertionError("not used")


class BrokenLLM(LanguageModel):
    """A backend that crashes on the caller's third turn (through the real error wrapping)."""

    name = "broken-llm"

    def _stream_impl(self, request: ChatRequest) -> Iterator[ChatDelta]:
        if "Jordan" in request.messages[-1].get("content", ""):
            raise RuntimeError("model fell over")
        yield ChatDelta(text="Okay.")


class ToneTTS(TextToSpeech):
    name = "tone-tts"

    def __init__(self, hz: float = 220.0) -> None:
        self.hz = hz

    def synthesize(self, text: str, *, voice: str | None = None,
                   speed: float | None = None) -> Synthesis:
        count = round(len(text) * 0.06 * 16000)
        tone = 0.3 * np.sin(2 * np.pi * self.hz * np.arange(count) / 16000)
        return Synthesis(Audio(tone.astype(np.float32), 16000), ttfa=TTFA, latency=TTS_LATENCY)

    def _synthesize_impl(self, text: str, voice: str | None,
                         speed: float | None) -> Iterator[Audio]:
        raise AssertionError("not used")


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo() -> tuple[Call, AgentSnapshot]:
    call = parse_call(json.loads((DEMO / "demo-refund.json").read_text()))
    assistant = json.loads((DEMO / "demo-refund.assistant.json").read_text())
    return call, build_snapshot(call, assistant)


@pytest.fixture(scope="module")
def demo_audio() -> dict[RecordingKind, list[Audio]]:
    return {"stereo": load_channels(DEMO / "demo-refund.stereo.wav"),
            "customer": load_channels(DEMO / "demo-refund.customer.wav")}


RECORDINGS = {kind: DEMO / f"demo-refund.{kind}.wav"
              for kind in ("stereo", "customer", "agent", "mixed")}


def replay(call: Call, snapshot: AgentSnapshot, out: Path, *, llm: LanguageModel | None = None,
           recordings: dict[str, Path] | None = None, mocks: dict[str, Any] | None = None,
           tts_caller: TextToSpeech | None = None, progress: list[str] | None = None) -> Any:
    engine = ReplayEngine(FakeSTT(call), llm or ScriptedLLM(), ToneTTS(), tts_caller)
    return engine.run(call, snapshot, RECORDINGS if recordings is None else recordings,
                      seed=7, tools=ToolServer(call, mocks=mocks), out_dir=out,
                      on_progress=None if progress is None else progress.append)


def rms(audio: Audio, start: float | None, end: float | None) -> float:
    part = audio.samples[int((start or 0) * audio.rate):int((end or 0) * audio.rate)]
    return float(np.sqrt(np.mean(part.astype(np.float64) ** 2))) if part.size else 0.0


# -- the scripted replay ----------------------------------------------------------------------
def test_scripted_replay_of_the_demo_call(demo: tuple[Call, AgentSnapshot],
                                          tmp_path: Path) -> None:
    call, snapshot = demo
    llm = ScriptedLLM()
    stt = FakeSTT(call)
    engine = ReplayEngine(stt, llm, ToneTTS())
    result = engine.run(call, snapshot, RECORDINGS, seed=7, tools=ToolServer(call),
                        out_dir=tmp_path / "out")

    users = [t for t in result.turns if t.role == "user"]
    baseline_users = [i for i, t in enumerate(call.turns) if t.role == "user"]
    assert [t.baseline_turn for t in users] == baseline_users
    assert {t.origin for t in users} == {"original-audio"}
    assert [t.heard for t in users] == [call.turns[i].text for i in baseline_users]
    assert all(name.startswith("replay-stt") for name in stt.threads)  # beside the LLM

    opening = result.turns[0]
    assert (opening.role, opening.origin, opening.text) == (
        "agent", "first-message", snapshot.first_message)
    assert opening.baseline_turn == 1 and opening.start == pytest.approx(0.904)

    # check_status is not in the recording: an error result the agent sees
    tool_call = next(t for t in result.turns if t.role == "tool_call")
    tool_result = next(t for t in result.turns if t.role == "tool_result")
    assert tool_call.tool_calls[0].name == "check_status" and tool_call.baseline_turn == 7
    assert tool_result.tool_result is not None and tool_result.tool_result.source == "error"
    assert "no recorded result" in tool_result.tool_result.result
    after_tool = llm.requests[[r.messages[-1]["role"] for r in llm.requests].index("tool")]
    assert after_tool.messages[-2]["tool_calls"][0]["function"] == {
        "name": "check_status", "arguments": '{"order_id": "4417"}'}
    assert after_tool.messages[-1]["tool_call_id"] == tool_call.tool_calls[0].id

    # every reply: response = endpointing + stt + ttft (+ tool time) + ttfa, placed exactly so
    agents = [t for t in result.turns if t.role == "agent"]
    assert len(agents) == 6
    for turn in agents[1:]:
        timings = turn.timings
        assert timings is not None and timings.response is not None
        assert timings.stt == STT_LATENCY and timings.tts_ttfa == TTFA
        assert timings.llm_ttft is not None
        assert timings.response == pytest.approx(0.3 + STT_LATENCY + timings.llm_ttft + TTFA)
        heard = [u for u in users if (u.end or 0) <= (turn.start or 0)][-1]
        assert (turn.start or 0) - (heard.end or 0) == pytest.approx(timings.response)
        assert turn.llm_request is not None and turn.llm_request["messages"][0]["role"] == "system"
        names = [t["function"]["name"] for t in turn.llm_request["tools"]]
        assert names == ["check_status", "issue_refund", "endCall"]
    plain = agents[1].timings
    assert plain is not None and plain.llm_ttft == TTFT
    reported = next(t for t in agents if t.text.startswith("Done"))
    assert reported.timings is not None
    assert (reported.timings.llm_ttft or 0) >= LLM_LATENCY + TTFT
    assert all(r.seed == 7 and r.temperature == 0.3 and r.max_tokens == 250 for r in llm.requests)

    assert result.ended_reason == "agent-ended-call"  # "Goodbye." is an end-call phrase
    assert result.status == "completed" and result.mode == "scripted"
    assert result.backends.named() == {"stt": "fake-stt", "llm": "scripted-llm",
                                      "tts": "tone-tts"}
    assert len(result.id) == 32

    # the audio: four files of one length == duration, stereo in the baseline's layout
    files = {r.kind: Path(r.path or "") for r in result.recordings}
    assert sorted(files) == ["agent", "customer", "mixed", "stereo"]
    for recording in result.recordings:
        data = Path(recording.path or "").read_bytes()
        assert recording.size == len(data)
        assert recording.sha256 == hashlib.sha256(data).hexdigest()
    infos = {k: soundfile.info(str(p)) for k, p in files.items()}
    assert {i.samplerate for i in infos.values()} == {8000}
    assert {i.frames for i in infos.values()} == {infos["stereo"].frames}
    assert infos["stereo"].channels == 2
    assert infos["stereo"].duration == pytest.approx(result.duration, abs=0.05)
    stereo = load_channels(files["stereo"])
    assert np.allclose(stereo[0].samples, load_channels(files["customer"])[0].samples)
    assert np.allclose(stereo[1].samples, load_channels(files["agent"])[0].samples)
    for turn in users:
        assert rms(stereo[1], turn.start, turn.end) == 0.0  # the agent is silent
        assert rms(stereo[0], turn.start, turn.end) > 0.01
    for turn in agents:
        assert rms(stereo[0], (turn.start or 0) + PAD + 0.01, turn.end) == 0.0
        assert rms(stereo[1], turn.start, turn.end) > 0.1


def test_caller_segments_are_the_baseline_turns(
        demo: tuple[Call, AgentSnapshot], demo_audio: dict[RecordingKind, list[Audio]]) -> None:
    call, _ = demo
    segments = caller_segments(call, demo_audio, None)
    users = [(i, t) for i, t in enumerate(call.turns) if t.role == "user"]
    assert [s.turn_index for s in segments] == [i for i, _ in users]
    for segment, (_, turn) in zip(segments, users, strict=True):
        assert segment.origin == "original-audio" and segment.note is None
        assert turn.duration is not None
        assert segment.audio.duration == pytest.approx(turn.duration, abs=0.25)
        assert segment.speech == pytest.approx(turn.duration, abs=0.01)
    assert segments[0].gap == pytest.approx(5.777 - 4.904)


def test_a_mocked_tool_is_served_from_the_mock(demo: tuple[Call, AgentSnapshot],
                                               tmp_path: Path) -> None:
    call, snapshot = demo
    result = replay(call, snapshot, tmp_path, mocks={"check_status": {"status": "shipped"}})
    answer = next(t.tool_result for t in result.turns if t.role == "tool_result")
    assert answer is not None and answer.source == "mock"
    assert json.loads(answer.result) == {"status": "shipped"}


def test_the_recorded_refund_is_served_not_repeated(demo: tuple[Call, AgentSnapshot],
                                                    tmp_path: Path) -> None:
    call, snapshot = demo
    llm = ScriptedLLM(tool=("issue_refund", {"reason": "customer inquiry", "order_id": "4417"}))
    result = replay(call, snapshot, tmp_path, llm=llm)
    answer = next(t.tool_result for t in result.turns if t.role == "tool_result")
    assert answer is not None and answer.source == "recorded"
    assert json.loads(answer.result) == {"status": "refunded", "amount": 59.99}


def test_an_end_call_phrase_ends_the_call_early(demo: tuple[Call, AgentSnapshot],
                                                tmp_path: Path) -> None:
    call, snapshot = demo
    result = replay(call, snapshot, tmp_path, llm=ScriptedLLM(goodbye_on="4417"))
    assert [t.role for t in result.turns] == ["agent", "user", "agent", "user", "agent"]
    assert result.turns[-1].text.endswith("Goodbye.")
    assert result.ended_reason == "agent-ended-call"
    assert soundfile.info(str(tmp_path / "stereo.wav")).duration == pytest.approx(
        result.turns[-1].end + 0.25, abs=0.01)


def test_the_end_call_tool_ends_the_call(demo: tuple[Call, AgentSnapshot],
                                         tmp_path: Path) -> None:
    call, snapshot = demo
    result = replay(call, snapshot, tmp_path, llm=ScriptedLLM(end_tool_on="4417"))
    assert [t.role for t in result.turns][-2:] == ["user", "tool_call"]
    assert result.turns[-1].tool_calls[0].name == "endCall"
    assert result.ended_reason == "agent-ended-call"


def test_the_call_ends_when_the_caller_is_done(demo: tuple[Call, AgentSnapshot],
                                               tmp_path: Path) -> None:
    call, snapshot = demo
    result = replay(call, snapshot, tmp_path, llm=ScriptedLLM(goodbye_on="never"))
    assert result.ended_reason == "caller-done"
    assert [t.role for t in result.turns][-2:] == ["user", "agent"]


def test_max_duration_stops_the_call(demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo
    short = snapshot.model_copy(update={
        "turn_taking": snapshot.turn_taking.model_copy(update={"max_duration": 12.0})})
    result = replay(call, short, tmp_path, llm=ScriptedLLM())
    assert result.ended_reason == "max-duration"
    assert result.duration == pytest.approx(12.0)
    assert soundfile.info(str(tmp_path / "mixed.wav")).duration == pytest.approx(12.0)
    assert all((t.start or 0) < 12.0 for t in result.turns)


def test_user_speaks_first_and_agent_generates_first(demo: tuple[Call, AgentSnapshot],
                                                     tmp_path: Path) -> None:
    call, snapshot = demo
    waits = snapshot.model_copy(update={"first_message_mode": "user-speaks-first"})
    result = replay(call, waits, tmp_path / "a")
    assert result.turns[0].role == "user"
    generates = snapshot.model_copy(update={"first_message_mode": "agent-generates-first"})
    llm = ScriptedLLM()
    result = replay(call, generates, tmp_path / "b", llm=llm)
    assert (result.turns[0].origin, result.turns[0].text) == ("llm", "Hello from the model.")
    assert [m["role"] for m in llm.requests[0].messages] == ["system"]
    assert [m["role"] for m in llm.requests[1].messages] == ["system", "assistant", "user"]


# -- caller channel detection -----------------------------------------------------------------
def test_the_caller_channel_is_detected_not_assumed(
        demo: tuple[Call, AgentSnapshot], demo_audio: dict[RecordingKind, list[Audio]]) -> None:
    call, _ = demo
    stereo = demo_audio["stereo"]
    pick = pick_channel(stereo, call, "user")
    assert pick.channel == 0 and pick.scores[0].score("user") > 0.5
    assert detect_layout(call, {"stereo": stereo}).caller == 0
    swapped: dict[RecordingKind, list[Audio]] = {"stereo": stereo[::-1]}
    assert pick_channel(swapped["stereo"], call, "user").channel == 1
    layout = detect_layout(call, swapped)
    assert (layout.caller, layout.agent, layout.detected) == (1, 0, True)
    track, _ = find_caller_track(call, swapped)
    assert track is not None and (track.kind, track.channel) == ("stereo", 1)


def test_retell_multichannel_puts_the_caller_on_ch1() -> None:
    from voicereplay.providers.retell_payload import parse_call as parse_retell

    folder = DEMO.parent / "retell"
    call = parse_retell(json.loads((folder / "retell-support.json").read_text()))
    stereo = load_channels(folder / "retell-support.stereo.wav")
    layout = detect_layout(call, {"stereo": stereo})
    assert (layout.caller, layout.agent) == (1, 0)
    segments = caller_segments(call, {"stereo": stereo}, None)
    assert [s.turn_index for s in segments] == [i for i, t in enumerate(call.turns)
                                                if t.role == "user"]


def test_a_swapped_stereo_replays_in_its_own_layout(
        demo: tuple[Call, AgentSnapshot], demo_audio: dict[RecordingKind, list[Audio]],
        tmp_path: Path) -> None:
    call, snapshot = demo
    swapped = tmp_path / "swapped.wav"
    write_wav(swapped, demo_audio["stereo"][::-1])
    result = replay(call, snapshot, tmp_path / "out", recordings={"stereo": swapped})
    assert {t.origin for t in result.turns if t.role == "user"} == {"original-audio"}
    stereo = load_channels(tmp_path / "out" / "stereo.wav")
    first_user = next(t for t in result.turns if t.role == "user")
    assert rms(stereo[1], first_user.start, first_user.end) > 0.01  # the caller on ch1
    assert rms(stereo[0], first_user.start, first_user.end) == 0.0


def test_a_silent_recording_falls_back_to_tts(
        demo: tuple[Call, AgentSnapshot], demo_audio: dict[RecordingKind, list[Audio]],
        tmp_path: Path) -> None:
    call, snapshot = demo
    silent = [Audio(np.zeros_like(c.samples), c.rate) for c in demo_audio["stereo"]]
    assert pick_channel(silent, call, "user").channel is None
    assert find_caller_track(call, {"stereo": silent})[0] is None
    segments = caller_segments(call, {"stereo": silent, "customer": silent[:1]}, ToneTTS(440))
    assert {s.origin for s in segments} == {"tts-of-transcript"}
    assert segments[0].note is not None and "silent" in segments[0].note
    with pytest.raises(SimulationError, match="no caller text-to-speech"):
        caller_segments(call, {"stereo": silent}, None)

    path = tmp_path / "silent.wav"
    write_wav(path, silent)
    progress: list[str] = []
    result = replay(call, snapshot, tmp_path / "out", recordings={"stereo": path},
                    tts_caller=ToneTTS(440), progress=progress)
    users = [t for t in result.turns if t.role == "user"]
    assert {t.origin for t in users} == {"tts-of-transcript"}
    assert [t.heard for t in users] == [t.text for t in call.turns_by("user")]
    assert any("silent" in line for line in progress)


def test_a_silent_customer_track_gives_way_to_the_stereo(
        demo: tuple[Call, AgentSnapshot], demo_audio: dict[RecordingKind, list[Audio]]) -> None:
    call, _ = demo
    silent = Audio(np.zeros_like(demo_audio["customer"][0].samples), 8000)
    track, notes = find_caller_track(call, {"customer": [silent], **{
        "stereo": demo_audio["stereo"]}})
    assert track is not None and (track.kind, track.channel) == ("stereo", 0)
    assert notes == ["the customer recording is silent"]


def test_an_unreadable_recording_is_a_recording_error(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    with pytest.raises(RecordingError, match="broken.wav"):
        replay(call, snapshot, tmp_path / "out", recordings={"customer": broken})
    assert not (tmp_path / "out").exists()


def test_a_turn_heard_as_nothing_gets_no_reply(demo: tuple[Call, AgentSnapshot],
                                               tmp_path: Path) -> None:
    call, snapshot = demo

    class DeafAtFirst(FakeSTT):
        def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcription:
            heard = super().transcribe(audio, language=language)
            return Transcription("", latency=heard.latency) if len(self.threads) == 1 else heard

    llm = ScriptedLLM()
    engine = ReplayEngine(DeafAtFirst(call), llm, ToneTTS())
    result = engine.run(call, snapshot, RECORDINGS, tools=ToolServer(call), out_dir=tmp_path)
    assert [t.role for t in result.turns[:4]] == ["agent", "user", "user", "agent"]
    assert result.turns[1].heard == ""
    assert [m["content"] for m in llm.requests[0].messages if m["role"] == "user"] == [
        "Sure, it's 4417."]


def test_an_llm_that_never_stops_calling_tools_fails_its_turn(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo

    class Looping(ScriptedLLM):
        def complete(self, request: ChatRequest) -> ChatResult:
            self.requests.append(request)
            return self._call("check_status", {"order_id": "1"})

    llm = Looping()
    with pytest.raises(SimulationError, match=r"caller turn 1 .*after 5 rounds"):
        replay(call, snapshot, tmp_path / "out", llm=llm)
    assert len(llm.requests) == 6 and not (tmp_path / "out").exists()


# -- failures -----------------------------------------------------------------------------------
def test_a_stage_failure_names_the_turn_and_writes_nothing(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo
    with pytest.raises(StageError, match=r"caller turn 3 .*'Jordan Miles.'.*model fell over"):
        replay(call, snapshot, tmp_path / "out", llm=BrokenLLM())
    assert not list(tmp_path.glob("out/*"))


def test_an_unknown_mode_is_refused(demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo
    engine = ReplayEngine(FakeSTT(call), ScriptedLLM(), ToneTTS())
    with pytest.raises(SimulationError, match="unknown replay mode 'chaos'"):
        engine.run(call, snapshot, RECORDINGS, mode="chaos", tools=ToolServer(call),
                   out_dir=tmp_path)


def test_models_load_before_any_turn_is_timed(demo: tuple[Call, AgentSnapshot],
                                               tmp_path: Path) -> None:
    call, snapshot = demo
    events: list[str] = []

    class LazyTTS(ToneTTS):
        def load(self) -> None:
            events.append("load")

        def synthesize(self, text: str, *, voice: str | None = None,
                       speed: float | None = None) -> Synthesis:
            events.append("synthesize")
            return super().synthesize(text, voice=voice, speed=speed)

    engine = ReplayEngine(FakeSTT(call), ScriptedLLM(), LazyTTS())
    progress: list[str] = []
    engine.run(call, snapshot, RECORDINGS, tools=ToolServer(call), out_dir=tmp_path,
               on_progress=progress.append)
    assert events[0] == "load" and events.count("load") == 1
    assert "loading models" in progress


# -- the timeline -------------------------------------------------------------------------------
def test_timeline_places_and_renders_equal_tracks() -> None:
    timeline = Timeline(8000, tail=0.25)
    tone = Audio(np.full(16000, 0.5, dtype=np.float32), 16000)  # 1 s at 16 kHz
    first = timeline.place("caller", tone, 0.5, lead=0.1, tail=0.1)
    assert first is not None and (first.start, first.end) == (0.5, pytest.approx(1.3))
    second = timeline.place("agent", tone, 2.0)
    assert second is not None and second.end == pytest.approx(3.0)
    tracks = timeline.render()
    assert timeline.duration == pytest.approx(3.25)
    lengths = {len(c.samples) for channels in tracks.values() for c in channels}
    assert lengths == {26000}
    agent = tracks["stereo"][1]
    assert voice_activity(agent).any() and not agent.samples[:16000].any()


def test_timeline_limit_cuts_and_stops() -> None:
    timeline = Timeline(8000, limit=1.5)
    tone = Audio(np.full(8000, 0.5, dtype=np.float32), 8000)
    span = timeline.place("agent", tone, 1.0)
    assert span is not None and span.cut and span.end == 1.5 and timeline.stopped
    assert timeline.place("caller", tone, 1.6) is None
    assert timeline.duration == 1.5


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    timeline = Timeline(8000)
    timeline.place("agent", Audio(np.full(800, 0.5, dtype=np.float32), 8000), 0.0)
    tracks = timeline.render()
    written = write_tracks(tmp_path / "ok", tracks)
    assert [r.kind for r in written] == ["stereo", "customer", "agent", "mixed"]
    tracks["agent"] = []  # the third file cannot be written
    with pytest.raises(StoreError, match="cannot write"):
        write_tracks(tmp_path / "bad", tracks)
    assert list((tmp_path / "bad").iterdir()) == []


# -- the tool server ----------------------------------------------------------------------------
def test_recorded_results_match_name_and_arguments(demo: tuple[Call, AgentSnapshot]) -> None:
    tools = ToolServer(demo[0])
    reordered = ToolCall(id="a", name="issue_refund",
                         arguments={"reason": "customer inquiry", "order_id": "4417"})
    spaced = ToolCall(id="b", name="issue_refund",
                      raw_arguments='{ "order_id" : "4417",\n "reason": "customer inquiry" }')
    for tool_call in (reordered, spaced, reordered):  # served as often as asked
        answer = tools.answer(tool_call)
        assert (answer.source, answer.id) == ("recorded", tool_call.id)
        assert json.loads(answer.result) == {"status": "refunded", "amount": 59.99}
    other = tools.answer(ToolCall(id="c", name="issue_refund",
                                  arguments={"order_id": "9999", "reason": "customer inquiry"}))
    assert other.source == "error" and other.success is False
    message = json.loads(other.result)["error"]
    assert "issue_refund has no recorded result" in message and "--live-tools" in message


def test_mocks_come_after_recorded_results(demo: tuple[Call, AgentSnapshot]) -> None:
    tools = ToolServer(demo[0], mocks={"issue_refund": "no", "check_status": ["a", 1]})
    recorded = tools.answer(ToolCall(id="a", name="issue_refund", arguments=RECORDED_REFUND))
    assert recorded.source == "recorded"
    assert tools.answer(ToolCall(id="b", name="issue_refund")).result == "no"
    listed = tools.answer(ToolCall(id="c", name="check_status", arguments={"order_id": "1"}))
    assert (listed.source, json.loads(listed.result)) == ("mock", ["a", 1])


def test_results_without_ids_pair_with_their_call() -> None:
    call = Call(provider="retell", call_id="x", turns=[
        Turn(role="tool_call", tool_calls=[ToolCall(id="t1", name="lookup", arguments={"a": 1})]),
        Turn(role="tool_result", tool_result={"name": "lookup", "result": "found"}),
    ])
    answer = ToolServer(call).answer(ToolCall(id="n", name="lookup", arguments={"a": 1}))
    assert (answer.source, answer.result) == ("recorded", "found")


@pytest.mark.integration
def test_live_tools_only_when_asked(demo: tuple[Call, AgentSnapshot]) -> None:
    bodies: list[Any] = []

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.json()
        bodies.append(body)
        calls = body["message"]["toolCallList"]
        return JSONResponse({"results": [{"toolCallId": c["id"], "result": {"eta": "Friday"}}
                                         for c in calls]})

    app = Starlette(routes=[Route("/tools", endpoint, methods=["POST"])])
    status = ToolCall(id="call_9", name="check_status", arguments={"order_id": "4417"})
    with serve(app) as server:
        url = server.url + "/tools"
        offline = ToolServer(demo[0], live_url=url)
        assert offline.answer(status).source == "error"
        assert server.requests == []  # without live=True the URL is never called

        with ToolServer(demo[0], live_url=url, live=True) as live:
            answer = live.answer(status)
            assert (answer.source, json.loads(answer.result)) == ("live", {"eta": "Friday"})
            assert bodies == [{"message": {"type": "tool-calls", "toolCallList": [
                {"id": "call_9", "name": "check_status", "arguments": {"order_id": "4417"}}]}}]
            recorded = live.answer(ToolCall(id="r", name="issue_refund",
                                            arguments=RECORDED_REFUND))
            assert recorded.source == "recorded" and len(bodies) == 1  # never re-run

            server.fail("^/tools", status=500)
            failed = live.answer(status)
            assert failed.source == "error" and "HTTP 500" in failed.result
            server.fail("^/tools", status=200, body={"unexpected": True})
            odd = live.answer(status)
            assert odd.source == "error" and "results" in odd.result

        no_url = ToolServer(demo[0], live=True)
        assert "no tool server URL" in no_url.answer(status).result
