"""Background replay jobs: submit a :class:`ReplayRequest`, and run one attempt of a job safely.

:func:`submit_replay` stores a PENDING job in the jobs table (the idempotency key defaults to
the call and a hash of the request, so submitting the same request twice gives the same job).
:func:`run_job` is what a worker does with a job id the queue hands it:

1. **claim** the job (a conditional update: only a PENDING job, or a RUNNING one whose lease
   expired) — when another worker holds it, or it is finished, there is nothing to do;
2. remove what earlier attempts left (replays and folders of a worker that was killed);
3. run :func:`~voicereplay.pipeline.calling.run_call` with this attempt's own batch id, so its
   replay folders are ``replays/<job>a<attempt>-<run>``, while a heartbeat thread extends the
   lease and records the stage the replay is in;
4. **complete** the job with a conditional update on this attempt — refused when the attempt
   was superseded (its lease lapsed and another worker took over) or the job was cancelled, and
   then this attempt's replays and folders are removed, so a job completes exactly once and
   leaves no orphaned audio.

Failures are sorted: a retryable error (a 429 with its ``Retry-After``, a 5xx, a timeout, a
recording the provider is still processing) or an unexpected one puts the job back to PENDING
with a backoff while attempts are left; a known permanent one (bad overrides, an unknown model,
corrupt audio, a 401) fails it at once with the reason. A worker that is stopping (SIGTERM,
SIGINT) hands its running attempt back: the job is PENDING again and the attempt not counted.

Keys are never stored in a job: a background replay uses the keys of the worker's settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from voicereplay.compare.aggregate import CallRow
from voicereplay.config import Settings
from voicereplay.errors import ConfigError, RequestError, VoiceReplayError
from voicereplay.pipeline.calling import Progress, run_call, stored_call
from voicereplay.pipeline.request import ReplayRequest
from voicereplay.retry import RetryPolicy
from voicereplay.store import Store
from voicereplay.store.jobs import Job

__all__ = ["RUNNERS", "JobContext", "JobOutcome", "JobResult", "JobRunner", "Submit", "Worker",
           "attempt_batch", "request_key", "run_job", "run_replay", "submit_replay"]

log = logging.getLogger(__name__)

PROGRESS_EVERY = 2.0  # seconds between progress writes of a running job (at most)

# Backoff between attempts of a job: 5 s, 10 s, 20 s … up to 5 minutes (or the Retry-After).
JOB_BACKOFF = RetryPolicy(attempts=100, backoff=5.0, max_backoff=300.0, jitter=0.2,
                          max_retry_after=600.0)


KEY_LENGTH = 255  # the jobs table's idempotency_key column


def request_key(request: ReplayRequest) -> str:
    """The default idempotency key: the call and a hash of the whole request."""
    body = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(body.encode()).hexdigest()[:24]
    key = f"replay:{request.call.provider or ''}:{request.call.call_id}:{digest}"
    return key if len(key) <= KEY_LENGTH else f"replay:{digest}"  # the hash covers the call


def submit_replay(store: Store, request: ReplayRequest, *, key: str | None = None,
                  max_attempts: int = 3) -> tuple[Job, bool]:
    """Store a PENDING replay job for ``request`` (the stored one when the key is known);
    ``True`` when it is new. Delivering it to a worker is the queue's part. A stored call is
    named by its full id and provider, so the call's history finds the job."""
    if key is not None and not 0 < len(key) <= KEY_LENGTH:
        raise ConfigError(f"an idempotency key has 1 to {KEY_LENGTH} characters, not "
                          f"{len(key)}")
    ref = request.call
    stored = stored_call(store, ref)
    call: tuple[str | None, str] = ((stored.provider, stored.call_id) if stored is not None
                                    else (ref.provider, ref.call_id))
    return store.jobs.enqueue("replay", request.model_dump(mode="json"),
                              key or request_key(request), max_attempts=max_attempts,
                              call=call)


def attempt_batch(job: Job) -> str:
    """The batch id of ``job``'s current attempt; its folders are ``replays/<batch>-<run>``."""
    return f"{job.id[:12]}a{job.attempt}"


