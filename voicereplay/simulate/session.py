"""One replay of one call: the public API the replay modes are written against.

A :class:`ReplaySession` holds what every mode needs — the stages (:class:`Stages`), the call,
the snapshot, the tool server, the seed, the progress callback — and what is read before the
first turn (:meth:`ReplaySession.prepare`: recordings, sample rate, stereo layout, models loaded,
the caller's turns cut or synthesized). Its methods are the steps a mode strings together:
transcribing caller turns on the STT worker, the agent's opening and replies (through a
:class:`~voicereplay.simulate.conversation.Conversation`), queueing speech on the TTS worker and
pairing each new turn with the baseline turn it stands for (by :mod:`voicereplay.turns`), laying
the plan out on the virtual clock, and writing the tracks (:meth:`ReplaySession.finish`).

Failures: a stage error becomes a :class:`~voicereplay.errors.StageError` whose message names
the turn; an unreadable recording is a :class:`~voicereplay.errors.RecordingError`. Audio is
written only by :meth:`~ReplaySession.finish`, and a failed write removes what it wrote.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from voicereplay import knowledge as kb
from voicereplay.audio import ChannelLayout, detect_layout
from voicereplay.errors import SimulationError, StageError
from voicereplay.models import (
    Call,
    KnowledgeContext,
    Replay,
    ReplayDivergence,
    ReplayMode,
    ReplayTurn,
)
from voicereplay.simulate.caller import CallerSegment, caller_segments
from voicereplay.simulate.conversation import Conversation, Step
from voicereplay.simulate.plan import (
    Heard,
    Said,
    agent_lead_in,
    caller_label,
    endpointing_delay,
    guard,
    lay_out,
    load_recordings,
    sample_rate,
    worker,
)
from voicereplay.simulate.stages import (
    ChatRequest,
    ChatResult,
    LanguageModel,
    SpeechToText,
    Synthesis,
    TextToSpeech,
)
from voicereplay.simulate.timeline import Timeline, write_tracks
from voicereplay.simulate.tools import ToolServer
from voicereplay.snapshot import AgentSnapshot
from voicereplay.turns import AgentReply, reply_to

__all__ = ["Prepared", "ReplaySession", "Stages"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stages:
    """The backends one replay runs with."""

    stt: SpeechToText
    llm: LanguageModel
    tts_agent: TextToSpeech
    tts_caller: TextToSpeech | None = None
    caller_llm: LanguageModel | None = None  # adaptive mode's simulated caller (None: ``llm``)

    @property
    def backends(self) -> dict[str, str]:
        names = {"stt": self.stt.name, "llm": self.llm.name, "tts": self.tts_agent.name}
        if self.llm.model_name:
            names["llm_model"] = self.llm.model_name
        if self.tts_caller is not None:
            names["caller_tts"] = self.tts_caller.name
        if self.caller_llm is not None:
            names["caller_llm"] = self.caller_llm.name
        return names


@dataclass
class Prepared:
    """What every mode reads before its first turn (see :meth:`ReplaySession.prepare`)."""

    started: float  # perf_counter at the start of the replay
    rate: int  # the baseline's sample rate: the replay's audio uses it
    layout: ChannelLayout  # the baseline's stereo layout: the replay's stereo uses it
    segments: list[CallerSegment]  # the baseline caller's turns, cut or synthesized
    warnings: list[str]


class ReplaySession:
    """One replay of ``call`` against ``snapshot`` with ``stages``; see the module docstring."""

    def __init__(self, stages: Stages, call: Call, snapshot: AgentSnapshot, *,
                 seed: int | None, tools: ToolServer, out_dir: Path,
                 on_progress: Callable[[str], None] | None = None) -> None:
        self.stages = stages
        self.call = call
        self.snapshot = snapshot
        self.seed = seed
        self.tools = tools
        self.out_dir = out_dir
        self.say: Callable[[str], None] = on_progress or (lambda _message: None)
        self._prepared: Prepared | None = None

    # -- before the first turn -----------------------------------------------------------------
    def prepare(self, recordings: Mapping[str, Path]) -> Prepared:
        """Read the recordings, load the models, and cut (or synthesize) the caller's turns."""
        started = time.perf_counter()
        paths = {str(kind): Path(path) for kind, path in recordings.items()}
        loaded = load_recordings(paths)
        rate = sample_rate(loaded, paths)
        layout = detect_layout(self.call, loaded)
        self._load_models()
        warnings: list[str] = []
        if not (self.snapshot.system_prompt or "").strip():
            warnings.append("the snapshot has no system prompt: the agent runs without one")
        self.say("preparing the caller's turns")
        segments = caller_segments(self.call, loaded, self.stages.tts_caller)
        for segment in segments:
            if segment.note:
                log.warning("caller turn %s: %s", segment.turn_index, segment.note)
                self.say(f"caller turn {segment.turn_index}: {segment.note}")
                warnings.append(f"caller turn {segment.turn_index}: {segment.note}")
        self._prepared = Prepared(started, rate, layout, segments, warnings)
        return self._prepared

    @property
    def prepared(self) -> Prepared:
        if self._prepared is None:
            raise SimulationError("the replay session was not prepared")
        return self._prepared

    def _load_models(self) -> None:
        """Load every backend's model now, so loading is not counted as a turn's latency."""
        self.say("loading models")
        s = self.stages
        for stage in dict.fromkeys(x for x in (s.stt, s.llm, s.tts_agent, s.tts_caller,
                                               s.caller_llm) if x is not None):
            guard(stage.load, f"loading the {stage.name} backend")

    def conversation(self) -> Conversation:
        """A fresh chat history for the agent (system prompt, tools, the replay's seed)."""
        return Conversation(self.snapshot, self.seed)

    @contextmanager
    def workers(self) -> Iterator[tuple[ThreadPoolExecutor, ThreadPoolExecutor]]:
        """One STT and one TTS worker thread, shut down (pending work cancelled) on exit."""
        with ExitStack() as stack:
            yield worker(stack, "replay-stt"), worker(stack, "replay-tts")

    # -- the caller's turns --------------------------------------------------------------------
    def hear(self, pool: ThreadPoolExecutor, number: int, segment: CallerSegment) -> Heard:
        """Caller turn ``number``, its transcription queued on ``pool``."""
        return Heard(number, segment, pool.submit(
            self.stages.stt.transcribe, segment.audio,
            language=self.snapshot.transcriber.language))

    def hear_all(self, pool: ThreadPoolExecutor) -> list[Heard]:
        """Every baseline caller turn, transcriptions queued in order."""
        segments = self.prepared.segments
        self.say(f"transcribing {len(segments)} caller turns")
        return [self.hear(pool, n, s) for n, s in enumerate(segments, start=1)]

    # -- the agent's turns ---------------------------------------------------------------------
    def open(self, conversation: Conversation, pool: ThreadPoolExecutor) -> list[Said]:
        """The agent's opening: the first message spoken, generated, or nothing."""
        snapshot = self.snapshot
        opening = reply_to(self.call.turns, None)
        if snapshot.first_message_mode == "agent-speaks-first" and snapshot.first_message:
            text = snapshot.first_message
            conversation.agent_said(text)
            first = opening.of_role(self.call.turns, "agent")[:1] if opening else []
            return [Said(Step("say", 0.0, text=text), "first-message",
                         first[0] if first else None, pool.submit(self.speak, text),
                         "the first message")]
        if snapshot.first_message_mode == "agent-generates-first":
            self.say("generating the first message")
            steps = self.reply(conversation, None, None)
            return self.synthesize(steps, opening, pool, "the generated opening")
        return []

    def reply(self, conversation: Conversation, heard: str | None,
              item: Heard | None) -> list[Step]:
        """The agent's reply to ``heard`` (caller turn ``item``; ``None``: the opening), with the
        knowledge-base context the baseline's reply to the same caller turn had."""
        what = f"agent reply to {caller_label(item)}" if item else "the generated opening"
        served = kb.for_reply(self.call, self.answering(item))
        return self.ask(conversation, heard, what, f"replay-{item.number if item else 0}",
                        knowledge=served)

    def ask(self, conversation: Conversation, heard: str | None, what: str,
            tag: str, *, knowledge: list[KnowledgeContext] | None = None) -> list[Step]:
        """One reply of ``conversation`` (tool rounds included), ``knowledge`` served before it;
        errors name ``what``."""
        llm = self.stages.llm

        def complete(request: ChatRequest) -> ChatResult:
            return guard(lambda: llm.complete(request), what)

        try:
            return conversation.reply(heard, complete, self.tools, tag=tag,
                                      knowledge=knowledge or ())
        except StageError:
            raise
        except SimulationError as exc:
            raise SimulationError(f"{what}: {exc.message}") from exc

    def answering(self, item: Heard | None) -> AgentReply | None:
        """The baseline reply to caller turn ``item`` (``None``: the opening)."""
        index = item.segment.turn_index if item is not None else None
        if item is not None and index is None:
            return None  # a simulated caller's line: the baseline has no reply to it
        return reply_to(self.call.turns, index)

    def synthesize(self, steps: list[Step], answering: AgentReply | None,
                   pool: ThreadPoolExecutor, what: str) -> list[Said]:
        """Queue speech for the spoken steps; pair each step with the baseline reply's turn of
        the same role, in order (``answering`` None: no pairing)."""
        baseline = {role: answering.of_role(self.call.turns, role) if answering else []
                    for role in ("agent", "tool_call", "tool_result")}
        said: list[Said] = []
        for step in steps:
            role = "agent" if step.kind == "say" else step.kind
            future = pool.submit(self.speak, step.text) if step.text else None
            said.append(Said(step, "llm" if step.kind == "say" else "tool",
                             baseline[role].pop(0) if baseline[role] else None, future, what))
        return said

    def speak(self, text: str) -> Synthesis:
        """``text`` in the agent's voice."""
        voice = self.snapshot.voice
        return self.stages.tts_agent.synthesize(text, voice=voice.voice_id, speed=voice.speed)

    # -- after the last turn -------------------------------------------------------------------
    def timeline(self) -> Timeline:
        """An empty timeline at the baseline's rate, limited to the snapshot's max duration."""
        return Timeline(self.prepared.rate, limit=self.snapshot.turn_taking.max_duration)

    def lay_out(self, plan: list[Heard | Said],
                timeline: Timeline | None = None) -> tuple[Timeline, list[ReplayTurn]]:
        """Place ``plan`` on the virtual clock (waits for its transcriptions and speech)."""
        timeline = timeline or self.timeline()
        turns = lay_out(plan, timeline, endpointing_delay(self.snapshot),
                        agent_lead_in(self.call))
        return timeline, turns

    def finish(self, *, mode: ReplayMode, timeline: Timeline, turns: list[ReplayTurn],
               reason: str, divergence: ReplayDivergence | None = None) -> Replay:
        """Write the timeline's four tracks and describe the replay."""
        prepared, call, snapshot = self.prepared, self.call, self.snapshot
        self.say("writing the replay's audio")
        saved = write_tracks(self.out_dir, timeline.render(prepared.layout))
        return Replay(
            id=uuid.uuid4().hex, call_provider=call.provider, call_id=call.call_id,
            snapshot_id=snapshot.id, base_snapshot_id=snapshot.source.parent_id, mode=mode,
            seed=self.conversation().seed_used, status="completed",
            backends=self.stages.backends, created_at=datetime.now(UTC),
            wall_seconds=time.perf_counter() - prepared.started, duration=timeline.duration,
            turns=turns, recordings=saved, ended_reason=reason, warnings=prepared.warnings,
            divergence=divergence)
