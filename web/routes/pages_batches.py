"""The batch pages: "Replay selected" from the calls list (``POST /batches``), the list of
batches (``/batches``), one batch's progress and aggregate (``/batches/{id}``, a URL to share;
an id prefix or the batch's name works too), its exports (``.json``, ``aggregate.csv``,
``calls.csv``) and batch against batch (``/batches/{a}/vs/{b}``).

The batch form is the replay form's fields (:class:`~voicereplay.pipeline.forms.ReplayForm`)
plus which calls: the ones ticked in the list (``call``: ``provider:call_id``), or every call
matching the list's filter (``filter_query``: the list's query string, stored as the batch's
filter, so the batch selects as ``voicereplay batch run --filter`` does).
"""

from __future__ import annotations

from typing import Annotated, get_args
from urllib.parse import parse_qsl

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from pydantic import Field

from voicereplay.compare.aggregate import aggregate_csv
from voicereplay.errors import ConfigError, NotStoredError, VoiceReplayError
from voicereplay.models import ProviderName
from voicereplay.pipeline.batch_reports import (
    BatchReport,
    batch_report,
    calls_csv,
    compare_batch_reports,
)
from voicereplay.pipeline.batches import (
    FILTER_FIELDS,
    BatchSelection,
    batch_status,
    start_batch,
)
from voicereplay.pipeline.forms import ReplayForm, batch_request_from_form
from voicereplay.pipeline.listing import CallFilters
from voicereplay.store import Store
from voicereplay.web.deps import QueueDep, StoreDep
from voicereplay.web.routes.pages_calls import calls_response
from voicereplay.web.templating import templates

router = APIRouter(include_in_schema=False)

MAX_WORST = 1000
PROVIDERS = (*get_args(ProviderName), "files")  # a ticked call's "provider:call_id"


class BatchForm(ReplayForm):
    """The batch form on the calls list: the replay form's fields and the selection."""

    name: str = ""
    scope: str = "selected"  # "selected": the ticked calls; "filter": all matching the filter
    call: list[str] = Field(default_factory=list)  # "provider:call_id" of each ticked call
    filter_query: str = ""  # the calls list's query string
    limit: str = ""
    new: str = ""  # "on": a new batch even if the same one is stored


def form_filters(form: BatchForm) -> CallFilters:
    """The calls list's filters the form was submitted under."""
    return CallFilters(**{k: v for k, v in parse_qsl(form.filter_query)
                          if k in FILTER_FIELDS})


def selection_from_form(form: BatchForm) -> BatchSelection:
    """Which calls the form names (one clear ConfigError when it names none)."""
    limit = form.limit.strip()
    if limit and not (limit.isdigit() and int(limit) > 0):
        raise ConfigError(f"limit: {limit!r} is not a whole number above 0")
    common = {"limit": int(limit) if limit else None}
    if form.scope == "filter":
        filters = form_filters(form).model_dump(exclude={"page"}, exclude_defaults=True)
        return BatchSelection(filters=filters, all_calls=not filters, **common)
    if form.scope != "selected":
        raise ConfigError(f"scope: {form.scope!r}: use selected or filter")
    keys = [_call_key(c.strip()) for c in form.call if c.strip()]
    if not keys:
        raise ConfigError("no call ticked: tick the calls to replay, or choose all calls "
                          "matching the filter")
    providers = {p for p, _id in keys}
    return BatchSelection(call_ids=[i for _p, i in keys],
                          provider=providers.pop() if len(providers) == 1 else None, **common)


def _call_key(value: str) -> tuple[str | None, str]:
    """``provider:call_id`` → both; a bare call id → no provider (the store finds it)."""
    provider, sep, call_id = value.partition(":")
    return (provider, call_id) if sep and call_id and provider in PROVIDERS else (None, value)


@router.post("/batches", response_class=HTMLResponse)
def submit_batch(request: Request, store: StoreDep, queue: QueueDep,
                 form: Annotated[BatchForm, Form()]) -> Response:
    """Replay selected: store the batch, submit one job per call, open the batch page."""
    try:
        selection = selection_from_form(form)
        replay = batch_request_from_form(form)
        started = start_batch(store, queue, selection, replay,
                              name=form.name.strip() or None, fresh=form.new == "on")
    except VoiceReplayError as exc:
        status = 400 if isinstance(exc, NotStoredError) else exc.http_status
        return calls_response(request, store, form_filters(form), error=exc.message,
                              batch_form=form, status_code=status)
    return RedirectResponse(f"/batches/{started.batch.id}", status_code=303)