@dataclass
class Worker:
    """Who runs jobs: an id for the jobs table, the settings it runs with, the lease it takes,
    and ``stopping`` — set when the worker shuts down, so running attempts hand their jobs
    back at the next progress step."""

    settings: Settings
    id: str = field(default_factory=lambda: f"{socket.gethostname()[:100]}:{os.getpid()}:"
                                            f"{uuid.uuid4().hex[:6]}")  # ≤ 128 characters
    lease: float | None = None  # seconds; None: settings.job_lease
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def lease_seconds(self) -> float:
        return self.lease if self.lease is not None else self.settings.job_lease


@dataclass(frozen=True)
class JobOutcome:
    """What one call of :func:`run_job` did. ``retry_in``: seconds until the next attempt."""

    status: Literal["completed", "failed", "retry", "released", "superseded", "skipped"]
    job: Job | None = None
    retry_in: float | None = None


class _AttemptEnds(BaseException):  # noqa: N818 - not an error: like GeneratorExit
    """Stops a running attempt from inside its progress callback; a BaseException so the
    engine's error handling does not turn it into a failed replay."""


class _Stopping(_AttemptEnds):
    pass


class _Superseded(_AttemptEnds):
    pass


class _Heartbeat:
    """Extends the attempt's lease every third of it and records its latest stage; notices
    when the attempt no longer holds the job (lease lapsed and taken over, or cancelled)."""

    def __init__(self, store: Store, job: Job, lease: float) -> None:
        self.store, self.job, self.lease = store, job, lease
        self.lost = threading.Event()
        self._done = threading.Event()
        self._stage: tuple[str, str] | None = None
        self._written: tuple[str, str] | None = None
        self._written_at = 0.0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job.id[:8]}",
                                        daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def note(self, progress: Progress) -> None:
        """Remember the stage; a new stage is written at once, a new message when the last
        write is :data:`PROGRESS_EVERY` seconds old (else on the next beat)."""
        with self._lock:
            new_stage = self._stage is None or self._stage[0] != progress.stage
            self._stage = (progress.stage, progress.message)
        if new_stage or time.monotonic() - self._written_at >= PROGRESS_EVERY:
            self._write()

    def _write(self) -> None:
        with self._lock:
            stage = self._stage
        if stage is None or stage == self._written:
            return
        try:
            if not self.store.jobs.progress(self.job, *stage):
                self.lost.set()
            self._written, self._written_at = stage, time.monotonic()
        except VoiceReplayError as exc:  # a busy database: the next beat tries again
            log.warning("job %s: could not record progress: %s", self.job.id[:12], exc)

    def _run(self) -> None:
        while not self._done.wait(max(0.05, self.lease / 3)):
            try:
                if not self.store.jobs.heartbeat(self.job, lease=self.lease):
                    self.lost.set()
                    return
            except VoiceReplayError as exc:
                log.warning("job %s: heartbeat failed: %s", self.job.id[:12], exc)
                continue
            self._write()


@dataclass(frozen=True)
class JobContext:
    """What a job kind's runner gets: the store, the claimed job, the worker's settings,
    ``progress`` (which also stops the attempt when the worker is stopping or lost the job)
    and ``submit``, which stores and delivers a follow-up job (None: nothing can deliver,
    e.g. in a test that runs a job by hand)."""

    store: Store
    job: Job
    worker: Worker
    progress: Callable[[Progress], None]
    submit: Submit | None = None

    @property
    def settings(self) -> Settings:
        return self.worker.settings


@dataclass(frozen=True)
class JobResult:
    """What a runner did: the replays it stored, the call it worked on, anything else."""

    replay_ids: list[str] = field(default_factory=list)
    call: tuple[str, str] | None = None
    result: dict[str, Any] | None = None


class Submit(Protocol):
    def __call__(self, kind: str, request: dict[str, Any], key: str, *,
                 call: tuple[str | None, str] | None = None,
                 trigger: dict[str, Any] | None = None,
                 max_attempts: int | None = None) -> tuple[Job, bool]: ...


JobRunner = Callable[[JobContext], JobResult]


def run_replay(context: JobContext) -> JobResult:
    """A ``replay`` job: run its :class:`ReplayRequest` (kind ``replay``)."""
    job = context.job
    try:
        request = ReplayRequest.model_validate(job.request)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        raise RequestError(f"the stored request is invalid: {where}: {first['msg']}") from None
    results = run_call(context.store, request, context.progress, settings=context.settings,
                       batch_id=attempt_batch(job), job_id=job.id)
    if not results:
        return JobResult()
    done = results[0]
    call = (done.call.provider, done.call.call_id)
    # The first run's comparison reduced to numbers and names: a batch's aggregate reads
    # these rows from the jobs table instead of comparing every replay again.
    row = CallRow.from_comparison(f"{call[0]}:{call[1]}", done.comparison)
    return JobResult([r.replay.id for r in results], call,
                     {"row": row.to_json(), "replay_id": done.replay.id})


