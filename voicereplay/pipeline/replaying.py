"""Replaying a stored call: snapshot + overrides → stages → engine → stored replays.

``replay_call`` picks the stage backends (the embedded offline defaults unless the snapshot or
the options name a reachable service), serves the recorded tool results, runs the engine
``runs`` times (one batch) and stores every replay with the snapshot it ran against. Nothing is
stored for a replay that fails: its audio directory is removed and the error raised.
"""

from __future__ import annotations

import inspect
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from voicereplay.checks import Check
from voicereplay.config import Settings
from voicereplay.errors import SimulationError, VoiceReplayError
from voicereplay.models import Call, Replay, ReplayMode, local_recordings, missing_recordings
from voicereplay.simulate.stages import LLMS, STT, TTS, LanguageModel
from voicereplay.snapshot import AgentSnapshot
from voicereplay.store import Store

__all__ = ["ReplayOptions", "build_llm", "replay_call"]

Progress = Callable[[str], None]


@dataclass
class ReplayOptions:
    """How to replay, beyond the agent itself (which the snapshot + overrides define)."""

    mode: ReplayMode = "scripted"
    model: str | None = None  # "local", "recorded", a .gguf path, or a model name
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm: str | None = None  # a registered LLM backend by name (a plugin's, a test's fake)
    stt: str = "faster-whisper"
    stt_model: str | None = None
    tts: str = "piper"
    caller_tts: str = "piper-caller"
    seed: int | None = None
    runs: int = 1
    live_tools: bool = False
    tool_mocks: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)  # attached to every replay


def build_llm(call: Call, snapshot: AgentSnapshot, options: ReplayOptions,
              settings: Settings | None = None) -> LanguageModel:
    """The LLM backend for this replay (see :func:`voicereplay.simulate.llm_endpoints`)."""
    from voicereplay.simulate.backends.recorded import recorded_steps
    from voicereplay.simulate.llm_endpoints import resolve_llm

    choice = options.model
    backend = options.llm
    if choice == "local":
        backend, choice = "llama-cpp", None
    elif choice == "recorded":
        backend, choice = "recorded", None
    name, kwargs = resolve_llm(snapshot.model, backend=backend, base_url=options.llm_base_url,
                               api_key=options.llm_api_key, model_name=choice,
                               env=settings.api_keys if settings else {})
    if name == "recorded":
        speaks_first = snapshot.first_message_mode == "agent-speaks-first"
        kwargs = {**kwargs, "steps": recorded_steps(call, skip_first_message=speaks_first)}
    return LLMS.create(name, **kwargs)


def replay_call(
    store: Store,
    call: Call,
    snapshot: AgentSnapshot,
    *,
    base_snapshot: AgentSnapshot | None = None,
    overrides: dict[str, Any] | None = None,
    options: ReplayOptions | None = None,
    settings: Settings | None = None,
    on_progress: Progress | None = None,
    batch_id: str | None = None,
    job_id: str | None = None,
) -> list[Replay]:
    """Replay ``call`` against ``snapshot`` ``options.runs`` times; returns the stored replays.

    ``batch_id`` names the batch and its folders ``replays/<batch_id>-<run>`` (default: a new
    random id); ``job_id`` links every replay to the background job that ran it."""
    from voicereplay.simulate.replay import ReplayEngine
    from voicereplay.simulate.tools import ToolServer

    options = options or ReplayOptions()
    say = on_progress or (lambda _message: None)
    if options.runs < 1:
        raise SimulationError("--runs must be at least 1")
    recordings = local_recordings(call.recordings)
    say("loading models")
    stt_options = {"model_path": options.stt_model} if options.stt_model else {}
    llm = build_llm(call, snapshot, options, settings)
    engine = ReplayEngine(
        stt=STT.create(options.stt, **stt_options),
        llm=llm,
        tts_agent=TTS.create(options.tts, **_seeded(TTS.factory(options.tts), options.seed)),
        tts_caller=TTS.create(options.caller_tts,
                              **_seeded(TTS.factory(options.caller_tts), options.seed)),
        caller_llm=llm if options.mode == "adaptive" else None,  # the simulated caller
    )
    batch_id = batch_id or uuid.uuid4().hex[:12]
    replays: list[Replay] = []
    for run in range(options.runs):
        seed = None if options.seed is None else options.seed + run
        tools = ToolServer(call, mocks=options.tool_mocks, live=options.live_tools,
                           live_url=_tool_url(snapshot))
        out_dir = store.artifacts.root / "replays" / f"{batch_id}-{run}"
        started = time.perf_counter()
        if options.runs > 1:
            say(f"run {run + 1} of {options.runs}")
        try:
            replay = engine.run(call, snapshot, recordings, mode=options.mode, seed=seed,
                                tools=tools, out_dir=out_dir, on_progress=say)
            replay = replay.model_copy(update={
                "snapshot_id": snapshot.id,
                "base_snapshot_id": base_snapshot.id if base_snapshot else None,
                "overrides": overrides or {},
                "seed": seed,
                "batch_id": batch_id,
                "job_id": job_id,
                "run_index": run,
                "created_at": datetime.now(UTC),
                "wall_seconds": time.perf_counter() - started,
                "checks": list(options.checks),
                "warnings": [*missing_recordings(call.recordings), *replay.warnings],
            })
            store.replays.save(replay, snapshot)
        except VoiceReplayError:
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
        replays.append(replay)
    return replays


def _seeded(factory: Callable[..., Any], seed: int | None) -> dict[str, Any]:
    """``{"seed": seed}`` for a backend whose constructor takes a seed (piper), else ``{}``."""
    if seed is None:
        return {}
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    accepts = "seed" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
    return {"seed": seed} if accepts else {}


def _tool_url(snapshot: AgentSnapshot) -> str | None:
    urls = {t.server_url for t in snapshot.tools if t.server_url}
    return next(iter(urls)) if len(urls) == 1 else None
