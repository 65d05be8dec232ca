"""The replay engine: drives STT → LLM (+tools) → TTS over a call's caller turns.

:class:`ReplayEngine` runs the **scripted** mode (see DESIGN.md, "Replay modes"): the caller
says what the real caller said, in order (:mod:`~voicereplay.simulate.caller`); the agent
(:mod:`~voicereplay.simulate.conversation`) answers fresh, its tool calls answered by a
:class:`~voicereplay.simulate.tools.ToolServer`; everything is laid out on the virtual clock
(:mod:`~voicereplay.simulate.timeline`) and written as ``stereo.wav``, ``customer.wav``,
``agent.wav`` and ``mixed.wav`` (:func:`~voicereplay.simulate.timeline.write_tracks`).

Work that does not depend on the LLM runs beside it: every caller segment is transcribed up
front on one STT worker thread (one at a time, so segments do not compete with each other;
they may still compete with a local LLM for the CPU, which shows in their latency) while the
agent's opening is synthesized, and each agent reply is synthesized on one TTS worker thread
while the LLM writes the next reply. The timeline is laid out once all of it is done.

Failures: a stage error becomes a :class:`~voicereplay.errors.StageError` whose message names
the turn; an unreadable recording is a :class:`~voicereplay.errors.RecordingError`. Audio is
written only after everything else succeeded, and a failed write removes what it wrote.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from voicereplay.errors import (
    RecordingError,
    SimulationError,
    StageError,
    VoiceReplayError,
)
from voicereplay.models import (
    Call,
    RecordingKind,
    Replay,
    ReplayMode,
    ReplayTurn,
    StageTimings,
    TurnOrigin,
)
from voicereplay.simulate.audio import load_channels
from voicereplay.simulate.caller import CallerSegment, caller_segments, detect_layout
from voicereplay.simulate.conversation import Conversation, Step
from voicereplay.simulate.stages import (
    Audio,
    ChatRequest,
    ChatResult,
    LanguageModel,
    SpeechToText,
    Synthesis,
    TextToSpeech,
    Transcription,
)
from voicereplay.simulate.timeline import (
    DEFAULT_RATE,
    Timeline,
    response_latency,
    write_tracks,
)
from voicereplay.simulate.tools import ToolServer
from voicereplay.snapshot import AgentSnapshot

__all__ = ["DEFAULT_ENDPOINTING", "ReplayEngine"]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINTING = 0.3  # seconds, when the snapshot does not say
T = TypeVar("T")


@dataclass
class _Heard:
    """A caller turn to place: its segment and its transcription (pending on the STT worker)."""

    number: int  # 1-based, among the caller's turns
    segment: CallerSegment
    transcription: Future[Transcription]


@dataclass
class _Said:
    """An agent step to place, with its synthesis pending on the TTS worker (``None``: silent)."""

    step: Step
    origin: TurnOrigin
    baseline_turn: int | None
    synthesis: Future[Synthesis] | None
    what: str  # names the turn in errors


class ReplayEngine:
    """Replays calls with these stages; one engine can run many replays, one at a time."""

    def __init__(self, stt: SpeechToText, llm: LanguageModel, tts_agent: TextToSpeech,
                 tts_caller: TextToSpeech | None = None) -> None:
        self.stt = stt
        self.llm = llm
        self.tts_agent = tts_agent
        self.tts_caller = tts_caller

    @property
    def backends(self) -> dict[str, str]:
        names = {"stt": self.stt.name, "llm": self.llm.name, "tts": self.tts_agent.name}
        if self.tts_caller is not None:
            names["caller_tts"] = self.tts_caller.name
        return names

    def run(
        self,
        call: Call,
        snapshot: AgentSnapshot,
        recordings: Mapping[RecordingKind, Path] | Mapping[str, Path],
        *,
        mode: ReplayMode | str = "scripted",
        seed: int | None = None,
        tools: ToolServer,
        out_dir: Path,
        on_progress: Callable[[str], None] | None = None,
    ) -> Replay:
        """Replay ``call`` against ``snapshot``; write the audio into ``out_dir``.

        ``recordings`` maps recording kinds (``stereo``, ``customer``, …) to local files;
        ``seed`` (else the snapshot's) goes to every LLM request; ``on_progress`` gets one line
        per step, including why a caller turn had to be synthesized.
        """
        if mode != "scripted":
            raise SimulationError(f"replay mode {mode!r} is not available yet; use 'scripted'")
        say = on_progress or (lambda _message: None)
        started = time.perf_counter()
        paths = {str(kind): Path(path) for kind, path in recordings.items()}
        loaded = _load(paths)
        rate = _rate(loaded, paths)
        layout = detect_layout(call, loaded)
        self._load_models(say)
        warnings: list[str] = []
        if not (snapshot.system_prompt or "").strip():
            warnings.append("the snapshot has no system prompt: the agent runs without one")
        say("preparing the caller's turns")
        segments = caller_segments(call, loaded, self.tts_caller)
        for segment in segments:
            if segment.note:
                log.warning("caller turn %d: %s", segment.turn_index, segment.note)
                say(f"caller turn {segment.turn_index}: {segment.note}")
                warnings.append(f"caller turn {segment.turn_index}: {segment.note}")
        conversation = Conversation(snapshot, seed)
        with ExitStack() as stack:
            stt_pool = _pool(stack, "replay-stt")
            tts_pool = _pool(stack, "replay-tts")
            say(f"transcribing {len(segments)} caller turns")
            heard = [_Heard(n, s, stt_pool.submit(self.stt.transcribe, s.audio,
                                                  language=snapshot.transcriber.language))
                     for n, s in enumerate(segments, start=1)]
            opening = self._open(call, snapshot, conversation, tools, tts_pool, say)
            plan: list[_Heard | _Said] = list(opening)
            ended = any(s.step.ends_call for s in opening)
            for item in heard if not ended else []:
                transcription = _wait(item.transcription, _caller(item))
                plan.append(item)
                if not transcription.text.strip():
                    continue  # nothing heard: a voice agent does not answer silence
                say(f"agent reply {item.number} of {len(heard)}")
                steps = self._reply(call, conversation, transcription.text, item, tools)
                plan.extend(self._synthesize(call, steps, item.segment.turn_index, tts_pool,
                                             snapshot, f"agent reply to {_caller(item)}"))
                if any(s.ends_call for s in steps):
                    ended = True
                    break
            say("laying out the replay's audio")
            timeline = Timeline(rate, limit=snapshot.turn_taking.max_duration)
            turns = _lay_out(plan, timeline, _endpointing(snapshot), _lead_in(call))
        reason = ("max-duration" if timeline.stopped
                  else "agent-ended-call" if ended else "caller-done")
        say("writing the replay's audio")
        saved = write_tracks(out_dir, timeline.render(layout))
        return Replay(
            id=uuid.uuid4().hex, call_provider=call.provider, call_id=call.call_id,
            snapshot_id=snapshot.id, base_snapshot_id=snapshot.source.parent_id, mode="scripted",
            seed=conversation.seed_used, status="completed", backends=self.backends,
            created_at=datetime.now(UTC),
            wall_seconds=time.perf_counter() - started, duration=timeline.duration,
            turns=turns, recordings=saved, ended_reason=reason, warnings=warnings)

    def _load_models(self, say: Callable[[str], None]) -> None:
        """Load every backend's model now, so loading is not counted as a turn's latency."""
        say("loading models")
        for stage in (self.stt, self.llm, self.tts_agent, self.tts_caller):
            if stage is not None:
                _guard(stage.load, f"loading the {stage.name} backend")

    # -- the agent's turns -------------------------------------------------------------------
    def _open(self, call: Call, snapshot: AgentSnapshot, conversation: Conversation,
              tools: ToolServer, pool: ThreadPoolExecutor,
              say: Callable[[str], None]) -> list[_Said]:
        """The agent's opening: the first message spoken, generated, or nothing."""
        first_agent = _baseline_turns(call, -1).get("agent", [None])[0]
        if snapshot.first_message_mode == "agent-speaks-first" and snapshot.first_message:
            text = snapshot.first_message
            conversation.agent_said(text)
            future = pool.submit(self._speak, text, snapshot)
            return [_Said(Step("say", 0.0, text=text), "first-message", first_agent, future,
                          "the first message")]
        if snapshot.first_message_mode == "agent-generates-first":
            say("generating the first message")
            steps = self._reply(call, conversation, None, None, tools)
            return self._synthesize(call, steps, -1, pool, snapshot, "the generated opening")
        return []

    def _reply(self, call: Call, conversation: Conversation, heard: str | None,
               item: _Heard | None, tools: ToolServer) -> list[Step]:
        what = f"agent reply to {_caller(item)}" if item else "the generated opening"

        def complete(request: ChatRequest) -> ChatResult:
            return _guard(lambda: self.llm.complete(request), what)

        try:
            return conversation.reply(heard, complete, tools,
                                      tag=f"replay-{item.number if item else 0}")
        except StageError:
            raise
        except SimulationError as exc:
            raise SimulationError(f"{what}: {exc.message}") from exc

    def _synthesize(self, call: Call, steps: list[Step], after: int, pool: ThreadPoolExecutor,
                    snapshot: AgentSnapshot, what: str) -> list[_Said]:
        """Queue speech for the spoken steps; pair every step with its baseline turn."""
        baseline = _baseline_turns(call, after)
        said: list[_Said] = []
        for step in steps:
            role = "agent" if step.kind == "say" else step.kind
            candidates = baseline.get(role, [])
            future = pool.submit(self._speak, step.text, snapshot) if step.text else None
            said.append(_Said(step, "llm" if step.kind == "say" else "tool",
                              candidates.pop(0) if candidates else None, future, what))
        return said

    def _speak(self, text: str, snapshot: AgentSnapshot) -> Synthesis:
        return self.tts_agent.synthesize(text, voice=snapshot.voice.voice_id,
                                         speed=snapshot.voice.speed)


def _lay_out(plan: list[_Heard | _Said], timeline: Timeline, endpointing: float,
             lead_in: float) -> list[ReplayTurn]:
    """Place every turn on the virtual clock, in order, until the plan or the time runs out."""
    turns: list[ReplayTurn] = []
    anchor = 0.0  # when the LLM was first asked for the current reply (0: the opening)
    heard_end: float | None = None  # end of the caller speech the next agent audio answers
    opening = True  # no caller turn placed yet
    stt = 0.0
    for item in plan:
        if isinstance(item, _Heard):
            transcription = _wait(item.transcription, _caller(item))
            segment = item.segment
            span = timeline.place("caller", segment.audio, timeline.speech_end + segment.gap,
                                  lead=segment.lead, tail=segment.tail)
            if span is None:
                break
            turns.append(ReplayTurn(
                role="user", text=segment.text, start=span.start, end=span.end,
                origin=segment.origin, baseline_turn=segment.turn_index,
                heard=transcription.text, timings=StageTimings(stt=transcription.latency)))
            heard_end, stt, opening = span.end, transcription.latency, False
            anchor = span.end + endpointing + stt
            if span.cut:
                break
            continue
        step = item.step
        if step.kind != "say":
            start = anchor + step.offset
            if timeline.limit is not None and start >= timeline.limit:
                break
            turns.append(ReplayTurn(role=step.kind, start=start, origin="tool",
                                    baseline_turn=item.baseline_turn, llm_request=step.llm_request,
                                    tool_calls=[step.tool_call] if step.tool_call else [],
                                    tool_result=step.tool_result))
            continue
        synthesis = _wait(item.synthesis, item.what) if item.synthesis else None
        ttfa = synthesis.ttfa if synthesis else 0.0
        llm = step.llm_ttft or 0.0
        timings = StageTimings(llm_ttft=step.llm_ttft, llm_total=step.llm_total, tts_ttfa=ttfa,
                               tts_total=synthesis.latency if synthesis else None)
        if heard_end is not None:  # the first audio after the caller spoke
            timings.stt = stt
            timings.response = response_latency(endpointing=endpointing, stt=stt,
                                                 llm_ttft=llm, tts_ttfa=ttfa)
            at = heard_end + timings.response
        else:  # the opening (after the baseline's lead-in), or more of the same reply
            at = max(anchor + llm + ttfa, timeline.speech_end, lead_in if opening else 0.0)
        audio = synthesis.audio if synthesis else Audio.silence(0, timeline.rate)
        span = timeline.place("agent", audio, at)
        if span is None:
            break
        turns.append(ReplayTurn(role="agent", text=step.text, start=span.start, end=span.end,
                                origin=item.origin, baseline_turn=item.baseline_turn,
                                llm_request=step.llm_request, timings=timings))
        heard_end = None
        if span.cut:
            break
    return turns


def _caller(item: _Heard | None) -> str:
    if item is None:
        return "the opening"
    return f"caller turn {item.number} (baseline turn {item.segment.turn_index}: " \
           f"{item.segment.text[:40]!r})"


def _guard(run: Callable[[], T], what: str) -> T:
    """Run one stage call; name the turn in any error it raises."""
    try:
        return run()
    except StageError as exc:
        raise StageError(f"{what}: {exc.message}", stage=exc.stage,
                         retryable=exc.retryable) from exc
    except VoiceReplayError:
        raise
    except Exception as exc:  # a stage that broke its contract: still name the turn
        raise SimulationError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _wait(future: Future[T], what: str) -> T:
    return _guard(future.result, what)


def _pool(stack: ExitStack, name: str) -> ThreadPoolExecutor:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    return pool


def _baseline_turns(call: Call, after: int) -> dict[str, list[int]]:
    """Indices of the baseline's agent/tool turns after turn ``after``, up to the next user turn."""
    found: dict[str, list[int]] = {}
    for index in range(after + 1, len(call.turns)):
        role = call.turns[index].role
        if role == "user":
            break
        found.setdefault(role, []).append(index)
    return found


def _endpointing(snapshot: AgentSnapshot) -> float:
    value = snapshot.turn_taking.endpointing
    return DEFAULT_ENDPOINTING if value is None else value


def _lead_in(call: Call) -> float:
    """When the baseline's agent first spoke, if it spoke before the caller (else 0)."""
    timed = sorted((t.start, t.role) for t in call.turns
                   if t.role in ("user", "agent") and t.start is not None)
    return timed[0][0] if timed and timed[0][1] == "agent" else 0.0


def _load(recordings: Mapping[str, Path]) -> dict[RecordingKind, list[Audio]]:
    """The recordings the caller's side needs (unreadable ones raise RecordingError)."""
    return {kind: load_channels(recordings[kind])
            for kind in ("customer", "stereo") if kind in recordings}


def _rate(loaded: Mapping[RecordingKind, list[Audio]], recordings: Mapping[str, Path]) -> int:
    """The baseline's sample rate, else :data:`DEFAULT_RATE`."""
    for channels in loaded.values():
        return channels[0].rate
    for kind in ("mixed", "agent"):
        if kind in recordings:
            import soundfile

            try:
                return int(soundfile.info(str(recordings[kind])).samplerate)
            except (RuntimeError, OSError) as exc:
                raise RecordingError(f"cannot read audio {recordings[kind]}: {exc}",
                                     provider="recording") from exc
    return DEFAULT_RATE
