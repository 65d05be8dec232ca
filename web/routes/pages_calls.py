"""The calls pages: the list of calls with search, filters and pages (``/calls``) and its
"Replay selected" batch form (posted to :mod:`~voicereplay.web.routes.pages_batches`),
importing calls by id from a provider, and one call (``/calls/{provider}/{call_id}``): its
metadata, snapshot, transcript (with the knowledge-base context retrieved before each agent
turn), recording and replay history."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from voicereplay import knowledge
from voicereplay.errors import VoiceReplayError
from voicereplay.pipeline import ReplayRequest, import_calls, open_provider
from voicereplay.pipeline.forms import MODES, backend_choices
from voicereplay.pipeline.history import call_history
from voicereplay.pipeline.listing import CallFilters, list_calls
from voicereplay.pipeline.triggers import flag_call
from voicereplay.pipeline.views import snapshot_summary, tracks
from voicereplay.store import Store
from voicereplay.web.deps import QueueDep, SettingsDep, StoreDep
from voicereplay.web.templating import templates

router = APIRouter(include_in_schema=False)

MAX_IMPORT = 100


@router.get("/")
def home() -> Response:
    return RedirectResponse("/calls", status_code=303)


@router.get("/calls", response_class=HTMLResponse)
def calls_page(request: Request, store: StoreDep,
               filters: Annotated[CallFilters, Query()]) -> Response:
    return calls_response(request, store, filters)


def calls_response(request: Request, store: Store, filters: CallFilters, *,
                   error: str | None = None, batch_form: Any = None,
                   status_code: int = 200) -> Response:
    """The calls list under ``filters``, with its "Replay selected" form (``batch_form``: the
    one submitted, shown again with ``error``)."""
    try:
        page = list_calls(store, filters)
    except VoiceReplayError as exc:  # a date that is not one: the form again, with the error
        page, error, status_code = list_calls(store, CallFilters()), exc.message, 422
    return templates.TemplateResponse(
        request, "calls.html", {"page": page, "calls": page.calls, "total": page.total,
                                "filters": filters, "error": error, "batch": batch_form,
                                "modes": MODES, "backends": backend_choices(),
                                "defaults": ReplayRequest.model_fields},
        status_code=status_code)


@router.post("/calls/import", response_class=HTMLResponse)
def import_page(request: Request, store: StoreDep, settings: SettingsDep,
                provider: Annotated[str, Form()], ids: Annotated[str, Form()]) -> Response:
    """Import calls by id from Vapi or Retell (with the settings' API keys)."""
    wanted = [i for i in re.split(r"[\s,]+", ids) if i][:MAX_IMPORT]
    outcomes, error, status = [], None, 200
    if provider not in ("vapi", "retell"):
        error, status = f"provider {provider!r}: use vapi or retell", 422
    elif not wanted:
        error, status = "no call ids: paste one or more, separated by spaces or commas", 422
    else:
        try:
            with open_provider(provider, settings) as source:
                outcomes = import_calls(store, source, wanted)
        except VoiceReplayError as exc:
            error, status = exc.message, exc.http_status
    return templates.TemplateResponse(
        request, "calls_import.html", {"provider": provider, "outcomes": outcomes,
                                       "error": error, "ids": ids}, status_code=status)


@router.get("/calls/{provider}/{call_id}", response_class=HTMLResponse)
def call_page(provider: str, call_id: str, request: Request, store: StoreDep) -> Response:
    call = store.get_call(call_id, provider)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    return templates.TemplateResponse(request, "call.html", {
        "call": call, "snapshot": snapshot, "summary": snapshot_summary(snapshot),
        "tracks": tracks(call.recordings), "kb": knowledge.by_turn(call.knowledge),
        "flag": store.events.find(call.provider, call.call_id, "flag"),
        "history": call_history(store, call.call_id, provider=call.provider)})


@router.post("/calls/{provider}/{call_id}/flag")
def flag_page(provider: str, call_id: str, store: StoreDep, settings: SettingsDep,
              queue: QueueDep) -> Response:
    """The Flag button: run the flag rules on the call, then show it again."""
    call = store.get_call(call_id, provider)
    flag_call(store, settings, queue.submit_job, call, reason="flagged on the call page")
    return RedirectResponse(f"/calls/{call.provider}/{call.call_id}#flag", status_code=303)
