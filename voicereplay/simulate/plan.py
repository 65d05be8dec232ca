"""The parts of a replay the engine and its modes share: the plan of turns and its layout.

A replay is planned as a list of :class:`Heard` (a caller turn with its transcription pending
on the STT worker) and :class:`Said` (an agent step with its speech pending on the TTS worker);
:func:`lay_out` places the plan on the virtual clock. The rest are small helpers: naming a turn
in errors (:func:`guard`, :func:`wait`), one-thread workers, and what the baseline says about
timing and audio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from voicereplay.audio import Audio, load_channels
from voicereplay.errors import RecordingError, SimulationError, StageError, VoiceReplayError
from voicereplay.models import Call, RecordingKind, ReplayTurn, StageTimings, TurnOrigin
from voicereplay.simulate.caller import CallerSegment
from voicereplay.simulate.conversation import Step
from voicereplay.simulate.stages import Synthesis, Transcription
from voicereplay.simulate.timeline import DEFAULT_RATE, Timeline, response_latency
from voicereplay.snapshot import AgentSnapshot

__all__ = [
    "DEFAULT_ENDPOINTING",
    "Heard",
    "Said",
    "agent_lead_in",
    "caller_label",
    "endpointing_delay",
    "guard",
    "lay_out",
    "load_recordings",
    "sample_rate",
    "wait",
    "worker",
]

DEFAULT_ENDPOINTING = 0.3  # seconds, when the snapshot does not say
T = TypeVar("T")


@dataclass
class Heard:
    """A caller turn to place: its segment and its transcription (pending on the STT worker)."""

    number: int  # 1-based, among the caller's turns
    segment: CallerSegment
    transcription: Future[Transcription]


@dataclass
class Said:
    """An agent step to place, with its synthesis pending on the TTS worker (``None``: silent)."""

    step: Step
    origin: TurnOrigin
    baseline_turn: int | None
    synthesis: Future[Synthesis] | None
    what: str  # names the turn in errors


def lay_out(plan: list[Heard | Said], timeline: Timeline, endpointing: float,
            lead_in: float) -> list[ReplayTurn]:
    """Place every turn on the virtual clock, in order, until the plan or the time runs out."""
    turns: list[ReplayTurn] = []
    anchor = 0.0  # when the LLM was first asked for the current reply (0: the opening)
    heard_end: float | None = None  # end of the caller speech the next agent audio answers
    opening = True  # no caller turn placed yet
    stt = 0.0
    for item in plan:
        if isinstance(item, Heard):
            transcription = wait(item.transcription, caller_label(item))
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
                                    tool_result=step.tool_result,
                                    prompt_tokens=step.prompt_tokens,
                                    completion_tokens=step.completion_tokens,
                                    knowledge=step.knowledge))
            continue
        synthesis = wait(item.synthesis, item.what) if item.synthesis else None
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
                                llm_request=step.llm_request, timings=timings,
                                prompt_tokens=step.prompt_tokens,
                                completion_tokens=step.completion_tokens,
                                knowledge=step.knowledge))
        heard_end = None
        if span.cut:
            break
    return turns


def caller_label(item: Heard | None) -> str:
    """Names a caller turn in errors and progress lines."""
    if item is None:
        return "the opening"
    index = item.segment.turn_index
    where = "simulated caller" if index is None else f"baseline turn {index}"
    return f"caller turn {item.number} ({where}: {item.segment.text[:40]!r})"


def guard(run: Callable[[], T], what: str) -> T:
    """Run one stage call; name the turn in any error it raises."""
    try:
        return run()
    except StageError as exc:
        raise type(exc)(f"{what}: {exc.message}", stage=exc.stage,
                        retryable=exc.retryable, retry_after=exc.retry_after) from exc
    except VoiceReplayError:
        raise
    except Exception as exc:  # a stage that broke its contract: still name the turn
        raise SimulationError(f"{what}: {type(exc).__name__}: {exc}") from exc


def wait(future: Future[T], what: str) -> T:
    return guard(future.result, what)


def worker(stack: ExitStack, name: str) -> ThreadPoolExecutor:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    return pool


def endpointing_delay(snapshot: AgentSnapshot) -> float:
    value = snapshot.turn_taking.endpointing
    return DEFAULT_ENDPOINTING if value is None else value


def agent_lead_in(call: Call) -> float:
    """When the baseline's agent first spoke, if it spoke before the caller (else 0)."""
    timed = sorted((t.start, t.role) for t in call.turns
                   if t.role in ("user", "agent") and t.start is not None)
    return timed[0][0] if timed and timed[0][1] == "agent" else 0.0


def load_recordings(recordings: Mapping[str, Path]) -> dict[RecordingKind, list[Audio]]:
    """The recordings the caller's side needs (unreadable ones raise RecordingError)."""
    return {kind: load_channels(recordings[kind])
            for kind in ("customer", "stereo") if kind in recordings}


def sample_rate(loaded: Mapping[RecordingKind, list[Audio]],
                recordings: Mapping[str, Path]) -> int:
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
