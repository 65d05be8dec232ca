"""``/api/replays``: enqueue a replay (a :class:`~voicereplay.pipeline.ReplayRequest` as a
background job), read stored replays, list a call's replays, and a replay's comparison (the
``report.json`` shape).

The request body is the same ``ReplayRequest`` the CLI and the jobs use, plus an optional
``idempotency_key``. It holds no keys (unknown fields are refused): a job runs with the
worker's settings. Paths on the server are not taken from a request either — import the call
first (``POST /api/calls/import``) instead of naming a ``call.directory``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field

from voicereplay.errors import ConfigError
from voicereplay.models import Replay
from voicereplay.pipeline import ReplayRequest, show_replay
from voicereplay.pipeline.jobs import KEY_LENGTH
from voicereplay.store.jobs import Job
from voicereplay.store.replays import ReplaySummary
from voicereplay.web.deps import QueueDep, SettingsDep, StoreDep

router = APIRouter(prefix="/api/replays", tags=["replays"])


class ReplayCreate(ReplayRequest):
    """A replay request and, optionally, the key that makes submitting it idempotent
    (default: the call and a hash of the request)."""

    idempotency_key: str | None = Field(default=None, min_length=1, max_length=KEY_LENGTH)


def replay_json(replay: Replay) -> dict[str, Any]:
    """The stored replay without local paths; ``audio`` and ``reports`` give its file URLs."""
    from voicereplay.pipeline.stored_files import REPORT_FILES

    data = replay.model_dump(mode="json")
    for rec in data["recordings"]:
        rec.pop("path", None)
    data["audio"] = {r.kind: f"/files/replays/{replay.id}/{r.kind}"
                     for r in replay.recordings if r.path}
    data["reports"] = {name: f"/files/replays/{replay.id}/report/{name}"
                       for name in REPORT_FILES}
    return data


@router.post("", status_code=202, response_model=Job,
             responses={200: {"model": Job, "description": "the job already submitted "
                                                             "with this idempotency key"}})
def create_replay(body: ReplayCreate, queue: QueueDep, response: Response) -> dict[str, Any]:
    """Enqueue a replay job: **202** with the new job, **200** with the stored job when the
    idempotency key (or the same request) was submitted before. Overrides that do not fit the
    snapshot are a 422 now, not a failed job later."""
    fields = body.model_dump(mode="json", exclude={"idempotency_key"})
    if fields["call"].get("directory") is not None:
        raise ConfigError("call.directory is not accepted over the API (no server paths from "
                          "a request): import the call first with POST /api/calls/import")
    if fields["report"].get("out_dir") is not None:
        raise ConfigError("report.out_dir is not accepted over the API: reports are written "
                          "beside the replay's audio")
    request = ReplayRequest.checked(**fields)
    job, created = queue.submit(request, key=body.idempotency_key)
    response.status_code = 202 if created else 200
    response.headers["Location"] = f"/api/jobs/{job.id}"
    return job.model_dump(mode="json")


@router.get("", response_model=list[ReplaySummary])
def list_replays(
    store: StoreDep,
    call: Annotated[str | None, Query(description="only this call's replays")] = None,
    provider: Annotated[Literal["vapi", "retell"] | None, Query()] = None,
    job: Annotated[str | None, Query(description="only the replays of this job")] = None,
    status: Annotated[Literal["completed", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ReplaySummary]:
    """Stored replays, newest first."""
    return store.replays.list(call_id=call, provider=provider, job_id=job, status=status,
                              limit=limit)


@router.get("/{replay_id}")
def get_replay(replay_id: str, store: StoreDep) -> dict[str, Any]:
    """One stored replay (id or 6+ character prefix): turns with per-stage latency, tool
    calls, backends, warnings, and the URLs of its audio and report files."""
    return replay_json(store.replays.get(replay_id))


@router.get("/{replay_id}/comparison")
def get_comparison(replay_id: str, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """The replay compared with its call — the object ``report.json`` holds (aligned turns,
    diffs, metrics with deltas, divergence, checks, fidelity, snapshot diff, warnings).
    Computed again from the store; stored judge verdicts are reused, nothing is rewritten."""
    result = show_replay(store, replay_id, settings=settings)
    data: dict[str, Any] = result.comparison.model_dump(mode="json")
    return data
