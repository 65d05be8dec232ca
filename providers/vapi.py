"""The Vapi adapter: calls, assistant snapshots and recordings from the Vapi API.

    provider = VapiProvider(api_key)            # or create("vapi"), which reads VAPI_API_KEY
    call = provider.get_call("1f2e…")           # GET /call/{id}
    for call in provider.list_calls(since=...): # GET /call, paged by moving the createdAt window
        ...
    snapshot = provider.get_snapshot(call)      # inline assistant, or GET /assistant/{id},
                                                # and GET /tool/{id} for its model.toolIds

Retries and error translation live in :class:`~voicereplay.providers.http.ProviderHTTP`.
Recordings are private: ``GET /call/{id}/<kind>-recording`` answers 302 to a short-lived signed
URL, which httpx follows without the Authorization header (it drops it when the redirect leaves
the host). When that endpoint 404s, the URL stored in the call is tried with a second client
that sends no API key, so the key never goes to another host.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from voicereplay.config import Settings
from voicereplay.errors import (
    ConfigError,
    NotFoundError,
    PayloadError,
    ProviderError,
    RecordingError,
)
from voicereplay.models import Call, Recording, RecordingKind
from voicereplay.providers import vapi_payload
from voicereplay.providers.base import CallProvider
from voicereplay.providers.fields import parse_timestamp
from voicereplay.providers.http import ProviderHTTP, path_segment
from voicereplay.providers.registry import register
from voicereplay.snapshot import AgentSnapshot

__all__ = ["VapiProvider", "parse_webhook"]

DEFAULT_BASE_URL = "https://api.vapi.ai"
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000  # Vapi's limit for GET /call
RECORDING_ENDPOINTS: dict[RecordingKind, str] = {
    "stereo": "stereo-recording",
    "customer": "customer-recording",
    "agent": "assistant-recording",
    "mixed": "mono-recording",
}


class VapiProvider(CallProvider):
    name = "vapi"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        **http_options: Any,
    ) -> None:
        self.http = ProviderHTTP(
            "vapi", base_url, api_key, key_env="VAPI_API_KEY", transport=transport, **http_options
        )

    def close(self) -> None:
        self.http.close()

    # -- calls ------------------------------------------------------------------------------
    def get_call(self, call_id: str) -> Call:
        body = self.http.get_json(f"/call/{_segment(call_id, 'call id')}", what=f"call {call_id}")
        return vapi_payload.parse_call(body, source=f"Vapi GET /call/{call_id}")

    def list_calls(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[Call]:
        """Calls created in ``[since, until)``, newest first, fetched one page at a time.

        ``GET /call`` has no cursor, so each next page asks for ``createdAtLe`` = the oldest
        ``createdAt`` seen; the calls at exactly that instant which were already yielded are
        skipped. If a whole page shares one instant, it is asked again 1,000 long, and past
        that the listing moves on to strictly older calls.
        """
        remaining = limit
        boundary: _Listed | None = None  # the oldest call yielded so far
        at_boundary: set[str] = set()  # ids yielded that were created at that same instant
        past_boundary = False  # ask for calls strictly older than the boundary
        page_size = min(limit, PAGE_SIZE) if limit is not None else PAGE_SIZE
        while remaining is None or remaining > 0:
            params: dict[str, Any] = {"limit": page_size}
            if since is not None:
                params["createdAtGe"] = _iso(since)
            if boundary is not None:
                params["createdAtLt" if past_boundary else "createdAtLe"] = boundary.created
            elif until is not None:
                params["createdAtLt"] = _iso(until)
            what = "the call list" + (f" (created by {boundary.created})" if boundary else "")
            page = _page(self.http.get_json("/call", what=what, params=params), what)
            fresh = [
                entry for entry in page
                if boundary is None
                or (entry.when <= boundary.when and entry.call_id not in at_boundary)
            ]
            if not fresh:
                if len(page) < page_size or past_boundary:
                    return
                # A full page created at one instant, all seen: ask once more with the
                # largest page; if that is all seen too, move on to strictly older calls.
                past_boundary = page_size >= MAX_PAGE_SIZE
                page_size = MAX_PAGE_SIZE
                continue
            past_boundary = False
            for entry in fresh:
                if boundary is None or entry.when != boundary.when:
                    boundary, at_boundary = entry, set()
                at_boundary.add(entry.call_id)
                yield vapi_payload.parse_call(
                    entry.item, source=f"Vapi GET /call item {entry.call_id}"
                )
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return
            if len(page) < page_size:
                return
            page_size = min(remaining, PAGE_SIZE) if remaining is not None else PAGE_SIZE

    # -- assistant --------------------------------------------------------------------------
    def get_snapshot(self, call: Call) -> AgentSnapshot:
        """The assistant inline in the call, else ``GET /assistant/{id}`` (via the squad)."""
        assistant = vapi_payload.embedded_assistant(call.raw)
        if assistant is None:
            assistant_id = _raw_text(call.raw, "assistantId")
            squad_id = _raw_text(call.raw, "squadId")
            if assistant_id is None and squad_id is not None:
                assistant, assistant_id = self._squad_assistant(call, squad_id)
            if assistant is None and assistant_id is not None:
                assistant = self.http.get_config_json(
                    f"/assistant/{_segment(assistant_id, 'assistant id')}",
                    what=f"assistant {assistant_id} (for call {call.call_id})",
                )
            if assistant is None:
                workflow = " (it ran a workflow, which is not supported)" if _raw_text(
                    call.raw, "workflowId") else ""
                raise PayloadError(
                    f"Vapi call {call.call_id} names no assistant or squad{workflow}, so the "
                    "agent that handled it cannot be fetched; import it from a file with the "
                    "assistant JSON beside it (<call>.assistant.json)",
                    source="Vapi",
                )
        tools: dict[str, Any] = {}
        for tool_id in vapi_payload.referenced_tool_ids(call, assistant):
            try:
                tools[tool_id] = self.http.get_config_json(
                    f"/tool/{_segment(tool_id, 'tool id')}",
                    what=f"tool {tool_id} (model.toolIds, for call {call.call_id})",
                )
            except NotFoundError:
                pass  # deleted since the call: build_snapshot leaves it out with a warning
        return vapi_payload.build_snapshot(call, assistant, tools)

    def _squad_assistant(self, call: Call, squad_id: str) -> tuple[Any, str | None]:
        """The first member of squad ``squad_id``: its inline assistant or its assistant id."""
        squad = self.http.get_config_json(
            f"/squad/{_segment(squad_id, 'squad id')}",
            what=f"squad {squad_id} (for call {call.call_id})",
        )
        members = squad.get("members") if isinstance(squad, dict) else None
        first = members[0] if isinstance(members, list) and members else None
        if not isinstance(first, dict):
            raise PayloadError(f"squad {squad_id} has no members", source="Vapi GET /squad")
        assistant = first.get("assistant")
        if isinstance(assistant, dict):
            return assistant, None
        assistant_id = first.get("assistantId")
        return None, assistant_id if isinstance(assistant_id, str) and assistant_id else None

    # -- recordings -------------------------------------------------------------------------
    def open_recording(
        self, call: Call, recording: Recording
    ) -> AbstractContextManager[Iterator[bytes]]:
        return self._download(call, recording)

    @contextmanager
    def _download(self, call: Call, recording: Recording) -> Iterator[Iterator[bytes]]:
        endpoint = RECORDING_ENDPOINTS[recording.kind]
        what = f"the {recording.kind} recording of call {call.call_id}"
        path = f"/call/{_segment(call.call_id, 'call id')}/{endpoint}"
        with ExitStack() as stack:
            try:
                chunks = stack.enter_context(self.http.stream(path, what=what))
            except NotFoundError as missing:
                url = recording.url
                if not url or not url.startswith(("https://", "http://")):
                    raise RecordingError(
                        f"Vapi: {what} is not available (GET {path} → 404) and the call names "
                        "no URL for it; check that recording was enabled "
                        "(assistant.artifactPlan.recordingEnabled)",
                        provider=self.name, status=404,
                    ) from missing
                try:
                    chunks = stack.enter_context(self.http.stream(url, what=what, authorize=False))
                except ProviderError as exc:
                    raise RecordingError(
                        f"Vapi: {what} is not available: GET {path} → 404, and its URL in the "
                        f"call ({_short(url)}) failed with HTTP {exc.status or 'error'}; "
                        "storage.vapi.ai recordings are private now, so check that the call id "
                        "is right and that the key's organisation owns the call",
                        provider=self.name, status=exc.status,
                    ) from exc
            yield chunks

    # -- webhooks ---------------------------------------------------------------------------
    def parse_webhook(self, body: bytes | str | Mapping[str, Any]) -> Call:
        """The call in an end-of-call-report webhook body; no signature check."""
        return parse_webhook(body)


def parse_webhook(body: bytes | str | Mapping[str, Any]) -> Call:
    """The call in a Vapi end-of-call-report body ``{"message": {"type": …, "call": …}}``."""
    source = "Vapi webhook"
    payload: Any = body
    if isinstance(body, bytes | str):
        try:
            payload = json.loads(body.removeprefix("\ufeff") if isinstance(body, str) else body)
        except (ValueError, RecursionError) as exc:
            raise PayloadError(f"the body is not JSON ({exc})", source=source) from exc
    if not isinstance(payload, Mapping) or not isinstance(payload.get("message"), Mapping):
        raise PayloadError(
            'expected a webhook body {"message": {"type": "end-of-call-report", …}}', source=source
        )
    return vapi_payload.parse_call(payload, source=source)


@dataclass(frozen=True)
class _Listed:
    call_id: str
    created: str  # as Vapi wrote it, sent back verbatim as the next window's bound
    when: datetime
    item: dict[str, Any]


def _page(page: Any, what: str) -> list[_Listed]:
    """The calls of one ``GET /call`` answer, newest first (the API's order is undocumented)."""
    if not isinstance(page, list):
        raise PayloadError(
            f"{what}: expected a JSON list of calls, got {type(page).__name__}; "
            "check the base URL (VAPI_BASE_URL)",
            source="Vapi GET /call",
        )
    items = []
    for index, item in enumerate(page):
        call_id = item.get("id") if isinstance(item, dict) else None
        created = item.get("createdAt") if isinstance(item, dict) else None
        if not isinstance(call_id, str) or not call_id or not isinstance(created, str):
            raise PayloadError(
                f"{what}: item {index} is not a call with an id and a createdAt",
                source="Vapi GET /call",
            )
        try:
            when = parse_timestamp(created)
        except ValueError as exc:
            raise PayloadError(
                f"{what}: call {call_id} has createdAt {created!r}, which is not a date ({exc})",
                source="Vapi GET /call",
            ) from exc
        items.append(_Listed(call_id, created, when, item))
    items.sort(key=lambda entry: entry.when, reverse=True)
    return items


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _segment(value: str, what: str) -> str:
    """A call id (given by the user) or an id from a payload, as one path segment."""
    return path_segment(value, what, error=ConfigError if what == "call id" else PayloadError)


def _raw_text(raw: Mapping[str, Any], key: str) -> str | None:
    """A text field of the call object in a GET /call or end-of-call-report body."""
    message = raw.get("message")
    holders = [message, message.get("call")] if isinstance(message, Mapping) else [raw]
    for holder in holders:
        value = holder.get(key) if isinstance(holder, Mapping) else None
        if isinstance(value, str) and value:
            return value
    return None


def _short(url: str) -> str:
    return url.split("?", 1)[0][:120]


def _factory(
    api_key: str | None = None,
    base_url: str | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float | None = None,
    settings: Settings | None = None,
    **_: Any,
) -> VapiProvider:
    """Options given win over ``settings`` (read from the environment when not given);
    ``timeout`` is seconds per try."""
    settings = settings or Settings.from_env()
    return VapiProvider(
        api_key or settings.vapi_api_key,
        base_url or settings.vapi_base_url,
        transport=transport,
        timeout=timeout if timeout is not None else settings.http_timeout,
    )


register("vapi", _factory)
