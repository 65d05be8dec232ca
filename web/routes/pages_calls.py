"""The calls pages: the list of calls (``/``, ``/calls``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from voicereplay.web.deps import StoreDep
from voicereplay.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> Response:
    return RedirectResponse("/calls", status_code=303)


@router.get("/calls", response_class=HTMLResponse)
def calls_page(request: Request, store: StoreDep) -> Response:
    calls = store.list_calls(limit=50)
    return templates.TemplateResponse(request, "calls.html",
                                      {"calls": calls, "total": store.count_calls()})
