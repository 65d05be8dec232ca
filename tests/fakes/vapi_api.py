"""A fake Vapi API (Starlette) serving fixture call files or generated calls, for tests and bench.

    data = FakeVapiData()
    data.add_call(payload, recordings={"stereo": wav_bytes}, assistant=assistant)
    app = make_vapi_app([fixtures / "vapi"], data=data)
    with serve(app) as server:                      # tests.fakes.server
        VapiProvider("test-vapi-key", server.url).get_call(payload["id"])

Routes, as Vapi answers them (reference/provider-apis.md §1.1):

* ``GET /call/{id}`` — the call object (only GET-/call-shaped files; webhook bodies are not
  served as calls); ``GET /call`` with ``limit`` and ``createdAt{Gt,Lt,Ge,Le}``: a plain array,
  newest first (ties by id); ``GET /assistant/{id}``; ``GET /tool/{id}`` (``data.tools``);
* ``GET /call/{id}/{stereo,customer,assistant,mono}-recording`` — 302 to
  ``/signed/<token>/<file>`` on the same server under its *other* loopback name (127.0.0.1 ↔
  localhost), so the redirect leaves the host as it does for real and httpx drops the API key;
  the signed route needs no key and records in ``data.signed_requests`` whether an
  Authorization header arrived;
* 401 without the bearer key or with a wrong one, 404 JSON for unknown ids, 400 for a bad limit.

Fault injection (429, 5xx, delays) comes from :func:`tests.fakes.server.serve`.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from voicereplay.providers.fields import parse_timestamp
from voicereplay.providers.vapi_payload import is_vapi

__all__ = ["FakeVapiData", "SignedRequest", "created_at", "make_vapi_app"]

# Our recording kinds and Vapi's endpoint names for them.
KIND_TO_ENDPOINT = {"stereo": "stereo", "customer": "customer", "agent": "assistant",
                    "mixed": "mono"}
ENDPOINT_TO_KIND = {v: k for k, v in KIND_TO_ENDPOINT.items()}
_FILTERS = {
    "createdAtGt": lambda created, bound: created > bound,
    "createdAtGe": lambda created, bound: created >= bound,
    "createdAtLt": lambda created, bound: created < bound,
    "createdAtLe": lambda created, bound: created <= bound,
}


@dataclass
class SignedRequest:
    token: str
    call_id: str
    kind: str
    authorization: str | None


@dataclass
class FakeVapiData:
    """Calls, assistants and recordings the fake serves; add to it before or while serving."""

    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    assistants: dict[str, dict[str, Any]] = field(default_factory=dict)
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    recordings: dict[tuple[str, str], bytes | Path] = field(default_factory=dict)
    signed_requests: list[SignedRequest] = field(default_factory=list)
    _tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_call(
        self,
        payload: dict[str, Any],
        recordings: dict[str, bytes | Path] | None = None,
        assistant: dict[str, Any] | None = None,
    ) -> str:
        """Serve ``payload`` (a GET /call body) with its recordings (kind → bytes or file).

        ``recordings`` kinds are ours (stereo, customer, agent, mixed) or Vapi's endpoint names
        (assistant, mono). ``assistant`` is served at GET /assistant/{id}: its own ``id`` or the
        call's ``assistantId``.
        """
        call_id = payload["id"]
        with self._lock:
            self.calls[call_id] = payload
            for kind, blob in (recordings or {}).items():
                self.recordings[(call_id, ENDPOINT_TO_KIND.get(kind, kind))] = blob
        if assistant is not None:
            self.add_assistant(assistant, assistant.get("id") or payload.get("assistantId"))
        return call_id

    def add_assistant(self, assistant: dict[str, Any], assistant_id: str | None = None) -> None:
        key = assistant_id or assistant.get("id")
        if not key:
            raise ValueError("the assistant needs an id (or pass assistant_id)")
        with self._lock:
            self.assistants[key] = assistant

    def load_directory(self, directory: Path) -> int:
        """Serve every Vapi GET-/call file in ``directory`` (layout of providers/files.py)."""
        from voicereplay.providers.files import scan  # imported late: it loads every provider

        count = 0
        for file in scan(Path(directory)):
            payload = json.loads(file.path.read_text(encoding="utf-8"))
            if not _is_call_object(payload):
                continue  # webhook bodies and Retell calls are not GET /call answers
            assistant = None
            if "assistant" in file.sidecars:
                assistant = json.loads(file.sidecars["assistant"].read_text(encoding="utf-8"))
            self.add_call(payload, dict(file.recordings), assistant)
            count += 1
        return count

    def listed(self, params: dict[str, str], limit: int) -> list[dict[str, Any]]:
        bounds = {name: parse_timestamp(params[name]) for name in _FILTERS if name in params}
        with self._lock:
            calls = [(parse_timestamp(c["createdAt"]), c) for c in self.calls.values()]
        selected = [
            (created, call) for created, call in calls
            if all(_FILTERS[name](created, bound) for name, bound in bounds.items())
        ]
        selected.sort(key=lambda pair: (pair[0], pair[1]["id"]), reverse=True)
        return [call for _, call in selected[:limit]]

    def sign(self, call_id: str, kind: str) -> str:
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._tokens[token] = (call_id, kind)
        return token

    def redeem(self, token: str) -> tuple[str, str] | None:
        with self._lock:
            return self._tokens.get(token)


def _is_call_object(payload: Any) -> bool:
    """A Vapi GET /call body (not a webhook body, not a Retell call)."""
    return (
        is_vapi(payload)
        and "message" not in payload
        and isinstance(payload.get("id"), str)
        and isinstance(payload.get("createdAt"), str)
    )


def make_vapi_app(
    directories: list[Path] | None = None,
    *,
    api_key: str = "test-vapi-key",
    page_limit_max: int = 1000,
    data: FakeVapiData | None = None,
) -> Starlette:
    """The fake Vapi API over ``directories`` (and/or ``data``); ``app.state.data`` holds it."""
    store = data if data is not None else FakeVapiData()
    for directory in directories or []:
        store.load_directory(Path(directory))

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {api_key}"

    def unauthorized() -> JSONResponse:
        return JSONResponse(
            {"message": "Invalid Key. Hot tip, you may be using the private key instead of "
                        "the public key, or vice versa.", "error": "Unauthorized",
             "statusCode": 401},
            status_code=401,
        )

    def not_found(what: str) -> JSONResponse:
        return JSONResponse({"message": f"{what} not found", "error": "Not Found",
                             "statusCode": 404}, status_code=404)

    async def get_call(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        call = store.calls.get(request.path_params["call_id"])
        return JSONResponse(call) if call is not None else not_found("Call")

    async def list_calls(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        params = dict(request.query_params)
        try:
            limit = int(params.get("limit", "100"))
            if not 0 <= limit <= page_limit_max:
                raise ValueError(f"limit must not be greater than {page_limit_max}")
            calls = store.listed(params, limit)
        except ValueError as exc:
            return JSONResponse({"message": [str(exc)], "error": "Bad Request",
                                 "statusCode": 400}, status_code=400)
        return JSONResponse(calls)

    async def get_assistant(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        assistant = store.assistants.get(request.path_params["assistant_id"])
        return JSONResponse(assistant) if assistant is not None else not_found("Assistant")

    async def get_tool(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        tool = store.tools.get(request.path_params["tool_id"])
        return JSONResponse(tool) if tool is not None else not_found("Tool")

    async def recording(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        call_id = request.path_params["call_id"]
        kind = ENDPOINT_TO_KIND.get(request.path_params["endpoint"])
        if call_id not in store.calls:
            return not_found("Call")
        if kind is None or (call_id, kind) not in store.recordings:
            return not_found("Recording")
        token = store.sign(call_id, kind)
        url = request.url
        other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(url.hostname or "")
        host = f"{other or url.hostname}:{url.port}" if url.port else (other or url.hostname)
        return RedirectResponse(f"{url.scheme}://{host}/signed/{token}/{call_id}-{kind}.wav",
                                status_code=302)

    async def signed(request: Request) -> Response:
        token = request.path_params["token"]
        found = store.redeem(token)
        auth = request.headers.get("authorization")
        if found is None:
            return Response("<Error><Code>AccessDenied</Code></Error>", status_code=403,
                            media_type="application/xml")
        store.signed_requests.append(SignedRequest(token, found[0], found[1], auth))
        blob = store.recordings[found]
        body = blob.read_bytes() if isinstance(blob, Path) else blob
        return Response(body, media_type="audio/wav")

    app = Starlette(routes=[
        Route("/call", list_calls),
        Route("/call/{call_id}", get_call),
        Route("/call/{call_id}/{endpoint}-recording", recording),
        Route("/assistant/{assistant_id}", get_assistant),
        Route("/tool/{tool_id}", get_tool),
        Route("/signed/{token}/{name}", signed),
    ])
    app.state.data = store
    app.state.store = store
    return app


def created_at(when: datetime) -> str:
    """A createdAt string the way Vapi writes it (ISO, milliseconds, Z)."""
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
