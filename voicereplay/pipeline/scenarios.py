"""Saving a stored replay or call as a scenario, and running one scenario through ``run_call``.

**Saving** (:func:`save_scenario`, ``voicereplay save``): from a stored replay — its call, the
snapshot it ran against, its checks, mode, seed and the number of runs in its batch — or from a
stored call (its own snapshot; checks only when given), write ``<name>.voicereplay.yaml``
(:mod:`voicereplay.scenario`) and cut the caller's audio segments into ``<name>.voicereplay/``
beside it with the replay engine's own cutting code
(:func:`~voicereplay.simulate.caller.original_segments`: the same track, the same padding).
Both are written into a temporary folder in the target directory and renamed into place, so a
failed save leaves nothing half-written; an existing scenario is only replaced with ``force``.

**Running** (:func:`run_scenario`): a scenario does not need the store's copy of its call. Its
call is *materialized*: the turns become a :class:`~voicereplay.models.Call` and the audio
segments are laid back on a silent customer track at the times they were cut from (so the
engine's caller code cuts exactly the same segments again — no second replay path), stored
as that call's ``customer`` recording, with the scenario's agent as the call's snapshot. The
materialized call is stored under the source call's provider with the id
``<scenario name>@<8 hex of its content>`` — never over the source call itself, which may be
in the store with its full payload (and, for a redacted scenario, with what was redacted), and
content-addressed so every replay keeps the baseline it was compared with even when the
scenario file is edited. The baseline is therefore always the scenario's content, whatever the
store holds, and a scenario gives the same verdict on a developer's machine and in an empty CI
store. The replay then goes through :func:`~voicereplay.pipeline.calling.run_call` (its
``agent`` argument swaps in ``--agent``), so it is stored with its comparison and reports like
any other replay.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voicereplay.audio import Audio, load_channels, resample, write_wav
from voicereplay.checks import Check
from voicereplay.config import Settings
from voicereplay.errors import ConfigError, NotStoredError, StoreError
from voicereplay.models import Call, Recording, Replay, local_recordings
from voicereplay.pipeline.calling import Progress, ReplayResult, run_call
from voicereplay.pipeline.request import CallRef, ReplayRequest, ReportOptions, Secrets
from voicereplay.scenario import (
    SUFFIX,
    AgentFile,
    Scenario,
    ScenarioTurn,
    SourceCall,
    dump_scenario,
    safe_name,
)
from voicereplay.simulate.caller import PAD, CallerSegment, original_segments
from voicereplay.simulate.plan import load_recordings
from voicereplay.snapshot import AgentSnapshot
from voicereplay.store import Store

__all__ = ["REDACT_UNAVAILABLE", "Redactor", "SavedScenario", "default_name", "materialize",
           "run_scenario", "save_scenario", "scenario_from"]

REDACT_UNAVAILABLE = ("redact=True needs a redactor: pass "
                      "voicereplay.pipeline.scenario_redaction.ScenarioRedaction()")

# The redaction engine's hook: it gets the scenario and its caller audio segments (keyed by
# the ``audio`` path of the caller entry each is written to) before anything is written, and
# returns both redacted.
Segments = dict[str, CallerSegment]
Redactor = Callable[[Scenario, Segments], tuple[Scenario, Segments]]


@dataclass(frozen=True)
class SavedScenario:
    path: Path  # the YAML file
    folder: Path  # the audio segments' folder beside it
    scenario: Scenario
    segments: int  # caller turns with an audio segment


def default_name(call: Call) -> str:
    """``vapi-dfed92e7``: the provider and the start of the call id (after Retell's
    ``call_``), sanitized."""
    return safe_name(f"{call.provider}-{call.call_id.removeprefix('call_')[:8]}")


def _resolve(store: Store, ref: str, provider: str | None) -> tuple[Call, Replay | None]:
    """The replay ``ref`` names (id or prefix) and its call, else the call ``ref`` names."""
    try:
        replay = store.replays.get(ref)
    except NotStoredError as exc:
        replay, why = None, exc
    if replay is not None:
        return store.get_call(replay.call_id, replay.call_provider), replay
    try:
        return store.get_call(ref, provider), None
    except NotStoredError:
        if "ambiguous" in why.message:
            raise why from None
        raise NotStoredError(f"{ref} is neither a stored replay nor a stored call; "
                             "`voicereplay replays list` and `voicereplay calls list` show "
                             "them") from None


def scenario_from(store: Store, ref: str, *, name: str | None = None,
                  provider: str | None = None, checks: Sequence[Check] | None = None
                  ) -> tuple[Scenario, Segments]:
    """The scenario for a stored replay or call (``ref``) and its caller audio segments
    (by the caller entry's ``audio`` path), nothing written yet."""
    call, replay = _resolve(store, ref, provider)
    if replay is not None:
        snapshot = store.get_snapshot(replay.snapshot_id)
        runs = len(store.replays.list(batch_id=replay.batch_id, limit=None)) \
            if replay.batch_id else 1
        seed = None if replay.seed is None else replay.seed - replay.run_index
        mode, saved_checks = replay.mode, list(replay.checks)
    else:
        own = store.snapshot_for_call(call.call_id, call.provider)
        if own is None:
            raise NotStoredError(f"call {call.call_id} has no agent snapshot to save as the "
                                 "agent under test; re-import it with its assistant/agent "
                                 "config")
        snapshot, runs, seed, mode, saved_checks = own, 1, None, "scripted", []
    if checks is not None:
        saved_checks = list(checks)
    name = safe_name(name) if name else default_name(call)
    files = {str(kind): path for kind, path in local_recordings(call.recordings).items()}
    found = original_segments(call, load_recordings(files))
    segments: Segments = {}
    turns: list[ScenarioTurn] = []
    placed: dict[int, int] = {}  # call turn index → scenario turn index
    number = 0
    for index, turn in enumerate(call.turns):
        placed[index] = len(turns)
        audio = None
        segment = found.get(index)
        if turn.role == "user":
            number += 1
            if isinstance(segment, CallerSegment):
                audio = f"{name}.voicereplay/caller-{number:02d}.wav"
                segments[audio] = segment
        entry = ScenarioTurn.from_turn(turn, audio)
        if entry is not None:
            turns.append(entry)
    scenario = Scenario(
        name=name, source=SourceCall(provider=call.provider, call_id=call.call_id,
                                     started_at=call.started_at,
                                     replay_id=replay.id if replay else None),
        checks=saved_checks, agent=AgentFile.of(snapshot), mode=mode, seed=seed,
        runs=min(max(runs, 1), 50), turns=turns,
        knowledge=[k.model_copy(update={"turn": None if k.turn is None else placed.get(k.turn)})
                   for k in call.knowledge])
    return scenario, segments


def save_scenario(store: Store, ref: str, directory: Path, *, name: str | None = None,
                  provider: str | None = None, checks: Sequence[Check] | None = None,
                  force: bool = False, redactor: Redactor | None = None,
                  redact: bool = False) -> SavedScenario:
    """Write the scenario of ``ref`` (a stored replay or call) into ``directory`` (see the
    module docs). ``redactor`` (e.g. :class:`~voicereplay.pipeline.scenario_redaction.
    ScenarioRedaction`) redacts the scenario and its audio before anything is written;
    ``redact`` without one is a ConfigError."""
    if redact and redactor is None:
        raise ConfigError(REDACT_UNAVAILABLE)
    scenario, segments = scenario_from(store, ref, name=name, provider=provider, checks=checks)
    if redactor is not None:
        scenario, segments = redactor(scenario, segments)
    directory = Path(directory)
    path = directory / f"{scenario.name}{SUFFIX}"
    folder = directory / f"{scenario.name}.voicereplay"
    if (path.exists() or folder.exists()) and not force:
        raise ConfigError(f"{path} exists; pass --force to replace it (or --name to save "
                          "under another name)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{scenario.name}.", dir=directory))
    except OSError as exc:
        raise StoreError(f"cannot write into {directory}: {exc.strerror or exc}") from exc
    try:
        audio_dir = staging / folder.name
        audio_dir.mkdir()
        for entry in scenario.turns:
            segment = segments.get(entry.audio) if entry.audio else None
            if entry.audio and segment is not None:
                write_wav(staging / entry.audio, [segment.audio])
        (staging / path.name).write_text(dump_scenario(scenario), encoding="utf-8")
        _swap_in(staging, [(audio_dir, folder), (staging / path.name, path)])
    except OSError as exc:
        raise StoreError(f"cannot write the scenario {path}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SavedScenario(path, folder, scenario, sum(1 for t in scenario.turns if t.audio))


def _swap_in(staging: Path, moves: list[tuple[Path, Path]]) -> None:
    """Move each new file/folder onto its target; what was there goes into ``staging`` first
    and comes back if a move fails (``staging`` is removed afterwards either way)."""
    old = staging / "replaced"
    old.mkdir()
    kept: list[tuple[Path, Path]] = []
    done: list[Path] = []
    try:
        for n, (_new, target) in enumerate(moves):
            if target.exists():
                os.replace(target, old / str(n))
                kept.append((old / str(n), target))
        for new, target in moves:
            os.replace(new, target)
            done.append(target)
    except OSError:
        for target in done:
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        for backup, target in kept:
            os.replace(backup, target)
        raise


# ---- running ------------------------------------------------------------------------------

def _caller_track(scenario: Scenario, call: Call) -> Audio | None:
    """The scenario's audio segments laid on a silent track where they were cut from."""
    placed: list[tuple[float, Audio]] = []
    for entry in scenario.turns:
        if entry.caller is None or not entry.audio:
            continue
        file = scenario.folder / entry.audio
        if not file.is_file():
            raise ConfigError(f"{scenario.path or scenario.name}: caller audio {entry.audio} "
                              f"is missing (looked for {file})")
        channels = load_channels(file)
        placed.append((max(0.0, (entry.start or 0.0) - PAD), channels[0]))
    if not placed:
        return None
    rate = placed[0][1].rate
    placed = [(at, a if a.rate == rate else resample(a, rate)) for at, a in placed]
    end = max(max(at + a.duration for at, a in placed), call.duration or 0.0)
    track = Audio.silence(end + PAD, rate).samples.copy()
    for at, audio in placed:
        first = round(at * rate)
        track[first:first + len(audio.samples)] = audio.samples[:len(track) - first]
    return Audio(track, rate)


def materialize(store: Store, scenario: Scenario,
                agent: AgentSnapshot | None = None) -> Call:
    """Store the scenario's call (its turns, its caller audio as the ``customer`` recording,
    its agent as the call's snapshot) and return it; see the module docs for its id."""
    agent = agent or scenario.agent_snapshot()
    call = scenario.call()
    track = _caller_track(scenario, call)
    digest = hashlib.sha256(json.dumps(call.model_dump(mode="json"), sort_keys=True,
                                       default=str).encode())
    recordings: list[Recording] = []
    if track is not None:
        with tempfile.TemporaryDirectory(dir=store.artifacts.root.parent) as tmp:
            blob = store.artifacts.put_file(write_wav(Path(tmp) / "customer.wav", [track]))
        digest.update(blob.sha256.encode())
        recordings.append(Recording(kind="customer", path=str(blob.path), sha256=blob.sha256,
                                    size=blob.size))
    call = call.model_copy(update={
        "call_id": f"{scenario.name}@{digest.hexdigest()[:8]}", "recordings": recordings,
        "metadata": {**call.metadata, "source_call": f"{call.provider}:{call.call_id}"}})
    store.save_call(call, agent)
    return call


def run_scenario(
    store: Store,
    scenario: Scenario,
    *,
    agent: AgentSnapshot | None = None,
    runs: int | None = None,
    request: dict[str, object] | None = None,
    report: ReportOptions | None = None,
    settings: Settings | None = None,
    secrets: Secrets | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> list[ReplayResult]:
    """Replay ``scenario`` (``runs`` times, default the scenario's) and compare every run with
    its baseline; ``agent`` replaces the scenario's agent under test; ``request`` holds the
    stage choices of a :class:`ReplayRequest` (model, llm_base_url, llm, stt, tts,
    caller_tts, stt_model)."""
    settings = settings or Settings.from_env()
    call = materialize(store, scenario)
    replay_request = ReplayRequest.checked(
        call=CallRef(call_id=call.call_id, provider=call.provider).model_dump(),
        mode=scenario.mode, seed=scenario.seed, runs=runs or scenario.runs,
        checks=[c.model_dump(mode="json") for c in scenario.checks],
        tool_mocks=dict(scenario.mocks),
        report=(report or ReportOptions()).model_dump(mode="json"), **(request or {}))
    return run_call(store, replay_request, on_progress, settings=settings, secrets=secrets,
                    agent=agent)
