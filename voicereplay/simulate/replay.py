"""The replay engine: drives STT → LLM (+tools) → TTS over a call's caller turns.

:class:`ReplayEngine` runs the three modes of DESIGN.md, "Replay modes". This module is the
**scripted** mode; :mod:`~voicereplay.simulate.turn_mode` is the **turn** mode and
:mod:`~voicereplay.simulate.adaptive` the **adaptive** one. In scripted mode the caller
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
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from voicereplay.audio import ChannelLayout, detect_layout
from voicereplay.errors import SimulationError, StageError
from voicereplay.models import Call, RecordingKind, Replay, ReplayMode, ReplayTurn
from voicereplay.simulate.adaptive import run_adaptive
from voicereplay.simulate.caller import CallerSegment, caller_segments
from voicereplay.simulate.conversation import Conversation, Step
from voicereplay.simulate.plan import (
    DEFAULT_ENDPOINTING,
    Heard,
    Said,
    agent_lead_in,
    baseline_turns,
    caller_label,
    endpointing_delay,
    guard,
    lay_out,
    load_recordings,
    sample_rate,
    wait,
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
from voicereplay.simulate.turn_mode import run_turn_mode
from voicereplay.snapshot import AgentSnapshot

__all__ = ["DEFAULT_ENDPOINTING", "Prepared", "ReplayEngine"]

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """What every mode reads before its first turn (see :meth:`ReplayEngine._prepare`)."""

    started: float  # perf_counter at the start of the replay
    rate: int  # the baseline's sample rate: the replay's audio uses it
    layout: ChannelLayout  # the baseline's stereo layout: the replay's stereo uses it
    segments: list[CallerSegment]  # the baseline caller's turns, cut or synthesized
    warnings: list[str]


class ReplayEngine:
    """Replays calls with these stages; one engine can run many replays, one at a time."""

    def __init__(self, stt: SpeechToText, llm: LanguageModel, tts_agent: TextToSpeech,
                 tts_caller: TextToSpeech | None = None, *,
                 caller_llm: LanguageModel | None = None) -> None:
        self.stt = stt
        self.llm = llm
        self.tts_agent = tts_agent
        self.tts_caller = tts_caller
        self.caller_llm = caller_llm  # adaptive mode's simulated caller (None: ``llm``)

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
        for llm in dict.fromkeys(m for m in (self.llm, self.caller_llm) if m is not None):
            llm.reset()  # a new replay: a recorded LLM starts from the baseline's first reply
        if mode == "turn":
            return run_turn_mode(self, call, snapshot, recordings, seed=seed, tools=tools,
                                 out_dir=out_dir, on_progress=on_progress)
        if mode == "adaptive":
            return run_adaptive(self, call, snapshot, recordings, seed=seed, tools=tools,
                                out_dir=out_dir, on_progress=on_progress)
        if mode != "scripted":
            raise SimulationError(f"unknown replay mode {mode!r}: use scripted, turn or adaptive")
        say = on_progress or (lambda _message: None)
        prepared = self._prepare(call, snapshot, recordings, say)
        segments = prepared.segments
        conversation = Conversation(snapshot, seed)
        with ExitStack() as stack:
            stt_pool = worker(stack, "replay-stt")
            tts_pool = worker(stack, "replay-tts")
            say(f"transcribing {len(segments)} caller turns")
            heard = [Heard(n, s, stt_pool.submit(self.stt.transcribe, s.audio,
                                                 language=snapshot.transcriber.language))
                     for n, s in enumerate(segments, start=1)]
            opening = self._open(call, snapshot, conversation, tools, tts_pool, say)
            plan: list[Heard | Said] = list(opening)
            ended = any(s.step.ends_call for s in opening)
            for item in heard if not ended else []:
                transcription = wait(item.transcription, caller_label(item))
                plan.append(item)
                if not transcription.text.strip():
                    continue  # nothing heard: a voice agent does not answer silence
                say(f"agent reply {item.number} of {len(heard)}")
                steps = self._reply(call, conversation, transcription.text, item, tools)
                plan.extend(self._synthesize(call, steps, item.segment.turn_index, tts_pool,
                                             snapshot, f"agent reply to {caller_label(item)}"))
                if any(s.ends_call for s in steps):
                    ended = True
                    break
            say("laying out the replay's audio")
            timeline = Timeline(prepared.rate, limit=snapshot.turn_taking.max_duration)
            turns = lay_out(plan, timeline, endpointing_delay(snapshot), agent_lead_in(call))
        reason = ("max-duration" if timeline.stopped
                  else "agent-ended-call" if ended else "caller-done")
        return self._finish(call, snapshot, prepared, mode="scripted",
                            seed=conversation.seed_used, timeline=timeline, turns=turns,
                            reason=reason, out_dir=out_dir, say=say)

    def _prepare(self, call: Call, snapshot: AgentSnapshot,
                 recordings: Mapping[RecordingKind, Path] | Mapping[str, Path],
                 say: Callable[[str], None]) -> Prepared:
        """Read the recordings, load the models, and cut (or synthesize) the caller's turns."""
        started = time.perf_counter()
        paths = {str(kind): Path(path) for kind, path in recordings.items()}
        loaded = load_recordings(paths)
        rate = sample_rate(loaded, paths)
        layout = detect_layout(call, loaded)
        self._load_models(say)
        warnings: list[str] = []
        if not (snapshot.system_prompt or "").strip():
            warnings.append("the snapshot has no system prompt: the agent runs without one")
        say("preparing the caller's turns")
        segments = caller_segments(call, loaded, self.tts_caller)
        for segment in segments:
            if segment.note:
                log.warning("caller turn %s: %s", segment.turn_index, segment.note)
                say(f"caller turn {segment.turn_index}: {segment.note}")
                warnings.append(f"caller turn {segment.turn_index}: {segment.note}")
        return Prepared(started, rate, layout, segments, warnings)

    def _finish(self, call: Call, snapshot: AgentSnapshot, prepared: Prepared, *,
                mode: ReplayMode, seed: int | None, timeline: Timeline,
                turns: list[ReplayTurn], reason: str, out_dir: Path,
                say: Callable[[str], None], divergence: dict[str, Any] | None = None) -> Replay:
        """Write the timeline's four tracks and describe the replay."""
        say("writing the replay's audio")
        saved = write_tracks(out_dir, timeline.render(prepared.layout))
        return Replay(
            id=uuid.uuid4().hex, call_provider=call.provider, call_id=call.call_id,
            snapshot_id=snapshot.id, base_snapshot_id=snapshot.source.parent_id, mode=mode,
            seed=seed, status="completed", backends=self.backends,
            created_at=datetime.now(UTC),
            wall_seconds=time.perf_counter() - prepared.started, duration=timeline.duration,
            turns=turns, recordings=saved, ended_reason=reason, warnings=prepared.warnings,
            divergence=divergence)

    def _load_models(self, say: Callable[[str], None]) -> None:
        """Load every backend's model now, so loading is not counted as a turn's latency."""
        say("loading models")
        stages = (self.stt, self.llm, self.tts_agent, self.tts_caller, self.caller_llm)
        for stage in dict.fromkeys(s for s in stages if s is not None):
            if stage is not None:
                guard(stage.load, f"loading the {stage.name} backend")

    # -- the agent's turns -------------------------------------------------------------------
    def _open(self, call: Call, snapshot: AgentSnapshot, conversation: Conversation,
              tools: ToolServer, pool: ThreadPoolExecutor,
              say: Callable[[str], None]) -> list[Said]:
        """The agent's opening: the first message spoken, generated, or nothing."""
        first_agent = baseline_turns(call, -1).get("agent", [None])[0]
        if snapshot.first_message_mode == "agent-speaks-first" and snapshot.first_message:
            text = snapshot.first_message
            conversation.agent_said(text)
            future = pool.submit(self._speak, text, snapshot)
            return [Said(Step("say", 0.0, text=text), "first-message", first_agent, future,
                          "the first message")]
        if snapshot.first_message_mode == "agent-generates-first":
            say("generating the first message")
            steps = self._reply(call, conversation, None, None, tools)
            return self._synthesize(call, steps, -1, pool, snapshot, "the generated opening")
        return []

    def _reply(self, call: Call, conversation: Conversation, heard: str | None,
               item: Heard | None, tools: ToolServer) -> list[Step]:
        what = f"agent reply to {caller_label(item)}" if item else "the generated opening"

        def complete(request: ChatRequest) -> ChatResult:
            return guard(lambda: self.llm.complete(request), what)

        try:
            return conversation.reply(heard, complete, tools,
                                      tag=f"replay-{item.number if item else 0}")
        except StageError:
            raise
        except SimulationError as exc:
            raise SimulationError(f"{what}: {exc.message}") from exc

    def _synthesize(self, call: Call, steps: list[Step], after: int | None,
                    pool: ThreadPoolExecutor, snapshot: AgentSnapshot, what: str) -> list[Said]:
        """Queue speech for the spoken steps; pair every step with its baseline turn.

        ``after`` is the baseline turn answered (-1: the opening; ``None``: none, no pairing).
        """
        baseline = baseline_turns(call, after) if after is not None else {}
        said: list[Said] = []
        for step in steps:
            role = "agent" if step.kind == "say" else step.kind
            candidates = baseline.get(role, [])
            future = pool.submit(self._speak, step.text, snapshot) if step.text else None
            said.append(Said(step, "llm" if step.kind == "say" else "tool",
                              candidates.pop(0) if candidates else None, future, what))
        return said

    def _speak(self, text: str, snapshot: AgentSnapshot) -> Synthesis:
        return self.tts_agent.synthesize(text, voice=snapshot.voice.voice_id,
                                         speed=snapshot.voice.speed)