RUNNERS: Mapping[str, JobRunner] = MappingProxyType({"replay": run_replay})


def run_job(store: Store, job_id: str, worker: Worker, *,
            on_progress: Callable[[Progress], None] | None = None,
            runners: Mapping[str, JobRunner] = RUNNERS,
            submit: Submit | None = None) -> JobOutcome:
    """Run one attempt of job ``job_id`` with the runner of its kind (see the module docs)."""
    job = store.jobs.claim(job_id, worker.id, lease=worker.lease_seconds)
    if job is None:
        return JobOutcome("skipped")
    discard_attempts(store, job, keep=attempt_batch(job))
    runner = runners.get(job.kind)
    if runner is None:
        return _failed(store, job, "RequestError", f"this worker cannot run {job.kind!r} "
                       f"jobs (it runs {', '.join(sorted(runners))})", retry=False)
    say = on_progress or (lambda _progress: None)
    with _Heartbeat(store, job, worker.lease_seconds) as beat:
        def progress(step: Progress) -> None:
            if worker.stopping.is_set():
                raise _Stopping
            if beat.lost.is_set():
                raise _Superseded
            beat.note(step)
            say(step)

        try:
            done = runner(JobContext(store, job, worker, progress, submit))
        except _Stopping:
            discard_attempts(store, job)
            released = store.jobs.release(job)
            return JobOutcome("released" if released else "superseded", released)
        except _Superseded:
            discard_attempts(store, job)
            return JobOutcome("superseded")
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
            discard_attempts(store, job)
            retry, delay = _transient(exc, job.attempt)
            return _failed(store, job, type(exc).__name__, _message(exc), retry=retry,
                           delay=delay)
        except BaseException:  # KeyboardInterrupt, SystemExit: hand the job back
            discard_attempts(store, job)
            store.jobs.release(job)
            raise
    completed = store.jobs.complete(job, done.replay_ids, call=done.call, result=done.result)
    if completed is None:
        discard_attempts(store, job)
        return JobOutcome("superseded")
    return JobOutcome("completed", completed)


def _failed(store: Store, job: Job, error_type: str, message: str, *, retry: bool,
            delay: float | None = None) -> JobOutcome:
    failed = store.jobs.fail(job, error_type, message, retry=retry)
    if failed is None:
        return JobOutcome("superseded")
    if failed.status == "PENDING":
        return JobOutcome("retry", failed, retry_in=delay)
    return JobOutcome("failed", failed)


def _transient(exc: BaseException, attempt: int) -> tuple[bool, float]:
    """Should the job run again, and after how many seconds? Known errors say whether they
    are retryable; an unexpected one (a bug, a full disk) gets its remaining attempts too."""
    retry_after = getattr(exc, "retry_after", None) if isinstance(exc, VoiceReplayError) \
        else None
    retryable = exc.retryable if isinstance(exc, VoiceReplayError) else True
    return retryable, JOB_BACKOFF.delay(max(0, attempt - 1), retry_after)


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, VoiceReplayError) else f"{type(exc).__name__}: {text}"


def discard_attempts(store: Store, job: Job, *, keep: str | None = None) -> int:
    """Remove the replays and folders of ``job``'s attempts other than batch ``keep`` (all
    when None); returns how many folders went. Folders are found by name as well as by the
    stored replays, so what a killed worker wrote before storing anything goes too."""
    stale = [r.id for r in store.replays.list(job_id=job.id, limit=None) if r.batch_id != keep]
    root = store.artifacts.root / "replays"
    folders = {Path(rec.path).parent for replay in store.replays.delete(stale)
               for rec in replay.recordings if rec.path}
    if root.is_dir():
        folders.update(p for p in root.glob(f"{job.id[:12]}a*-*")
                       if keep is None or not p.name.startswith(f"{keep}-"))
    folders = {f for f in folders if f.parent.resolve() == root.resolve()}
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return len(folders)
