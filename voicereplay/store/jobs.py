"""Jobs: the table that is the authority on background work, and its state changes.

A job runs one :class:`~voicereplay.pipeline.ReplayRequest` (kind ``replay``; later batches and
notifications). Its status moves PENDING → RUNNING → COMPLETED | FAILED | CANCELLED, and every
move is **one conditional UPDATE**, so concurrent workers (threads, processes, machines sharing
one database) can never both win:

- :meth:`JobRepository.claim` takes a PENDING job, or a RUNNING one whose lease expired (its
  worker died), and starts attempt ``attempt + 1`` with a fresh lease;
- :meth:`~JobRepository.heartbeat` extends the lease of the attempt that holds it;
- :meth:`~JobRepository.complete` and :meth:`~JobRepository.fail` only change the job while
  *this* attempt holds it: a worker that was presumed dead and comes back finds its attempt
  superseded and its result refused — so a job completes exactly once;
- :meth:`~JobRepository.reap` returns RUNNING jobs whose lease expired to PENDING (or FAILED
  when no attempt is left);
- :meth:`~JobRepository.release` hands a running attempt back (a worker shutting down): PENDING
  again, and the attempt does not count;
- :meth:`~JobRepository.retry` puts a FAILED or CANCELLED job back to PENDING with fresh
  attempts; :meth:`~JobRepository.progress` records the stage a running attempt is in.

``delivered_at`` is when the job id was last handed to the queue (or when a delayed retry is
due); :meth:`~JobRepository.undelivered` lists PENDING jobs whose delivery is overdue, which the
queue's sweep hands over again.

Enqueueing an idempotency key that is already stored returns the existing job. The queue that
delivers job ids to workers (Huey) is at-most-once; this table is what makes delivery safe.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from voicereplay.errors import StoreError
from voicereplay.store.database import Database
from voicereplay.store.prefix import by_id_or_prefix
from voicereplay.store.tables import JobRow, utcnow

__all__ = ["BatchJob", "Job", "JobRepository", "JobStatus"]

JobStatus = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
FINISHED: tuple[JobStatus, ...] = ("COMPLETED", "FAILED", "CANCELLED")


class Job(BaseModel):
    """A job as stored (times are aware UTC)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    request: dict[str, Any]
    idempotency_key: str
    status: JobStatus
    attempt: int
    max_attempts: int
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    error_type: str | None = None
    error: str | None = None
    replay_ids: list[str] = []
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    call_provider: str | None = None
    call_id: str | None = None
    stage: str | None = None
    progress: str | None = None
    delivered_at: datetime | None = None
    trigger: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    batch_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class BatchJob(NamedTuple):
    """One job of a batch, as its aggregate reads it."""

    id: str
    call_provider: str | None
    call_id: str | None
    status: JobStatus
    error: str | None
    result: dict[str, Any] | None
    replay_ids: list[str]


def _job(row: JobRow) -> Job:
    return Job.model_validate(row, from_attributes=True)


# Built once: a statement made per call costs more than running it (SQLAlchemy's cache key).
_JOBS = cast(Table, JobRow.__table__)
_DELIVERED = update(_JOBS).where(_JOBS.c.id == bindparam("job_id")).values(
    delivered_at=bindparam("at"))
_BY_KEY = select(_JOBS).where(_JOBS.c.idempotency_key == bindparam("key"))


class JobRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- creating and reading ------------------------------------------------------------
    def enqueue(self, kind: str, request: dict[str, Any], idempotency_key: str, *,
                max_attempts: int = 3, call: tuple[str | None, str] | None = None,
                trigger: dict[str, Any] | None = None,
                batch: str | None = None) -> tuple[Job, bool]:
        """A new PENDING job, or the stored job with this key; ``True`` when it is new.
        ``call`` is the (provider, call id) the job works on, for a call's job history;
        ``trigger`` what started it (a flag rule: ``{"rule", "event_id", "source"}``);
        ``batch`` the batch it is part of."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        existing = self._by_key(idempotency_key)
        if existing is not None:
            return existing, False
        provider, call_id = call if call is not None else (None, None)
        values = {"id": uuid.uuid4().hex, "kind": kind, "request": request,
                  "idempotency_key": idempotency_key, "status": "PENDING", "attempt": 0,
                  "max_attempts": max_attempts, "replay_ids": [], "created_at": utcnow(),
                  "call_provider": provider, "call_id": call_id, "trigger": trigger,
                  "batch_id": batch}
        try:  # a Core INSERT: the ORM's unit of work costs more than the statement here
            with self._db.session("enqueueing a job", write=True) as session:
                session.execute(insert(_JOBS), values)
        except StoreError as exc:  # lost the race for the key: the other enqueue's job wins
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            found = self._by_key(idempotency_key)
            if found is None:
                raise
            return found, False
        return Job.model_validate(values), True

    def get(self, job_id: str) -> Job:
        """A job by id or an unambiguous prefix (6+ characters)."""
        with self._db.session("reading a job") as session:
            return _job(by_id_or_prefix(session, JobRow, JobRow.id, job_id, what="job"))

    def list(self, *, status: JobStatus | None = None, kind: str | None = None,
             call_id: str | None = None, provider: str | None = None,
             batch_id: str | None = None, limit: int | None = 50) -> list[Job]:
        """Jobs, newest first; of one call when ``call_id`` is given, of one batch when
        ``batch_id`` is."""
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
        if batch_id is not None:
            query = query.where(JobRow.batch_id == batch_id)
        if status is not None:
            query = query.where(JobRow.status == status)
        if kind is not None:
            query = query.where(JobRow.kind == kind)
        if call_id is not None:
            query = query.where(JobRow.call_id == call_id)
        if provider is not None:
            query = query.where(JobRow.call_provider == provider)
        with self._db.session("listing jobs") as session:
            return [_job(row) for row in session.scalars(query)]

    def batch_counts(self, batch_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Per batch, how many of its jobs are in each status."""
        if not batch_ids:
            return {}
        query = (select(JobRow.batch_id, JobRow.status, func.count())
                 .where(JobRow.batch_id.in_(list(batch_ids)))
                 .group_by(JobRow.batch_id, JobRow.status))
        counts: dict[str, dict[str, int]] = {b: {} for b in batch_ids}
        with self._db.session("counting a batch's jobs") as session:
            for batch_id, status, n in session.execute(query):
                counts[str(batch_id)][status] = n
        return counts

    def batch_results(self, batch_id: str) -> builtins.list[BatchJob]:
        """Each job of a batch with what its aggregate reads (not the jobs' requests), in
        the order they were submitted."""
        query = (select(JobRow.id, JobRow.call_provider, JobRow.call_id, JobRow.status,
                        JobRow.error, JobRow.result, JobRow.replay_ids)
                 .where(JobRow.batch_id == batch_id).order_by(JobRow.created_at, JobRow.id))
        with self._db.session("reading a batch's results") as session:
            return [BatchJob(*row) for row in session.execute(query)]

    def undelivered(self, *, before: datetime, limit: int = 500) -> builtins.list[Job]:
        """PENDING jobs not handed to the queue since ``before`` (a lost delivery, a reaped
        job), oldest first."""
        query = (select(JobRow).where(JobRow.status == "PENDING",
                                      or_(JobRow.delivered_at.is_(None),
                                          JobRow.delivered_at < before))
                 .order_by(JobRow.created_at).limit(limit))
        with self._db.session("listing undelivered jobs") as session:
            return [_job(row) for row in session.scalars(query)]

    def next_lease_expiry(self) -> datetime | None:
        """When the first running attempt's lease runs out (None: nothing is running)."""
        query = select(JobRow.lease_expires_at).where(JobRow.status == "RUNNING").order_by(
            JobRow.lease_expires_at).limit(1)
        with self._db.session("reading job leases") as session:
            return session.scalars(query).first()

    def _by_key(self, key: str) -> Job | None:
        with self._db.session("reading a job") as session:
            row = session.execute(_BY_KEY, {"key": key}).mappings().first()
            return Job.model_validate(dict(row)) if row is not None else None

    # -- state changes (each one conditional UPDATE) ---------------------------------------
    def claim(self, job_id: str, worker_id: str, *, lease: float,
              now: datetime | None = None) -> Job | None:
        """Start the next attempt of ``job_id`` for ``worker_id``; None when another worker
        holds it, it is finished, or no attempt is left."""
        now = now or utcnow()
        claimable = and_(
            JobRow.id == job_id,
            JobRow.attempt < JobRow.max_attempts,
            or_(JobRow.status == "PENDING",
                and_(JobRow.status == "RUNNING", JobRow.lease_expires_at < now)),
        )
        values = {"status": "RUNNING", "attempt": JobRow.attempt + 1, "worker_id": worker_id,
                  "lease_expires_at": now + timedelta(seconds=lease), "heartbeat_at": now,
                  "error_type": None, "error": None, "stage": "starting", "progress": None}
        return self._change(f"claiming job {job_id}", job_id, claimable, values,
                            started_at=now)

    def heartbeat(self, job: Job, *, lease: float, now: datetime | None = None) -> bool:
        """Extend the lease of ``job``'s attempt; False when that attempt no longer holds it."""
        now = now or utcnow()
        values = {"heartbeat_at": now, "lease_expires_at": now + timedelta(seconds=lease)}
        return self._change(f"heartbeat of job {job.id}", job.id, self._holds(job),
                            values) is not None

    def complete(self, job: Job, replay_ids: Sequence[str], *,
                 call: tuple[str, str] | None = None, result: dict[str, Any] | None = None,
                 now: datetime | None = None) -> Job | None:
        """Mark ``job``'s attempt COMPLETED with the replays it produced (and the call it
        replayed, as stored, and ``result``: what else it did); None (and nothing changed)
        when the attempt was superseded or the job cancelled."""
        values: dict[str, Any] = {"status": "COMPLETED", "replay_ids": list(replay_ids),
                                  "finished_at": now or utcnow(), "lease_expires_at": None,
                                  "stage": None, "progress": None, "result": result}
        if call is not None:
            values["call_provider"], values["call_id"] = call
        return self._change(f"completing job {job.id}", job.id, self._holds(job), values)

    def fail(self, job: Job, error_type: str, message: str, *, retry: bool,
             now: datetime | None = None) -> Job | None:
        """Record ``job``'s attempt as failed: back to PENDING when ``retry`` and attempts are
        left, else FAILED. None when the attempt no longer holds the job."""
        final = not retry or job.attempt >= job.max_attempts
        values: dict[str, Any] = {"status": "FAILED" if final else "PENDING",
                                  "error_type": error_type, "error": message,
                                  "lease_expires_at": None}
        if final:
            values["finished_at"] = now or utcnow()
        return self._change(f"failing job {job.id}", job.id, self._holds(job), values)

    def delivered(self, job_id: str, *, at: datetime | None = None) -> None:
        """Note that ``job_id`` was handed to the queue (to run at ``at``, default now)."""
        with self._db.session(f"delivering job {job_id}", write=True) as session:
            session.execute(_DELIVERED, {"job_id": job_id, "at": at or utcnow()})

    def progress(self, job: Job, stage: str, message: str) -> bool:
        """Record the stage ``job``'s attempt is in; False when the attempt lost the job."""
        return self._change(f"progress of job {job.id}", job.id, self._holds(job),
                            {"stage": stage[:32], "progress": message}) is not None

    def release(self, job: Job) -> Job | None:
        """Hand ``job``'s running attempt back (its worker is stopping): PENDING again, and
        the attempt is not counted. None when the attempt no longer holds the job."""
        values = {"status": "PENDING", "attempt": JobRow.attempt - 1, "worker_id": None,
                  "lease_expires_at": None, "stage": None,
                  "progress": "returned by a stopping worker; it will run again"}
        return self._change(f"releasing job {job.id}", job.id, self._holds(job), values)

    def retry(self, job_id: str) -> Job | None:
        """Run a FAILED or CANCELLED job again, with all its attempts; None when it is
        pending, running or completed."""
        job = self.get(job_id)
        retryable = and_(JobRow.id == job.id, JobRow.status.in_(("FAILED", "CANCELLED")))
        values = {"status": "PENDING", "attempt": 0, "worker_id": None, "error_type": None,
                  "error": None, "finished_at": None, "stage": None, "progress": None,
                  "lease_expires_at": None, "delivered_at": None}
        return self._change(f"retrying job {job.id}", job.id, retryable, values)

    def cancel(self, job_id: str, *, now: datetime | None = None) -> Job | None:
        """Cancel a PENDING or RUNNING job (a running attempt's result is then refused)."""
        unfinished = and_(JobRow.id == job_id, JobRow.status.in_(("PENDING", "RUNNING")))
        values = {"status": "CANCELLED", "finished_at": now or utcnow(),
                  "lease_expires_at": None}
        return self._change(f"cancelling job {job_id}", job_id, unfinished, values)

    def reap(self, *, now: datetime | None = None) -> int:
        """RUNNING jobs whose lease expired go back to PENDING (FAILED when no attempt is
        left); returns how many changed."""
        now = now or utcnow()
        expired = and_(JobRow.status == "RUNNING", JobRow.lease_expires_at < now)
        with self._db.session("reaping expired jobs", write=True) as session:
            retried = session.execute(
                update(JobRow).where(expired, JobRow.attempt < JobRow.max_attempts)
                .values(status="PENDING", lease_expires_at=None, worker_id=None,
                        delivered_at=None, stage=None, error_type="LeaseExpired",
                        error="the worker stopped heartbeating; the job will run again"))
            exhausted = session.execute(
                update(JobRow).where(expired, JobRow.attempt >= JobRow.max_attempts)
                .values(status="FAILED", lease_expires_at=None, finished_at=now,
                        error_type="LeaseExpired",
                        error="the worker stopped heartbeating and no attempt is left"))
            return int(retried.rowcount or 0) + int(exhausted.rowcount or 0)  # type: ignore[attr-defined]

    # -- plumbing --------------------------------------------------------------------------
    @staticmethod
    def _holds(job: Job) -> Any:
        return and_(JobRow.id == job.id, JobRow.status == "RUNNING",
                    JobRow.attempt == job.attempt, JobRow.worker_id == job.worker_id)

    def _change(self, action: str, job_id: str, condition: Any, values: dict[str, Any],
                started_at: datetime | None = None) -> Job | None:
        with self._db.session(action, write=True) as session:
            result = session.execute(update(JobRow).where(condition).values(**values))
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            row = session.get(JobRow, job_id, populate_existing=True)
            if row is None:  # pragma: no cover - the update just matched it
                return None
            if started_at is not None and row.started_at is None:
                row.started_at = started_at
            session.flush()
            return _job(row)
