"""Everything ``voicereplay call`` does, for every face: :func:`run_call` and its neighbours.

``run_call(store, request)`` imports the call when it is not stored yet, takes its agent
snapshot, applies the request's overrides, replays (``runs`` times, one batch), compares each
replay with the call and writes the reports beside the replay's audio. The CLI, the web app,
the job workers and webhook triggers call it with a :class:`ReplayRequest`; none of them
strings these steps together on its own. :func:`show_replay` is ``replays show`` (the
comparison again, stored judge verdicts reused, nothing rewritten) and :func:`compare_stored`
is ``compare`` (any stored call with any stored replay).

Errors keep their type and exit code (a provider 401 during the import is an
:class:`~voicereplay.errors.AuthError`, exit 3). Ctrl-C during the comparison leaves the
replays stored and raises :class:`Interrupted`, which says how to write the reports later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from voicereplay.checks import Check
from voicereplay.compare.model import CheckResult, Comparison
from voicereplay.config import Settings
from voicereplay.errors import CallNotEnded, Interrupted, NotStoredError
from voicereplay.models import Call, Replay
from voicereplay.pipeline.comparing import compare_replay, stored_report
from voicereplay.pipeline.importing import import_calls, open_provider
from voicereplay.pipeline.replaying import ReplayOptions, replay_call
from voicereplay.pipeline.request import CallRef, ReplayRequest, ReportOptions, Secrets
from voicereplay.simulate.llm_endpoints import same_url
from voicereplay.snapshot import AgentSnapshot, diff
from voicereplay.store import Store

__all__ = ["Interrupted", "Progress", "ReplayResult", "checks_of", "compare_stored",
           "ensure_call", "run_call", "show_replay", "stored_call", "stored_judgements"]


@dataclass(frozen=True)
class Progress:
    """One step of a long run: ``stage`` is import, snapshot, replay or compare."""

    stage: str
    message: str
    warning: bool = False  # something a user should still see when the run is over

    def __str__(self) -> str:
        return self.message


OnProgress = Callable[[Progress], None]


@dataclass
class ReplayResult:
    """A stored replay, the call it replays, and its comparison with that call."""

    call: Call
    replay: Replay
    comparison: Comparison

    def to_json(self) -> dict[str, Any]:
        """The replay with its ``comparison`` (the same object as report.json)."""
        return {**self.replay.model_dump(mode="json"),
                "comparison": self.comparison.model_dump(mode="json")}


# Provider call statuses of a call that is still going on (Vapi; Retell).
NOT_ENDED = frozenset({"scheduled", "queued", "ringing", "in-progress", "forwarding",
                       "registered", "ongoing"})


def not_ended(call: Call) -> bool:
    """Is the call still going on? A stale status beside an end time or an ended reason (as
    in Vapi's end-of-call report, whose ``call`` is the call as created) does not count."""
    return (call.status or "").lower() in NOT_ENDED and call.ended_at is None \
        and not call.ended_reason


def stored_call(store: Store, ref: CallRef) -> Call | None:
    """The stored call ``ref`` names (None when it is not stored, or ``ref`` names a folder
    to import from)."""
    if ref.directory is not None:
        return None
    try:
        return store.get_call(ref.call_id, ref.provider if ref.provider != "files" else None)
    except NotStoredError:
        return None


def ensure_call(store: Store, ref: CallRef, *, settings: Settings, secrets: Secrets,
                say: OnProgress) -> Call:
    """The stored call, imported first when it is not stored yet (or a folder is named, or
    the stored copy was taken before the call ended). A call that has not ended is a
    :class:`CallNotEnded` (retryable: a background job tries again later)."""
    stored = stored_call(store, ref)
    if stored is not None:
        if not not_ended(stored):
            return stored
        ref = ref.model_copy(update={"provider": stored.provider})
    call = _import_call(store, ref, settings=settings, secrets=secrets, say=say)
    if not_ended(call):
        raise CallNotEnded(f"call {call.call_id} is still {call.status} at {call.provider}; "
                           "replay it once it has ended (its recordings are not final)",
                           provider=call.provider)
    return call


def _import_call(store: Store, ref: CallRef, *, settings: Settings, secrets: Secrets,
                 say: OnProgress) -> Call:
    name = "files" if ref.directory is not None else ref.provider or "vapi"
    say(Progress("import", f"importing call {ref.call_id} from {name}"))
    with open_provider(name, settings, directory=ref.directory, base_url=ref.base_url,
                       api_key=secrets.provider_api_key) as source:
        [outcome] = import_calls(store, source, [ref.call_id],
                                 concurrency=settings.download_concurrency)
    if not outcome.ok:
        if outcome.exception is not None:
            raise outcome.exception
        raise NotStoredError(f"could not import call {ref.call_id}: {outcome.error}")
    for warning in outcome.warnings:
        say(Progress("import", warning, warning=True))
    return store.get_call(outcome.call_id or ref.call_id, outcome.provider)


def _base_snapshot(store: Store, call: Call) -> AgentSnapshot:
    base = store.snapshot_for_call(call.call_id, call.provider)
    if base is None:
        raise NotStoredError(
            f"call {call.call_id} has no agent snapshot to replay against; re-import it with "
            "access to its assistant/agent config (API key, or the config JSON beside the file)"
        )
    return base


def replay_options(request: ReplayRequest, settings: Settings, secrets: Secrets
                   ) -> ReplayOptions:
    """The engine's options for ``request`` (keys from ``secrets``, else the settings). The
    configured ``VOICEREPLAY_LLM_API_KEY`` only goes to the configured endpoint: a request (a
    job, a web form) naming another URL gets no key from the settings."""
    url = request.llm_base_url or settings.llm_base_url
    configured = url is not None and settings.llm_base_url is not None and same_url(
        settings.llm_base_url, url)
    return ReplayOptions(
        mode=request.mode, model=request.model,
        llm_base_url=url,
        llm_api_key=secrets.llm_api_key or (settings.llm_api_key if configured or url is None
                                            else None),
        seed=request.seed, runs=request.runs, live_tools=request.live_tools,
        tool_mocks=dict(request.tool_mocks), stt_model=request.stt_model,
        llm=request.llm, stt=request.stt, tts=request.tts, caller_tts=request.caller_tts,
        checks=list(request.checks))


def run_call(
    store: Store,
    request: ReplayRequest,
    on_progress: OnProgress | None = None,
    *,
    settings: Settings | None = None,
    secrets: Secrets | None = None,
    batch_id: str | None = None,
    job_id: str | None = None,
    agent: AgentSnapshot | None = None,
) -> list[ReplayResult]:
    """Replay the request's call and compare every run with it (see the module docs).
    ``batch_id`` and ``job_id``: see :func:`~voicereplay.pipeline.replaying.replay_call`.
    ``agent``: replay against this agent instead of the call's own snapshot (the request's
    overrides apply on top; the replay's overrides are what differs from the call's own
    snapshot) — how ``voicereplay test --agent`` swaps the agent under test."""
    settings = settings or Settings.from_env()
    secrets = secrets or Secrets()
    say = on_progress or (lambda _progress: None)
    _similarity_ready(request.report.similarity or settings.similarity)
    call = ensure_call(store, request.call, settings=settings, secrets=secrets, say=say)
    base = _base_snapshot(store, call)
    snapshot = (agent or base).apply(request.agent_overrides())
    overrides = {c.path: c.after for c in diff(base, snapshot)}
    replays = replay_call(
        store, call, snapshot, base_snapshot=base, overrides=overrides,
        options=replay_options(request, settings, secrets), settings=settings,
        on_progress=lambda message: say(Progress("replay", message)),
        batch_id=batch_id, job_id=job_id)
    results: list[ReplayResult] = []
    try:
        for n, replay in enumerate(replays, start=1):
            if len(replays) > 1:
                say(Progress("compare", f"comparing run {n} of {len(replays)}"))
            else:
                say(Progress("compare", "comparing with the call"))
            comparison = compare_replay(
                store, call, replay, batch=replays, checks=request.checks,
                report=request.report, settings=settings, judge_api_key=secrets.judge_api_key)
            results.append(ReplayResult(call, replay, comparison))
    except KeyboardInterrupt:
        missing = [r.id[:12] for r in replays[len(results):]]
        raise Interrupted(
            f"interrupted while comparing: {len(replays)} replay(s) are stored; write the "
            f"missing reports with `voicereplay compare {call.call_id} {missing[0]}`"
            + (f" (and {', '.join(missing[1:])})" if len(missing) > 1 else "")) from None
    return results


def _similarity_ready(name: str | None) -> None:
    """Fail before a long replay on a similarity the comparison could not use."""
    from voicereplay.compare.similarity import scorer

    scorer(name)


def checks_of(replay: Replay) -> list[Check]:
    """The checks attached to a stored replay."""
    return list(replay.checks)


def stored_judgements(replay: Replay) -> dict[tuple[str, str], CheckResult]:
    """llm_judge results in the replay's report.json, so showing a replay does not re-judge."""
    try:
        results = [CheckResult.model_validate(c) for c in stored_report(replay).get("checks", [])]
    except (TypeError, ValueError):
        return {}
    return {(c.type, c.name): c for c in results if c.type == "llm_judge"}


def show_replay(store: Store, replay_id: str, *, similarity: str | None = None,
                settings: Settings | None = None) -> ReplayResult:
    """A stored replay and its comparison again: no file rewritten, no judge asked again
    (the verdicts stored in report.json are shown)."""
    replay = store.replays.get(replay_id)
    call = store.get_call(replay.call_id, replay.call_provider)
    checks = checks_of(replay)
    judged = stored_judgements(replay)
    report = ReportOptions.model_validate({"similarity": similarity, "figures": None})
    comparison = compare_replay(store, call, replay, report=report, write=False,
                                checks=[c for c in checks if c.type != "llm_judge"],
                                settings=settings)
    for check in checks:
        if check.type == "llm_judge":
            comparison.checks.append(judged.get(("llm_judge", check.label), CheckResult(
                name=check.label, type="llm_judge", status="error",
                message="no stored verdict; `voicereplay compare` judges it again")))
    return ReplayResult(call, replay, comparison)


def compare_stored(
    store: Store,
    call_id: str,
    replay_id: str,
    *,
    provider: str | None = None,
    checks: Sequence[Check] | None = None,
    report: ReportOptions | None = None,
    settings: Settings | None = None,
    secrets: Secrets | None = None,
) -> ReplayResult:
    """Compare any stored call with any stored replay and write the reports. ``checks`` None:
    the checks attached to the replay."""
    call = store.get_call(call_id, provider)
    replay = store.replays.get(replay_id)
    comparison = compare_replay(
        store, call, replay, checks=checks_of(replay) if checks is None else checks,
        report=report, settings=settings,
        judge_api_key=(secrets or Secrets()).judge_api_key)
    if (replay.call_provider, replay.call_id) != (call.provider, call.call_id):
        comparison.warnings.insert(0, f"replay {replay.id[:12]} replays call "
                                      f"{replay.call_provider}:{replay.call_id}, not {call.key}")
    return ReplayResult(call, replay, comparison)
