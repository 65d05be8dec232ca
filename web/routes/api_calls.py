"""``/api/calls`` and ``/api/snapshots``: search and read stored calls, import calls from a
provider, a call's replay history, and agent snapshots.

A call's JSON is the stored :class:`~voicereplay.models.Call` with its recordings' local paths
left out and an ``audio`` map of track → URL under ``/files/calls/…`` instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from voicereplay.errors import ConfigError
from voicereplay.models import Call
from voicereplay.pipeline.history import STATUSES, HistoryEntry, call_history
from voicereplay.pipeline.importing import import_by_ids
from voicereplay.pipeline.triggers import flag_call
from voicereplay.store.calls import CallSummary
from voicereplay.web.deps import QueueDep, SettingsDep, StoreDep

router = APIRouter(tags=["calls"])

MAX_PAGE = 500
MAX_IMPORT = 100


class CallPage(BaseModel):
    """One page of stored calls, newest first, and how many match in all."""

    items: list[CallSummary]
    total: int
    limit: int
    offset: int


class CallDetail(BaseModel):
    call: dict[str, Any] = Field(description="the stored call (recordings without local paths)")
    snapshot_id: str | None = Field(description="the agent snapshot stored with the call")
    audio: dict[str, str] = Field(description="track → URL of its audio (range requests)")


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["vapi", "retell"]
    call_ids: list[str] = Field(min_length=1, max_length=MAX_IMPORT)
    # No base URL from the request: the server's provider key must only ever go to the
    # provider URL the server is configured with (VAPI_BASE_URL / RETELL_BASE_URL).


class ImportResult(BaseModel):
    source: str
    status: Literal["created", "updated", "unchanged", "failed"]
    provider: str | None
    call_id: str | None
    snapshot_id: str | None
    recordings: list[str]
    error: str | None
    warnings: list[str]


class ImportReport(BaseModel):
    outcomes: list[ImportResult]


def _utc(when: datetime | None) -> datetime | None:
    """Naive datetimes are UTC (as in the store)."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def call_audio_urls(call: Call) -> dict[str, str]:
    return {r.kind: f"/files/calls/{call.provider}/{call.call_id}/{r.kind}"
            for r in call.recordings if r.path}


def call_json(call: Call) -> dict[str, Any]:
    data = call.model_dump(mode="json")
    for rec in data["recordings"]:
        rec.pop("path", None)
    return data


@router.get("/api/calls", response_model=CallPage)
def list_calls(
    store: StoreDep,
    q: Annotated[str | None, Query(description="part of the call id, the customer's number "
                                               "or the transcript (any case)")] = None,
    provider: Annotated[Literal["vapi", "retell"] | None, Query()] = None,
    agent_id: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query(description="the provider's call status")] = None,
    since: Annotated[datetime | None, Query(description="started at or after (ISO 8601)")]
    = None,
    until: Annotated[datetime | None, Query(description="started before (ISO 8601)")] = None,
    success: Annotated[bool | None, Query(description="the analysis' success evaluation")]
    = None,
    ended_reason: Annotated[str | None, Query()] = None,
    has_replays: Annotated[bool | None, Query()] = None,
    flagged: Annotated[bool | None, Query(description="true: the analysis says it failed")]
    = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CallPage:
    """Stored calls, newest first, searched and filtered; ``total`` counts every match."""
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        raise ConfigError("since must be before until")
    filters: dict[str, Any] = {
        "q": q, "provider": provider, "agent_id": agent_id, "status": status, "since": since,
        "until": until, "success": success, "ended_reason": ended_reason,
        "has_replays": has_replays, "flagged": flagged}
    return CallPage(items=store.list_calls(**filters, limit=limit, offset=offset),
                    total=store.count_calls(**filters), limit=limit, offset=offset)


@router.post("/api/calls/import", response_model=ImportReport)
def import_calls(body: ImportBody, store: StoreDep, settings: SettingsDep) -> ImportReport:
    """Import calls by id from Vapi or Retell with the server's API key; one outcome per id
    (a call that fails does not stop the others)."""
    ids = [i.strip() for i in body.call_ids if i.strip()]
    if not ids:
        raise ConfigError("call_ids: give at least one call id")
    outcomes = import_by_ids(store, settings, body.provider, ids)
    return ImportReport(outcomes=[
        ImportResult(source=o.source, status=o.status, provider=o.provider,
                     call_id=o.call_id, snapshot_id=o.snapshot_id, recordings=o.recordings,
                     error=o.error, warnings=o.warnings) for o in outcomes])


@router.get("/api/calls/{call_id}", response_model=CallDetail)
def get_call(call_id: str, store: StoreDep,
             provider: Annotated[Literal["vapi", "retell"] | None, Query()] = None
             ) -> CallDetail:
    """One stored call: metadata, analysis, cost, transcript with tool calls, recordings."""
    call = store.get_call(call_id, provider)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    return CallDetail(call=call_json(call), snapshot_id=snapshot.id if snapshot else None,
                      audio=call_audio_urls(call))


@router.get("/api/calls/{call_id}/history", response_model=list[HistoryEntry])
def get_history(call_id: str, store: StoreDep,
                provider: Annotated[Literal["vapi", "retell"] | None, Query()] = None,
                status: Annotated[str | None, Query(description=", ".join(STATUSES))] = None,
                limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50) -> list[HistoryEntry]:
    """The call's jobs (pending, running, completed, failed, cancelled) and replays run
    without a job, newest first."""
    return call_history(store, call_id, provider=provider, status=status, limit=limit)


class FlagBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000,
                               description="why the call is flagged (kept with the flag)")


class FlagResult(BaseModel):
    provider: str
    call_id: str
    event_id: str = Field(description="the stored flag event")
    job_id: str | None = Field(description="the job that runs the flag rules on the call")
    flagged_at: datetime


@router.post("/api/calls/{call_id}/flag", response_model=FlagResult, status_code=202)
def flag(call_id: str, store: StoreDep, settings: SettingsDep, queue: QueueDep,
         body: FlagBody | None = None,
         provider: Annotated[Literal["vapi", "retell"] | None, Query()] = None) -> FlagResult:
    """Flag a stored call by hand: the rules run on it with ``flagged: true`` holding, and
    each rule it matches queues a replay. Flagging a flagged call again changes nothing."""
    call = store.get_call(call_id, provider)
    event, job = flag_call(store, settings, queue.submit_job, call,
                           reason=body.reason if body else None)
    return FlagResult(provider=call.provider, call_id=call.call_id, event_id=event.id,
                      job_id=job.id if job else None, flagged_at=event.received_at)


@router.get("/api/snapshots/{snapshot_id}", tags=["snapshots"])
def get_snapshot(snapshot_id: str, store: StoreDep) -> dict[str, Any]:
    """An agent snapshot by id (or a 6+ character prefix): system prompt, model, tools, voice,
    transcriber, and where it came from; ``id`` is its content hash."""
    snapshot = store.get_snapshot(snapshot_id)
    return {"id": snapshot.id, **snapshot.model_dump(mode="json")}
