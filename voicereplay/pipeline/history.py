"""A call's replay history: every job (failed, pending and running ones too) and every replay.

Replays run in the foreground have no job; replays run by a job are listed under it. One status
vocabulary for both, the jobs': PENDING, RUNNING, COMPLETED, FAILED, CANCELLED (a stored replay
is COMPLETED, or FAILED when the engine recorded a failure). Newest first. The CLI's
``replays list --status`` and the web app's call page show this.
"""

from __future__ import annotations

from datetime import datetime
from typing import get_args

from pydantic import BaseModel, ConfigDict

from voicereplay.errors import ConfigError
from voicereplay.store import Store
from voicereplay.store.jobs import JobStatus

__all__ = ["HistoryEntry", "STATUSES", "call_history", "job_status"]

STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)


def job_status(value: str | None, *, option: str = "status") -> JobStatus | None:
    """A status a user typed (any case) as the jobs table spells it; None for "any". An
    unknown one is a ConfigError naming ``option`` and the known statuses."""
    if value is None:
        return None
    for status in STATUSES:
        if value.upper() == status:
            return status
    raise ConfigError(f"{option} {value!r}: use one of "
                      f"{', '.join(s.lower() for s in STATUSES)}")


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str  # "job" or "replay"
    id: str
    call_provider: str | None
    call_id: str | None
    status: str
    created_at: datetime
    stage: str | None = None  # a running job's stage
    progress: str | None = None
    error: str | None = None
    attempt: int | None = None
    replay_ids: list[str] = []
    mode: str | None = None  # a replay's mode; other jobs: their kind (event, notify)
    rule: str | None = None  # the flag rule that triggered the job


def call_history(store: Store, call_id: str | None = None, *, provider: str | None = None,
                 status: str | None = None, limit: int | None = 50) -> list[HistoryEntry]:
    """Jobs and job-less replays (of one call when ``call_id`` is given), newest first;
    ``status`` (any case) keeps one status."""
    wanted = job_status(status)
    entries: list[HistoryEntry] = []
    if call_id is not None:  # the call's own id and provider, from a prefix or an alias
        call = store.get_call(call_id, provider)
        call_id, provider = call.call_id, call.provider
    for job in store.jobs.list(call_id=call_id, limit=limit,
                               status=wanted):
        entries.append(HistoryEntry(
            kind="job", id=job.id, call_provider=job.call_provider, call_id=job.call_id,
            status=job.status, created_at=job.created_at,
            stage=job.stage if job.status == "RUNNING" else None,
            progress=job.progress if job.status in ("RUNNING", "PENDING") else None,
            error=job.error if job.status != "COMPLETED" else None, attempt=job.attempt,
            replay_ids=job.replay_ids,
            mode=str(job.request.get("mode", "scripted")) if job.kind == "replay" else job.kind,
            rule=(job.trigger or {}).get("rule")))
    for replay in store.replays.list(call_id=call_id, provider=provider, limit=limit):
        if replay.job_id is not None:
            continue
        state = "FAILED" if replay.status == "failed" else "COMPLETED"
        if wanted and state != wanted:
            continue
        entries.append(HistoryEntry(
            kind="replay", id=replay.id, call_provider=replay.call_provider,
            call_id=replay.call_id, status=state, created_at=replay.created_at,
            error=replay.error, replay_ids=[replay.id], mode=replay.mode))
    entries.sort(key=lambda e: e.created_at, reverse=True)
    return entries[:limit] if limit is not None else entries
