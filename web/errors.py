"""Errors at the web boundary: JSON ``{"error": {"type", "message"}}`` under ``/api/``,
``/files/`` and ``/webhooks/`` and for exports (paths ending ``.json`` or ``.csv``), an error
page elsewhere — the status from the error tree (:mod:`voicereplay.errors`), never a
traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from voicereplay.errors import VoiceReplayError
from voicereplay.web.templating import templates

__all__ = ["install_error_handlers"]

log = logging.getLogger(__name__)
JSON_PATHS = ("/api/", "/files/", "/webhooks/")  # errors there are JSON, never a page
JSON_SUFFIXES = (".json", ".csv")  # exports (a batch's): a script reads the error

HINTS = {
    404: "Check the id, or start from the list of calls.",
    401: "Sign in with the API token (VOICEREPLAY_API_TOKEN).",
    403: "Reload the page and try again (the form was stale or came from another site).",
    409: "Reload the page: something changed meanwhile.",
    422: "Fix the input shown above and submit again.",
    500: "Something failed on the server; its log has the details.",
}


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(JSON_PATHS) or path.endswith(JSON_SUFFIXES) or \
        "application/json" in request.headers.get("accept", "")


def error_response(request: Request, status: int, kind: str, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "kind": kind, "message": message,
                                "hint": HINTS.get(status, HINTS[500])}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VoiceReplayError)
    async def _ours(request: Request, exc: VoiceReplayError) -> Response:
        return error_response(request, exc.http_status, type(exc).__name__, exc.message)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        kind = {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthorized",
                403: "Forbidden"}.get(exc.status_code, "HTTPError")
        return error_response(request, exc.status_code, kind, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(request, 422, "ValidationError",
                              f"{where}: {first.get('msg')}" if where else str(first.get("msg")))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "InternalError",
                              f"{type(exc).__name__} (see the server log)")
