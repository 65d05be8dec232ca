"""``/api/jobs``: background replay jobs (get, list, cancel)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from voicereplay.errors import ConfigError
from voicereplay.pipeline.history import STATUSES
from voicereplay.web.deps import StoreDep

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.get("")
def list_jobs(store: StoreDep, status: Annotated[str | None, Query()] = None,
              call: Annotated[str | None, Query()] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    """Jobs, newest first; ``status`` one of PENDING, RUNNING, COMPLETED, FAILED, CANCELLED."""
    wanted = status.upper() if status else None
    if wanted is not None and wanted not in STATUSES:
        raise ConfigError(f"status {status!r}: use one of {', '.join(STATUSES)}")
    jobs = store.jobs.list(status=wanted, call_id=call, limit=limit)  # type: ignore[arg-type]
    return [j.model_dump(mode="json") for j in jobs]


@router.get("/{job_id}")
def get_job(job_id: str, store: StoreDep) -> dict[str, Any]:
    """One job: its status, the stage a running job is in, attempts, error and replays."""
    return store.jobs.get(job_id).model_dump(mode="json")
