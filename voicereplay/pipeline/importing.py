"""Importing calls: provider → normalized call + snapshot + recordings → store.

Importing streams: calls are fetched lazily, their recordings downloaded by a
bounded pool of threads, and each finished call is saved in its own transaction, so memory stays
flat however many calls an import covers and one bad call never stops the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from voicereplay import knowledge
from voicereplay.artifacts import Blob
from voicereplay.config import Settings
from voicereplay.errors import ConfigError, NotStoredError, RecordingError, VoiceReplayError
from voicereplay.models import Call, Recording
from voicereplay.providers import CallProvider, create
from voicereplay.recording_check import recording_problem, transcript_end
from voicereplay.snapshot import AgentSnapshot
from voicereplay.store import Store

__all__ = ["ImportOutcome", "import_by_ids", "import_calls", "open_provider"]

Status = Literal["created", "updated", "unchanged", "failed"]
_WITHOUT_IT = "the call is imported without it (a scripted replay synthesizes the caller)"


@dataclass
class ImportOutcome:
    """What happened to one call (or one file) during an import.

    It names the call but does not hold it, so a long import keeps no calls in memory.
    """

    source: str
    status: Status
    provider: str | None = None
    call_id: str | None = None
    snapshot_id: str | None = None
    recordings: list[str] = field(default_factory=list)
    error: str | None = None
    exit_code: int = 0
    warnings: list[str] = field(default_factory=list)
    exception: VoiceReplayError | None = field(default=None, repr=False)
    # Recordings that could not be downloaded (kind → the error); the call is stored without
    # them. A recording that downloaded but is not usable audio is only a warning.
    not_downloaded: dict[str, RecordingError] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def fail(self, exc: VoiceReplayError) -> ImportOutcome:
        self.status, self.error, self.exit_code = "failed", str(exc), exc.exit_code
        self.exception = exc
        return self


@dataclass
class _Prepared:
    """A call fetched, snapshotted and downloaded in a worker, waiting to be saved."""

    outcome: ImportOutcome
    call: Call | None = None
    snapshot: AgentSnapshot | None = None
    new_blobs: list[Blob] = field(default_factory=list)  # removed again if the save fails


def open_provider(
    name: str,
    settings: Settings | None = None,
    *,
    directory: Path | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    **options: Any,
) -> CallProvider:
    """Build a provider from settings, with explicit options taking precedence."""
    settings = settings or Settings.from_env()
    if name in ("vapi", "retell"):
        env = f"{name.upper()}_API_KEY"
        api_key = api_key or getattr(settings, f"{name}_api_key")
        base_url = base_url or getattr(settings, f"{name}_base_url")
        if not api_key:
            raise ConfigError(
                f"no {name.capitalize()} API key: set {env} or pass --api-key "
                "(or import exported JSON with --dir)"
            )
        options.setdefault("timeout", settings.http_timeout)
        options.setdefault("settings", settings)
    return create(name, directory=directory, api_key=api_key, base_url=base_url, **options)


def import_calls(
    store: Store,
    provider: CallProvider,
    call_ids: Iterable[str] = (),
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    recordings: bool = True,
    concurrency: int = 8,
    on_outcome: Callable[[ImportOutcome], None] | None = None,
) -> list[ImportOutcome]:
    """Import calls into ``store``: the ids given, else every call the provider lists.

    Returns one outcome per call or file; failures are outcomes, not exceptions, except for
    errors that stop the listing itself (bad key, unreachable provider).
    """
    outcomes: list[ImportOutcome] = []
    pending: set[Future[_Prepared]] = set()

    def finish(done: Iterable[Future[_Prepared]]) -> None:
        for future in done:
            outcome = _save(store, future.result())
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for source, item in _sources(provider, list(call_ids), since, until, limit):
            if isinstance(item, VoiceReplayError):
                finish([_done(_Prepared(ImportOutcome(source, "failed").fail(item)))])
                continue
            pending.add(pool.submit(_prepare, store, provider, source, item, recordings))
            if len(pending) >= 2 * max(1, concurrency):
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                finish(done)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            finish(done)
    return outcomes


def import_by_ids(store: Store, settings: Settings, provider: str, call_ids: Iterable[str],
                  *, base_url: str | None = None) -> list[ImportOutcome]:
    """Import these calls from a provider API with the settings' key (the web app's import):
    one outcome per id, failures included."""
    with open_provider(provider, settings, base_url=base_url) as source:
        return import_calls(store, source, list(call_ids),
                            concurrency=settings.download_concurrency)


# -- internals ----------------------------------------------------------------------------------
def _sources(
    provider: CallProvider,
    call_ids: list[str],
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
) -> Iterator[tuple[str, Call | VoiceReplayError]]:
    from voicereplay.providers.files import FilesProvider

    if call_ids:
        for call_id in call_ids:
            try:
                yield call_id, provider.get_call(call_id)
            except VoiceReplayError as exc:
                yield call_id, exc
        return
    if isinstance(provider, FilesProvider) and since is None and until is None:
        count = 0
        for file, result in provider.iter_loaded():
            yield file.path.name, result
            count += 1
            if limit is not None and count >= limit:
                return
        return
    for call in provider.list_calls(since=since, until=until, limit=limit):
        yield call.call_id, call


def _prepare(
    store: Store, provider: CallProvider, source: str, call: Call, recordings: bool
) -> _Prepared:
    """Snapshot and download one call (runs in a worker thread; writes no rows)."""
    outcome = ImportOutcome(source, "created", provider=call.provider, call_id=call.call_id)
    prepared = _Prepared(outcome, call)
    try:
        prepared.snapshot = provider.get_snapshot(call)
        outcome.snapshot_id = prepared.snapshot.id
    except VoiceReplayError as exc:
        outcome.warnings.append(f"no agent snapshot: {exc}")
    call = _with_knowledge(store, provider, call, prepared.snapshot)
    outcome.warnings.extend(call.warnings)
    prepared.call = call
    if recordings and call.recordings:
        with store.artifacts.track() as written:
            try:
                fetched = _download(store, provider, call, outcome)
            except VoiceReplayError as exc:
                store.discard_unreferenced(written)  # no orphans from a half-done download
                outcome.fail(exc)
                return prepared
        kept = _checked(provider, call, fetched, outcome)
        kept_shas = {r.sha256 for r in kept}
        prepared.new_blobs = [b for b in written if b.sha256 in kept_shas]
        store.discard_unreferenced([b for b in written if b.sha256 not in kept_shas])
        prepared.call = call.model_copy(update={"recordings": kept})
    return prepared


def _with_knowledge(store: Store, provider: CallProvider, call: Call,
                    snapshot: AgentSnapshot | None) -> Call:
    """``call`` with its knowledge-base context: behind a URL (Retell), or in the results of
    the snapshot's knowledge-base tools. When the URL fails (it expires after a day), the
    contexts a previous import stored are kept rather than lost."""
    fetched = provider.fetch_knowledge(call)
    fetched = knowledge.from_tool_results(fetched, knowledge.tool_names(snapshot))
    failed = len(fetched.warnings) > len(call.warnings)
    if not failed or any(k.source == "retell-url" for k in fetched.knowledge):
        return fetched
    try:
        before = [k for k in store.get_call(call.call_id, call.provider).knowledge
                  if k.source == "retell-url"]
    except NotStoredError:
        return fetched
    if not before:
        return fetched
    note = f"kept the {len(before)} knowledge-base context(s) imported before"
    return fetched.model_copy(update={"knowledge": [*fetched.knowledge, *before],
                                      "warnings": [*fetched.warnings, note]})


def _checked(provider: CallProvider, call: Call, fetched: list[Recording],
             outcome: ImportOutcome) -> list[Recording]:
    """The recordings that can be replayed; each other one becomes a warning naming its file."""
    end = transcript_end(call.turns)
    kept: list[Recording] = []
    for recording in fetched:
        problem = (recording_problem(Path(recording.path), recording.kind, call_end=end)
                   if recording.path else None)
        if problem is None:
            kept.append(recording)
            continue
        outcome.warnings.append(
            f"{recording.kind} recording {_source_name(provider, call, recording)} {problem}; "
            f"{_WITHOUT_IT}")
    return kept


def _source_name(provider: CallProvider, call: Call, recording: Recording) -> str:
    """The file (for an exported folder) or URL the recording came from."""
    from voicereplay.providers.files import FilesProvider

    if isinstance(provider, FilesProvider):
        try:  # FilesProvider has no public "file of this recording" yet
            local = provider._file_for(call.call_id).recordings.get(recording.kind)
        except (VoiceReplayError, AttributeError):
            local = None
        if local is not None:
            return Path(local).name
    return recording.url or "(no URL)"


def _download(store: Store, provider: CallProvider, call: Call,
              outcome: ImportOutcome) -> list[Recording]:
    """The call's recordings in the store; one that is not audio becomes a warning."""
    known = _stored_recordings(store, call)
    fetched: list[Recording] = []
    for recording in call.recordings:
        previous = known.get(recording.kind)
        if (
            previous is not None
            and previous.url is not None
            and previous.url == recording.url
            and previous.path
            and Path(previous.path).exists()
        ):
            fetched.append(previous)
            continue
        try:
            fetched.append(provider.fetch_recording(call, recording, store.artifacts))
        except RecordingError as exc:
            outcome.not_downloaded[recording.kind] = exc
            outcome.warnings.append(f"{recording.kind} recording "
                                    f"{_source_name(provider, call, recording)}: {exc}; "
                                    f"{_WITHOUT_IT}")
    return fetched


def _stored_recordings(store: Store, call: Call) -> dict[str, Recording]:
    try:
        stored = store.get_call(call.call_id, call.provider)
    except NotStoredError:
        return {}
    return {r.kind: r for r in stored.recordings if r.sha256}


def _save(store: Store, prepared: _Prepared) -> ImportOutcome:
    outcome, call = prepared.outcome, prepared.call
    if call is None or outcome.status == "failed":
        return outcome
    try:
        outcome.status = store.save_call(call, prepared.snapshot)
        outcome.recordings = [r.kind for r in call.recordings if r.sha256]
    except VoiceReplayError as exc:
        store.discard_unreferenced(prepared.new_blobs)
        outcome.fail(exc)
    return outcome


def _done(prepared: _Prepared) -> Future[_Prepared]:
    future: Future[_Prepared] = Future()
    future.set_result(prepared)
    return future