@router.get("/batches", response_class=HTMLResponse)
def batches_page(request: Request, store: StoreDep) -> Response:
    batches = store.batches.list(limit=200)
    return templates.TemplateResponse(request, "batches.html", {
        "batches": batches, "statuses": batch_status(store, batches)})


@router.get("/batches/compare")
def compare_form(a: Annotated[str, Query()], b: Annotated[str, Query()]) -> Response:
    """The "compare with" form on a batch page: go to the comparison's own URL."""
    from urllib.parse import quote

    return RedirectResponse(f"/batches/{quote(a, safe='')}/vs/{quote(b, safe='')}",
                            status_code=303)


# -- exports (JSON errors: a script reads them) ------------------------------------------------
def _download(body: str, media_type: str, filename: str) -> Response:
    return PlainTextResponse(body, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/batches/{batch_id}.json")
def batch_json(batch_id: str, store: StoreDep,
               worst: Annotated[int, Query(ge=1, le=MAX_WORST)] = 10) -> Response:
    report = batch_report(store, store.batches.get(batch_id), worst=worst)
    return JSONResponse(report.to_json(), headers={
        "Content-Disposition": f'inline; filename="batch-{report.batch.id[:12]}.json"'})


@router.get("/batches/{batch_id}/aggregate.csv")
def aggregate_export(batch_id: str, store: StoreDep) -> Response:
    report = batch_report(store, store.batches.get(batch_id))
    if report.aggregate is None:
        return JSONResponse({"error": {"type": "NotReplayed", "message": (
            f"batch {report.batch.label}: no call has been replayed yet, nothing to "
            "aggregate")}}, status_code=409)
    return _download(aggregate_csv(report.aggregate), "text/csv; charset=utf-8",
                     f"batch-{report.batch.id[:12]}-aggregate.csv")


@router.get("/batches/{batch_id}/calls.csv")
def calls_export(batch_id: str, store: StoreDep) -> Response:
    report = batch_report(store, store.batches.get(batch_id))
    return _download(calls_csv(report), "text/csv; charset=utf-8",
                     f"batch-{report.batch.id[:12]}-calls.csv")


# -- the batch page -----------------------------------------------------------------------------
def replay_links(report: BatchReport) -> dict[str, str]:
    """Call key → its comparison page."""
    return {c.key: f"/replays/{c.replay_id}" for c in report.calls if c.replay_id}


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(batch_id: str, request: Request, store: StoreDep,
               regressions: Annotated[bool, Query()] = False,
               worst: Annotated[int, Query(ge=1, le=MAX_WORST)] = 10) -> Response:
    report = batch_report(store, store.batches.get(batch_id), worst=worst)
    others = [b for b in store.batches.list(limit=100) if b.id != report.batch.id]
    return templates.TemplateResponse(request, "batch.html", {
        "report": report, "batch": report.batch, "status": report.status,
        "agg": report.aggregate, "links": replay_links(report), "regressions": regressions,
        "worst": worst, "others": others,
        "failed": [c for c in report.calls if c.status in ("FAILED", "CANCELLED")]})


@router.get("/batches/{batch_id}/progress", response_class=HTMLResponse)
def batch_progress(batch_id: str, request: Request, store: StoreDep) -> Response:
    """htmx polls this while the batch runs; once it is done the page reloads with the
    aggregate."""
    batch = store.batches.get(batch_id)
    status = batch_status(store, [batch])[batch.id]
    response = templates.TemplateResponse(request, "_batch_progress.html", {
        "batch": batch, "status": status})
    if status.done and request.headers.get("HX-Request"):
        response.headers["HX-Refresh"] = "true"
    return response


@router.get("/batches/{batch_a}/vs/{batch_b}", response_class=HTMLResponse)
def batch_vs_page(batch_a: str, batch_b: str, request: Request, store: StoreDep) -> Response:
    a, b = two_reports(store, batch_a, batch_b)
    cmp = compare_batch_reports(a, b)
    return templates.TemplateResponse(request, "batch_vs.html", {
        "a": a, "b": b, "cmp": cmp, "links_a": replay_links(a), "links_b": replay_links(b)})


def two_reports(store: Store, batch_a: str, batch_b: str) -> tuple[BatchReport, BatchReport]:
    """The reports of batches A and B (two different batches)."""
    a = batch_report(store, store.batches.get(batch_a))
    b = batch_report(store, store.batches.get(batch_b))
    if a.batch.id == b.batch.id:
        raise ConfigError("name two different batches")
    return a, b
