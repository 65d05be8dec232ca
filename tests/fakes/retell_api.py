"""A fake Retell API (Starlette) serving fixture directories, for tests over real HTTP.

    app = make_retell_app([FIXTURES / "retell"])
    app.add_call(payload, recordings={"stereo": wav_bytes}, agent=agent_body, llm=llm_body)
    with serve(app) as server:
        RetellProvider("test-retell-key", server.url).get_call("call_123")

Routes, as Retell has them:

* ``GET /v2/get-call/{id}``
* ``POST /v3/list-calls`` (the current API): a typed ``start_timestamp`` filter (``ge``/``gt``/
  ``le``/``lt`` number or ``bt`` range, inclusive), ``sort_order``, ``limit``, an opaque
  ``pagination_key`` cursor, ``include_total``; answers ``{items, has_more, pagination_key,
  total}`` with items **without transcripts**, as Retell does. ``v3_available = False`` makes it
  404, like an older account.
* ``POST /v2/list-calls``: ``start_timestamp`` thresholds (inclusive), ``sort_order``, ``limit``,
  and an exclusive ``pagination_key``; a bare list of calls with transcripts.
* ``GET /get-agent/{id}?version=`` and ``GET /get-retell-llm/{id}?version=``: latest without
  a version, 404 for an unknown one.

API routes need ``Authorization: Bearer <api_key>``; a missing or wrong key gets 401. Calls
come from ``<stem>.json`` files in the Retell shape: get-call bodies, or the ``call`` / ``data``
object of webhook bodies. Files in the Vapi shape are skipped. Recording URLs in served calls
are rewritten to ``<server>/recordings/<stem>.<kind>.wav``. Like a CDN, those need no key, and
they answer 404 when the fixture has no such file. A call's
``knowledge_base_retrieved_contents_url`` is rewritten to ``<server>/knowledge/<call id>``, which
serves the fixture's ``<stem>.knowledge.json`` (or ``add_call(knowledge=…)``) with no key, and
404 when there is none (an expired URL). Set ``list_without_transcripts`` to drop transcripts
from ``/v2/list-calls`` items too.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voicereplay.providers.files import scan
from voicereplay.providers.retell_fields import call_body
from voicereplay.providers.retell_payload import is_retell

__all__ = ["FakeRetellAPI", "make_retell_app"]

_URL_KINDS = {
    "recording_url": "mixed",
    "scrubbed_recording_url": "mixed",
    "recording_multi_channel_url": "stereo",
    "scrubbed_recording_multi_channel_url": "stereo",
}
_KIND_KEYS = {"stereo": "recording_multi_channel_url", "mixed": "recording_url"}
_TRANSCRIPTS = ("transcript", "transcript_object", "transcript_with_tool_calls")


class FakeRetellAPI:
    """An ASGI app holding calls, agents, Retell LLMs and recordings in memory."""

    def __init__(self, api_key: str = "test-retell-key") -> None:
        self.api_key = api_key
        self.calls: dict[str, dict[str, Any]] = {}
        self.recordings: dict[str, bytes] = {}  # file name → bytes
        self.recording_names: dict[str, dict[str, str]] = {}  # call id → kind → file name
        self.knowledge: dict[str, bytes] = {}  # call id → its retrieved-contents file
        self.agents: dict[tuple[str, str], dict[str, Any]] = {}
        self.llms: dict[tuple[str, str], dict[str, Any]] = {}
        self.list_without_transcripts = False
        self.v3_available = True
        self._app = Starlette(
            routes=[
                Route("/v2/get-call/{call_id}", self._get_call, methods=["GET"]),
                Route("/v2/list-calls", self._list_calls, methods=["POST"]),
                Route("/v3/list-calls", self._list_calls_v3, methods=["POST"]),
                Route("/get-agent/{agent_id}", self._get_agent, methods=["GET"]),
                Route("/get-retell-llm/{llm_id}", self._get_llm, methods=["GET"]),
                Route("/recordings/{name}", self._recording, methods=["GET"]),
                Route("/knowledge/{call_id}", self._knowledge, methods=["GET"]),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)

    # -- loading ----------------------------------------------------------------------------
    def add_call(
        self,
        payload: Mapping[str, Any],
        recordings: Mapping[str, bytes] | None = None,
        agent: Mapping[str, Any] | None = None,
        llm: Mapping[str, Any] | None = None,
        knowledge: bytes | None = None,
    ) -> str:
        """Serve one call (a get-call or webhook body); returns its call id."""
        body, _ = call_body(payload)
        call = copy.deepcopy(dict(body))
        call_id = call["call_id"]
        self.calls[call_id] = call
        names = self.recording_names.setdefault(call_id, {})
        for kind, data in (recordings or {}).items():
            names[kind] = f"{call_id}.{kind}.wav"
            self.recordings[names[kind]] = data
        if knowledge is not None:
            self.knowledge[call_id] = knowledge
        if agent is not None:
            self.add_agent(agent)
        if llm is not None:
            self.add_llm(llm)
        return call_id

    def add_agent(self, agent: Mapping[str, Any]) -> None:
        self.agents[(str(agent["agent_id"]), str(agent.get("version", 0)))] = dict(agent)

    def add_llm(self, llm: Mapping[str, Any]) -> None:
        self.llms[(str(llm["llm_id"]), str(llm.get("version", 0)))] = dict(llm)

    def add_directory(self, directory: Path) -> None:
        for file in scan(directory):
            payload = json.loads(file.path.read_text(encoding="utf-8"))
            if not is_retell(payload):
                continue
            sidecars = {
                name: json.loads(path.read_text(encoding="utf-8"))
                for name, path in file.sidecars.items()
            }
            kb = file.sidecars.get("knowledge")
            call_id = self.add_call(payload, agent=sidecars.get("agent"), llm=sidecars.get("llm"),
                                    knowledge=kb.read_bytes() if kb else None)
            for kind, path in file.recordings.items():
                self.recording_names[call_id][kind] = path.name
                self.recordings[path.name] = path.read_bytes()

    # -- serving ----------------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def _served(self, call: dict[str, Any], base: str, *, listed: bool = False) -> dict[str, Any]:
        out = copy.deepcopy(call)
        names = self.recording_names.get(call["call_id"], {})
        for key, kind in _URL_KINDS.items():
            if out.get(key):
                name = names.get(kind) or f"{call['call_id']}.{kind}.wav"
                out[key] = f"{base}/recordings/{name}"
        for kind, name in names.items():
            if kind in _KIND_KEYS:
                out[_KIND_KEYS[kind]] = f"{base}/recordings/{name}"
        if out.get("knowledge_base_retrieved_contents_url"):
            out["knowledge_base_retrieved_contents_url"] = f"{base}/knowledge/{call['call_id']}"
        if listed and self.list_without_transcripts:
            for key in _TRANSCRIPTS:
                out.pop(key, None)
        return out

    async def _get_call(self, request: Request) -> Response:
        if not self._authorized(request):
            return _unauthorized()
        call = self.calls.get(request.path_params["call_id"])
        if call is None:
            return _not_found(f"call {request.path_params['call_id']}")
        return JSONResponse(self._served(call, _base(request)))

    async def _list_calls(self, request: Request) -> Response:
        if not self._authorized(request):
            return _unauthorized()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"message": "body must be a JSON object"}, status_code=400)
        threshold = (body.get("filter_criteria") or {}).get("start_timestamp") or {}
        low, high = threshold.get("lower_threshold"), threshold.get("upper_threshold")
        calls = [
            c for c in self.calls.values()
            if (low is None or _start(c) >= low) and (high is None or _start(c) <= high)
        ]
        descending = body.get("sort_order", "descending") == "descending"
        calls.sort(key=lambda c: (_start(c), c["call_id"]), reverse=descending)
        key = body.get("pagination_key")
        if key is not None:
            ids = [c["call_id"] for c in calls]
            if key not in ids:
                return JSONResponse({"message": f"unknown pagination_key {key}"}, status_code=400)
            calls = calls[ids.index(key) + 1 :]
        limit = min(int(body.get("limit") or 50), 1000)
        base = _base(request)
        return JSONResponse([self._served(c, base, listed=True) for c in calls[:limit]])

    async def _list_calls_v3(self, request: Request) -> Response:
        if not self.v3_available:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        if not self._authorized(request):
            return _unauthorized()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"message": "body must be a JSON object"}, status_code=400)
        window = (body.get("filter_criteria") or {}).get("start_timestamp")
        try:
            calls = [c for c in self.calls.values() if window is None or _within(_start(c), window)]
        except (KeyError, TypeError, ValueError):
            return JSONResponse({"message": f"bad start_timestamp filter {window!r}"},
                                status_code=400)
        descending = body.get("sort_order", "descending") == "descending"
        calls.sort(key=lambda c: (_start(c), c["call_id"]), reverse=descending)
        offset = 0
        if body.get("pagination_key") is not None:
            try:
                offset = int(base64.urlsafe_b64decode(body["pagination_key"]).decode())
            except (ValueError, TypeError):
                return JSONResponse({"message": "invalid pagination_key"}, status_code=400)
        limit = min(int(body.get("limit") or 50), 1000)
        page = calls[offset : offset + limit]
        base = _base(request)
        items = [self._served(c, base) for c in page]
        for item in items:
            for key in _TRANSCRIPTS:
                item.pop(key, None)
        more = offset + limit < len(calls)
        answer: dict[str, Any] = {
            "items": items,
            "has_more": more,
            "pagination_key": (base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
                               if more else None),
        }
        if body.get("include_total"):
            answer["total"] = len(calls)
        return JSONResponse(answer)

    async def _get_agent(self, request: Request) -> Response:
        return self._versioned(request, self.agents, request.path_params["agent_id"], "agent")

    async def _get_llm(self, request: Request) -> Response:
        return self._versioned(request, self.llms, request.path_params["llm_id"], "Retell LLM")

    def _versioned(
        self, request: Request, store: dict[tuple[str, str], dict[str, Any]], id_: str, what: str
    ) -> Response:
        if not self._authorized(request):
            return _unauthorized()
        version = request.query_params.get("version")
        if version is None:
            versions = [v for (i, v) in store if i == id_]
            if not versions:
                return _not_found(f"{what} {id_}")
            version = max(versions, key=lambda v: (len(v), v))
        found = store.get((id_, version))
        if found is None:
            return _not_found(f"{what} {id_} version {version}")
        return JSONResponse(found)

    async def _recording(self, request: Request) -> Response:
        return _cdn_file(self.recordings.get(request.path_params["name"]), "audio/wav")

    async def _knowledge(self, request: Request) -> Response:
        return _cdn_file(self.knowledge.get(request.path_params["call_id"]), "text/plain")


def _cdn_file(data: bytes | None, media_type: str) -> Response:
    """A file as Retell's CDN serves it: 404 with an S3-style error body when there is none."""
    if data is None:
        return Response(b"<Error>NoSuchKey</Error>", status_code=404,
                        media_type="application/xml")
    return Response(data, media_type=media_type)


def make_retell_app(directories: list[Path], *, api_key: str = "test-retell-key") -> FakeRetellAPI:
    """A fake Retell API serving the Retell calls in ``directories``."""
    app = FakeRetellAPI(api_key)
    for directory in directories:
        app.add_directory(Path(directory))
    return app


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _start(call: Mapping[str, Any]) -> float:
    try:
        return float(call.get("start_timestamp") or 0)
    except (TypeError, ValueError):
        return 0.0


def _within(value: float, window: Mapping[str, Any]) -> bool:
    """Whether ``value`` passes a v3 number or range filter ``{op, type, value}``."""
    op, bound = window["op"], window["value"]
    if op == "bt":
        low, high = bound
        return float(low) <= value <= float(high)
    compare = {"eq": value.__eq__, "ne": value.__ne__, "gt": value.__gt__, "ge": value.__ge__,
               "lt": value.__lt__, "le": value.__le__}[op]
    return bool(compare(float(bound)))


def _unauthorized() -> Response:
    return JSONResponse({"message": "Invalid API key"}, status_code=401)


def _not_found(what: str) -> Response:
    return JSONResponse({"message": f"{what} not found"}, status_code=404)
