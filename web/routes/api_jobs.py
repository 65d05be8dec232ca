"""``/api/jobs``: background replay jobs (list, get, cancel, retry).

A job is the stored :class:`~voicereplay.store.jobs.Job`: its status (PENDING, RUNNING,
COMPLETED, FAILED, CANCELLED), the stage and progress of a running one, attempts, the error of
a failed one and the replays it made."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from voicereplay.pipeline.history import job_status
from voicereplay.pipeline.job_control import cancel_job, retry_job
from voicereplay.store.jobs import Job
from voicereplay.web.deps import QueueDep, StoreDep

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.get("", response_model=list[Job])
def list_jobs(store: StoreDep, status: Annotated[str | None, Query()] = None,
              call: Annotated[str | None, Query()] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    """Jobs, newest first; ``status`` one of PENDING, RUNNING, COMPLETED, FAILED, CANCELLED."""
    jobs = store.jobs.list(status=job_status(status), call_id=call, limit=limit)
    return [j.model_dump(mode="json") for j in jobs]


@router.get("/{job_id}", response_model=Job)
def get_job(job_id: str, store: StoreDep) -> dict[str, Any]:
    """One job (id or 6+ character prefix)."""
    return store.jobs.get(job_id).model_dump(mode="json")


@router.post("/{job_id}/cancel", response_model=Job,
             responses={409: {"description": "the job has finished"}})
def cancel(job_id: str, store: StoreDep) -> dict[str, Any]:
    """Cancel a pending or running job (a running attempt's result is then discarded)."""
    return cancel_job(store, job_id).model_dump(mode="json")


@router.post("/{job_id}/retry", response_model=Job,
             responses={409: {"description": "the job is pending, running or completed"}})
def retry(job_id: str, queue: QueueDep) -> dict[str, Any]:
    """Run a failed or cancelled job again, with all its attempts."""
    return retry_job(queue, job_id).model_dump(mode="json")
