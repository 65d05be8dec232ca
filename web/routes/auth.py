"""``/signin`` and ``/signout``: the sign-in form for the pages when ``VOICEREPLAY_API_TOKEN``
is set (the checks themselves are in :mod:`voicereplay.web.security`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from voicereplay.web.deps import SettingsDep
from voicereplay.web.security import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    check_token,
    new_session,
    safe_next,
)
from voicereplay.web.templating import templates

router = APIRouter(include_in_schema=False)


def _form(request: Request, target: str, error: str | None, status: int = 200) -> Response:
    return templates.TemplateResponse(request, "signin.html",
                                      {"next": target, "error": error}, status_code=status)


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, settings: SettingsDep,
                next: Annotated[str | None, Query()] = None) -> Response:
    if not settings.api_token:  # an open app: nothing to sign in to
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, safe_next(next), None)


@router.post("/signin")
def signin(request: Request, settings: SettingsDep, token: Annotated[str, Form()] = "",
           next: Annotated[str | None, Form()] = None) -> Response:
    target = safe_next(next)
    if not settings.api_token:
        return RedirectResponse(target, status_code=303)
    if not check_token(settings.api_token, token.strip()):
        return _form(request, target, "That is not the token this server was started with.",
                     status=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, new_session(settings.api_token),
                        max_age=SESSION_SECONDS, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/signout")
def signout() -> Response:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
