"""Delivering jobs to workers: Huey underneath, the jobs table on top.

:func:`open_huey` picks Huey's storage from the settings:

- ``RedisHuey`` when ``VOICEREPLAY_REDIS_URL`` is set;
- ``PostgresHuey`` when the store is PostgreSQL — workers on many machines then share one
  database for calls, replays, jobs and the queue;
- otherwise ``SqliteHuey`` at ``$VOICEREPLAY_HOME/queue.db``: nothing to start. Like the store,
  it runs WAL with ``synchronous=NORMAL`` (Huey's default waits for an fsync on every message;
  a message lost to a power cut is a lost delivery, which the sweep below makes good).

Huey is **at-most-once**: a worker killed after taking a message loses it. The jobs table is
what makes delivery safe (see :mod:`voicereplay.pipeline.jobs`): a job is claimed, heartbeated
and completed by conditional updates, and :meth:`JobQueue.sweep` — Huey's periodic task, once a
minute, also run when a worker starts and woken when the next lease runs out — returns jobs
whose worker stopped heartbeating to PENDING and hands every PENDING job whose delivery is lost
or overdue to Huey again. A job id delivered twice is harmless: the second claim finds it taken
or finished. Retries with backoff are delayed deliveries (Huey's schedule).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey, crontab
from huey.storage import SqliteStorage

from voicereplay.config import Settings
from voicereplay.errors import ConfigError, StoreError, VoiceReplayError
from voicereplay.pipeline.jobs import RUNNERS, JobOutcome, JobRunner, Worker, run_job, submit_replay
from voicereplay.pipeline.request import ReplayRequest
from voicereplay.pipeline.suite_queue import SCENARIO_KIND, run_scenario_job
from voicereplay.pipeline.triggers import (
    notification_jobs,
    recover_events,
    run_event,
    run_notification,
)
from voicereplay.store import Store
from voicereplay.store.database import libpq_url, redact_url
from voicereplay.store.jobs import Job
from voicereplay.store.tables import utcnow

__all__ = ["JobQueue", "Sweep", "open_huey", "queue_backend"]

log = logging.getLogger(__name__)

QUEUE_NAME = "voicereplay"
# What a worker runs: replays, webhook events (imports, rules), notifications, and the
# scenarios of a `voicereplay test --queue` run.
JOB_RUNNERS: dict[str, JobRunner] = {**RUNNERS, "event": run_event,
                                     "notify": run_notification,
                                     SCENARIO_KIND: run_scenario_job}


class _SqliteStorage(SqliteStorage):
    """Huey's SQLite storage with the store's durability: WAL, ``synchronous=NORMAL``."""

    def _create_connection(self) -> Any:
        conn = super()._create_connection()
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn


class _SqliteHuey(SqliteHuey):
    storage_class = _SqliteStorage


def queue_backend(settings: Settings) -> str:
    """``redis``, ``postgres`` or ``sqlite``: where jobs are delivered for these settings."""
    if settings.redis_url:
        return "redis"
    if settings.database_url.startswith(("postgresql", "postgres:")):
        return "postgres"
    return "sqlite"


def open_huey(settings: Settings, store: Store | None = None) -> Huey:
    """The Huey instance for ``settings`` (see the module docs). No results are kept: the
    jobs table holds every outcome. On PostgreSQL, Huey creates its tables under the store's
    schema lock (``store``), since workers starting together would collide."""
    backend = queue_backend(settings)
    try:
        if backend == "redis":
            return RedisHuey(QUEUE_NAME, url=settings.redis_url, results=False)
        if backend == "postgres":
            dsn = libpq_url(settings.database_url)
            if store is None:
                return PostgresHuey(QUEUE_NAME, dsn=dsn, results=False)
            with store.db.schema_lock():
                return PostgresHuey(QUEUE_NAME, dsn=dsn, results=False)
        settings.home.mkdir(parents=True, exist_ok=True)
        return _SqliteHuey(QUEUE_NAME, filename=str(settings.home / "queue.db"),
                           results=False, timeout=30)
    except OSError as exc:
        raise StoreError(f"cannot open the job queue in {settings.home}: {exc}") from exc
    except VoiceReplayError:
        raise
    except Exception as exc:  # huey's ConfigurationError (a missing driver), a refused server
        raise ConfigError(f"cannot open the {backend} job queue: "
                          f"{redact_url(str(exc))}") from exc


@dataclass(frozen=True)
class Sweep:
    """What one sweep did."""

    reaped: int  # RUNNING jobs whose lease had run out, back to PENDING (or FAILED)
    delivered: list[str]  # job ids handed to the queue again
    next_wake: float | None  # seconds until the sweep runs again for a lease about to lapse


class JobQueue:
    """Submit jobs and deliver them through Huey; in a worker, run what Huey hands over.

    ``worker`` is set in worker processes (``voicereplay worker``, ``serve``); a process that
    only submits (the CLI's ``--background``) leaves it None."""

    def __init__(self, store: Store, settings: Settings, *, huey: Huey | None = None,
                 worker: Worker | None = None, redeliver_after: float | None = None) -> None:
        self.store = store
        self.settings = settings
        self.huey = huey if huey is not None else open_huey(settings, store)
        self.worker = worker
        # A PENDING job not started this long after its delivery is handed over again.
        self.redeliver_after = (redeliver_after if redeliver_after is not None
                                else max(600.0, 10 * settings.job_lease))
        self._wake_at: float | None = None
        self._wake_lock = threading.Lock()
        self._run_task = self.huey.task(name="run_job")(self._run)
        self._sweep_task = self.huey.task(name="sweep_jobs")(self._swept)
        self.huey.periodic_task(crontab(minute="*"), name="sweep_jobs_every_minute")(
            self._swept)

    # -- submitting --------------------------------------------------------------------------
    def submit(self, request: ReplayRequest, *, key: str | None = None,
               max_attempts: int | None = None) -> tuple[Job, bool]:
        """Store a replay job and deliver it; the stored job (not delivered again) when the
        idempotency key is known. ``True`` when the job is new."""
        job, created = submit_replay(self.store, request, key=key,
                                     max_attempts=max_attempts or self.settings.job_attempts)
        if created:
            self.deliver(job.id)
        return job, created

    def submit_job(self, kind: str, request: dict[str, Any], key: str, *,
                   call: tuple[str | None, str] | None = None,
                   trigger: dict[str, Any] | None = None,
                   max_attempts: int | None = None,
                   batch: str | None = None) -> tuple[Job, bool]:
        """Store a job of any kind and deliver it when it is new (the stored one, not
        delivered again, when ``key`` is known); ``batch``: the batch it is part of."""
        job, created = self.store.jobs.enqueue(
            kind, request, key, max_attempts=max_attempts or self.settings.job_attempts,
            call=call, trigger=trigger, batch=batch)
        if created:
            self.deliver(job.id)
        return job, created

    def deliver(self, job_id: str, *, delay: float | None = None) -> None:
        """Hand ``job_id`` to Huey (after ``delay`` seconds) and note it in the jobs table."""
        try:
            if delay:
                self._run_task.schedule(args=(job_id,), delay=delay)
            else:
                self._run_task(job_id)
        except VoiceReplayError:
            raise
        except Exception as exc:  # the queue's own storage failed
            raise StoreError(f"cannot deliver job {job_id[:12]} to the "
                             f"{queue_backend(self.settings)} queue: {exc}") from exc
        self.store.jobs.delivered(job_id, at=utcnow() + timedelta(seconds=delay or 0))

    def retry(self, job_id: str) -> Job | None:
        """Run a FAILED or CANCELLED job again (``jobs retry``)."""
        job = self.store.jobs.retry(job_id)
        if job is not None:
            self.deliver(job.id)
        return job

    # -- sweeping ----------------------------------------------------------------------------
    def sweep(self, *, now: datetime | None = None) -> Sweep:
        """Reap expired leases, deliver lost or overdue PENDING jobs, and wake up again when
        the next lease runs out (if that is within the minute)."""
        now = now or utcnow()
        recovered = recover_events(self.store, self.settings, self.submit_job)
        reaped = self.store.jobs.reap(now=now)
        overdue = self.store.jobs.undelivered(before=now - timedelta(
            seconds=self.redeliver_after))
        for job in overdue:
            self.deliver(job.id)
        expiry = self.store.jobs.next_lease_expiry()
        wake = None
        if expiry is not None:
            wake = max(0.5, (expiry - now).total_seconds() + 0.5)
            if wake < 60 and self._wake(wake):
                self._sweep_task.schedule(delay=wake)
            else:
                wake = None
        if reaped or overdue or recovered:
            log.info("sweep: %d expired lease(s) reaped, %d job(s) delivered again, %d stored "
                     "event(s) queued", reaped, len(overdue), recovered)
        return Sweep(reaped, [j.id for j in overdue], wake)

    def _wake(self, delay: float) -> bool:
        """One pending wake-up per process: True when none is due before ``delay``."""
        at = time.monotonic() + delay
        with self._wake_lock:
            if self._wake_at is not None and time.monotonic() < self._wake_at <= at:
                return False
            self._wake_at = at
            return True

    def _swept(self) -> None:
        with self._wake_lock:
            if self._wake_at is not None and time.monotonic() >= self._wake_at - 0.25:
                self._wake_at = None
        self.sweep()

    # -- running (in a worker) ---------------------------------------------------------------
    def _run(self, job_id: str) -> dict[str, Any]:
        if self.worker is None:
            raise ConfigError("this process submits jobs but is not a worker")
        outcome = run_job(self.store, job_id, self.worker,
                          on_progress=lambda p: log.debug("job %s: %s", job_id[:12], p),
                          runners=JOB_RUNNERS, submit=self.submit_job)
        self._after(job_id, outcome)
        return {"status": outcome.status}

    def _after(self, job_id: str, outcome: JobOutcome) -> None:
        self._reschedule(job_id, outcome)
        if outcome.status in ("completed", "failed") and outcome.job is not None:
            try:
                notification_jobs(self.store, self.settings, outcome.job, self.submit_job)
            except VoiceReplayError as exc:  # never the replay's failure
                log.warning("job %s: its notifications could not be queued: %s",
                            job_id[:12], exc)

    def _reschedule(self, job_id: str, outcome: JobOutcome) -> None:
        if outcome.status == "retry":
            log.warning("job %s: attempt failed (%s), retrying in %.0f s", job_id[:12],
                        outcome.job.error if outcome.job else "?", outcome.retry_in or 0)
            self.deliver(job_id, delay=outcome.retry_in)
        elif outcome.status == "released":
            log.info("job %s handed back (this worker is stopping); it will run again",
                     job_id[:12])
            self.deliver(job_id)  # for another worker, or this one when it starts again
        elif outcome.status == "failed" and outcome.job is not None:
            log.warning("job %s failed: %s", job_id[:12], outcome.job.error)
        elif outcome.status == "completed":
            log.info("job %s completed", job_id[:12])
