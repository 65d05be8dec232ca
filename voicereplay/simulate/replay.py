"""The replay engine: replays calls with a set of STT, LLM and TTS stages.

:class:`ReplayEngine` holds the stages and runs one replay at a time: it starts the LLMs afresh
(:meth:`~voicereplay.simulate.stages.LanguageModel.reset`: a recorded LLM replays the baseline
from its first reply in every run), prepares a
:class:`~voicereplay.simulate.session.ReplaySession` (recordings read, models loaded, the
caller's turns cut) and hands it to the mode (:mod:`voicereplay.simulate.modes`: scripted, turn,
adaptive), which writes ``stereo.wav``, ``customer.wav``, ``agent.wav`` and ``mixed.wav`` into
the output folder and returns the :class:`~voicereplay.models.Replay`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from voicereplay.errors import SimulationError
from voicereplay.models import Call, RecordingKind, Replay, ReplayMode
from voicereplay.simulate.modes import MODES
from voicereplay.simulate.plan import DEFAULT_ENDPOINTING
from voicereplay.simulate.session import ReplaySession, Stages
from voicereplay.simulate.stages import LanguageModel, SpeechToText, TextToSpeech
from voicereplay.simulate.tools import ToolServer
from voicereplay.snapshot import AgentSnapshot

__all__ = ["DEFAULT_ENDPOINTING", "ReplayEngine"]


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
    def stages(self) -> Stages:
        return Stages(self.stt, self.llm, self.tts_agent, self.tts_caller, self.caller_llm)

    @property
    def backends(self) -> dict[str, str]:
        return self.stages.backends

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
        run_mode = MODES.get(str(mode))
        if run_mode is None:
            raise SimulationError(f"unknown replay mode {mode!r}: use scripted, turn or adaptive")
        stages = self.stages
        for llm in dict.fromkeys(m for m in (stages.llm, stages.caller_llm) if m is not None):
            llm.reset()  # a new replay: a recorded LLM starts from the baseline's first reply
        session = ReplaySession(stages, call, snapshot, seed=seed, tools=tools, out_dir=out_dir,
                                on_progress=on_progress)
        session.prepare({str(kind): Path(path) for kind, path in recordings.items()})
        return run_mode(session)
