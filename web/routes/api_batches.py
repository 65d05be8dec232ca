"""``/api/batches``: start a batch of replays, list batches, read one batch's report, and
compare two batches.

The body of ``POST /api/batches`` is ``{"selection": …, "request": …, "name": …}``:
``selection`` a :class:`~voicereplay.pipeline.batches.BatchSelection` (``call_ids``, or
``filters`` with the calls list's fields, or ``all_calls``; then ``sample``, ``seed``,
``limit``), ``request`` the fields of a :class:`~voicereplay.pipeline.ReplayRequest` without
its ``call`` (every selected call gets them). Neither holds keys (unknown fields are refused):
jobs run with the worker's settings. A bad selection or request is a **400** with the reason;
nothing is stored then. Submitting the same body again continues the stored batch (**200**)
instead of starting another, unless ``new`` is true.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voicereplay.errors import ConfigError, NotStoredError
from voicereplay.pipeline import ReplayRequest
from voicereplay.pipeline.batch_reports import batch_report, compare_batch_reports
from voicereplay.pipeline.batches import BatchSelection, BatchStatus, batch_status, start_batch
from voicereplay.store.batches import Batch
from voicereplay.web.deps import QueueDep, StoreDep
from voicereplay.web.routes.pages_batches import two_reports

router = APIRouter(prefix="/api/batches", tags=["batches"])


class BatchCreate(BaseModel):
    """Start (or continue) a batch: which calls, and the replay every one of them gets."""

    model_config = ConfigDict(extra="forbid")

    selection: dict[str, Any] = Field(description="a BatchSelection: call_ids (and provider), "
                                                  "filters, or all_calls; limit, sample, seed")
    request: dict[str, Any] = Field(default_factory=dict,
                                    description="ReplayRequest fields, without call")
    name: str | None = None
    new: bool = Field(default=False, description="a new batch even if the same one is stored")
    retry_failed: bool = Field(default=False,
                               description="continuing a batch: run its failed calls again")


def _selection(data: dict[str, Any]) -> BatchSelection:
    try:
        selection = BatchSelection.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "selection"
        raise ConfigError(f"selection: {where}: {first['msg']}") from None
    selection.check()
    return selection


def _request(data: dict[str, Any]) -> ReplayRequest:
    if "call" in data:
        raise ConfigError("request.call: a batch's calls come from its selection")
    if (data.get("report") or {}).get("out_dir") is not None:
        raise ConfigError("request.report.out_dir is not accepted over the API: reports are "
                          "written beside each replay's audio")
    return ReplayRequest.checked(call={"call_id": "*"}, **data)


def status_json(status: BatchStatus) -> dict[str, Any]:
    return {"state": status.state, "total": status.total, "pending": status.pending,
            "running": status.running, "completed": status.completed,
            "failed": status.failed, "cancelled": status.cancelled}


def batch_json(batch: Batch, status: BatchStatus) -> dict[str, Any]:
    return {"id": batch.id, "name": batch.name, "created_at": batch.created_at.isoformat(),
            "calls": len(batch.calls), "url": f"/batches/{batch.id}",
            "api": f"/api/batches/{batch.id}", **status_json(status)}


@router.post("", status_code=202, responses={
    200: {"description": "the same batch was stored: continued, not started again"},
    400: {"description": "a bad selection or request (nothing stored)"}})
def create_batch(body: BatchCreate, store: StoreDep, queue: QueueDep,
                 response: Response) -> dict[str, Any]:
    """Store the batch and submit one replay job per selected call: **202** with the batch,
    its page (``url``) and how many jobs were submitted."""
    selection, request = _selection(body.selection), _request(body.request)
    try:
        started = start_batch(store, queue, selection, request, name=body.name,
                              fresh=body.new, retry_failed=body.retry_failed)
    except NotStoredError as exc:  # no such call: the selection is wrong, not the URL
        raise ConfigError(exc.message) from None
    batch = started.batch
    response.status_code = 202 if started.created else 200
    response.headers["Location"] = f"/api/batches/{batch.id}"
    return {**batch_json(batch, batch_status(store, [batch])[batch.id]),
            "created": started.created, "submitted": started.submitted,
            "retried": started.retried}


@router.get("")
def list_batches(store: StoreDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
                 ) -> list[dict[str, Any]]:
    """Batches, newest first, each with how far it is."""
    batches = store.batches.list(limit=limit)
    statuses = batch_status(store, batches)
    return [batch_json(b, statuses[b.id]) for b in batches]


@router.get("/{batch_id}")
def get_batch(batch_id: str, store: StoreDep,
              worst: Annotated[int, Query(ge=1, le=1000)] = 10) -> dict[str, Any]:
    """One batch (id, 6+ character prefix, or name): its selection and request, progress,
    each call's line and the aggregate of the calls replayed so far (what
    ``/batches/{id}.json`` downloads)."""
    report = batch_report(store, store.batches.get(batch_id), worst=worst)
    return {**report.to_json(), "url": f"/batches/{report.batch.id}"}


@router.get("/{batch_a}/compare/{batch_b}")
def compare(batch_a: str, batch_b: str, store: StoreDep) -> dict[str, Any]:
    """Batch B against batch A (the reference), matched by call; calls in only one of them
    are listed in ``only_in_a`` / ``only_in_b``."""
    a, b = two_reports(store, batch_a, batch_b)
    data: dict[str, Any] = json.loads(compare_batch_reports(a, b).to_json())
    return {"a": a.batch.id, "b": b.batch.id, **data}
