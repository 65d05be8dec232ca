"""The Retell AI adapter: calls, agent snapshots and recordings from the Retell API.

    provider = RetellProvider(api_key)          # or create("retell"), which reads RETELL_API_KEY
    call = provider.get_call("call_abc")        # GET /v2/get-call/{id}
    for call in provider.list_calls(since=...): # POST /v3/list-calls (else /v2), paged
        ...
    snapshot = provider.get_snapshot(call)      # GET /get-agent + /get-retell-llm at the versions

Retries and error translation live in :class:`~voicereplay.providers.http.ProviderHTTP`.
Recordings sit on Retell's public CDN, and so does the file of knowledge-base contents a call
retrieved (``knowledge_base_retrieved_contents_url``, read by :mod:`.retell_knowledge`). Both
are fetched without the API key, so the key never goes to another host.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from voicereplay.config import Settings
from voicereplay.errors import (
    AuthError,
    NotFoundError,
    PayloadError,
    RecordingError,
    VoiceReplayError,
)
from voicereplay.models import Call, Recording
from voicereplay.providers import retell_payload
from voicereplay.providers.base import CallProvider
from voicereplay.providers.http import ProviderHTTP, path_segment
from voicereplay.providers.registry import register
from voicereplay.providers.retell_knowledge import knowledge_url, with_retrieved
from voicereplay.snapshot import AgentSnapshot

__all__ = ["RetellProvider"]

DEFAULT_BASE_URL = "https://api.retellai.com"
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_KNOWLEDGE_BYTES = 8 << 20  # a retrieved-contents file larger than this is not read
_TRANSCRIPT_KEYS = ("transcript_with_tool_calls", "transcript_object", "transcript")


class RetellProvider(CallProvider):
    name = "retell"
    page_size = PAGE_SIZE  # calls asked for per list-calls request

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        **http_options: Any,
    ) -> None:
        self.http = ProviderHTTP(
            "retell", base_url, api_key, key_env="RETELL_API_KEY", transport=transport,
            **http_options,
        )
        self._list_api: int | None = None  # 3 or 2 once the API has answered a listing

    def close(self) -> None:
        self.http.close()

    # -- calls ------------------------------------------------------------------------------
    def get_call(self, call_id: str) -> Call:
        path = f"/v2/get-call/{path_segment(call_id, 'call id')}"
        body = self.http.get_json(path, what=f"call {call_id}")
        return retell_payload.parse_call(body, source=f"Retell get-call {call_id}")

    def list_calls(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[Call]:
        """Calls started in ``[since, until)``, newest first, one page at a time.

        ``POST /v3/list-calls`` (the current API) first; an account whose API answers it 404
        is listed with ``POST /v2/list-calls`` from then on.
        """
        count = 0
        pages = self._v2_pages if self._list_api == 2 else self._v3_pages
        for item in pages(since, until, limit):
            yield self._full_call(item)
            count += 1
            if limit is not None and count >= limit:
                return

    def _size(self, limit: int | None, listed: int) -> int:
        size = min(self.page_size, MAX_PAGE_SIZE)
        return size if limit is None else min(size, limit - listed)

    def _v3_pages(
        self, since: datetime | None, until: datetime | None, limit: int | None
    ) -> Iterator[dict[str, Any]]:
        """List items from ``/v3/list-calls``: an opaque cursor and ``has_more``, no transcripts."""
        window: dict[str, Any] | None = None
        if since is not None and until is not None:
            window = {"op": "bt", "type": "range",
                      "value": [_epoch_ms(since), _epoch_ms(until) - 1]}
        elif since is not None:
            window = {"op": "ge", "type": "number", "value": _epoch_ms(since)}
        elif until is not None:
            window = {"op": "lt", "type": "number", "value": _epoch_ms(until)}
        seen: set[str] = set()
        cursor: str | None = None
        while (size := self._size(limit, len(seen))) > 0:
            body: dict[str, Any] = {"sort_order": "descending", "limit": size}
            if window is not None:
                body["filter_criteria"] = {"start_timestamp": window}
            if cursor:
                body["pagination_key"] = cursor
            what = "the call list" + (" (next page)" if cursor else "")
            try:
                page = self.http.post_json("/v3/list-calls", body, what=what)
            except NotFoundError:
                if cursor is None:  # an API without v3: list the v2 way
                    self._list_api = 2
                    yield from self._v2_pages(since, until, limit)
                    return
                raise
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise PayloadError(
                    f"{what}: expected {{items, has_more, pagination_key}} with a list of calls, "
                    f"got {type(page).__name__}", source="Retell /v3/list-calls",
                )
            self._list_api = 3
            items = _page_items(page["items"], what)
            fresh = [item for item in items if item["call_id"] not in seen]
            for item in fresh:
                seen.add(item["call_id"])
                yield item
            cursor = page.get("pagination_key")
            if not page.get("has_more") or not isinstance(cursor, str) or not cursor or not fresh:
                return

    def _v2_pages(
        self, since: datetime | None, until: datetime | None, limit: int | None
    ) -> Iterator[dict[str, Any]]:
        """List items from ``/v2/list-calls``, paged by the last call id (exclusive)."""
        threshold: dict[str, int] = {}
        if since is not None:
            threshold["lower_threshold"] = _epoch_ms(since)
        if until is not None:
            threshold["upper_threshold"] = _epoch_ms(until) - 1
        pagination_key: str | None = None
        seen: set[str] = set()
        while (size := self._size(limit, len(seen))) > 0:
            body: dict[str, Any] = {"sort_order": "descending", "limit": size}
            if threshold:
                body["filter_criteria"] = {"start_timestamp": threshold}
            if pagination_key:
                body["pagination_key"] = pagination_key
            what = "the call list" + (f" after call {pagination_key}" if pagination_key else "")
            items = _page_items(self.http.post_json("/v2/list-calls", body, what=what), what)
            fresh = [item for item in items if item["call_id"] not in seen]
            for item in fresh:
                seen.add(item["call_id"])
                yield item
            if len(items) < size or not fresh:
                return
            pagination_key = items[-1]["call_id"]

    def _full_call(self, item: Mapping[str, Any]) -> Call:
        """A list item as a call, fetched again when the list left out its transcript."""
        call_id = item["call_id"]
        if not any(key in item for key in _TRANSCRIPT_KEYS):
            return self.get_call(call_id)
        return retell_payload.parse_call(item, source=f"Retell list-calls item {call_id}")

    # -- agent ------------------------------------------------------------------------------
    def get_snapshot(self, call: Call) -> AgentSnapshot:
        """The agent and its Retell LLM at the versions that handled ``call``."""
        if not call.agent_id:
            raise PayloadError(
                f"call {call.call_id} names no agent_id, so its agent cannot be fetched",
                source="Retell",
            )
        version = call.agent_version
        agent = self.http.get_config_json(
            f"/get-agent/{path_segment(call.agent_id, 'agent id', error=PayloadError)}",
            what=f"agent {call.agent_id}{_at(version)} (for call {call.call_id})",
            params={"version": version} if version is not None else None,
        )
        if not isinstance(agent, dict):
            raise PayloadError(
                f"agent {call.agent_id}: expected a JSON object, got {type(agent).__name__}",
                source=f"Retell get-agent for call {call.call_id}",
            )
        llm = None
        engine = agent.get("response_engine")
        if isinstance(engine, dict) and engine.get("type") == "retell-llm":
            llm_id = engine.get("llm_id")
            if not isinstance(llm_id, str) or not llm_id:
                raise PayloadError(
                    f"agent {call.agent_id}: response_engine.llm_id is missing",
                    source=f"Retell get-agent for call {call.call_id}",
                )
            llm_version = engine.get("version")
            llm = self.http.get_config_json(
                f"/get-retell-llm/{path_segment(llm_id, 'LLM id', error=PayloadError)}",
                what=f"Retell LLM {llm_id}{_at(llm_version)} (for call {call.call_id})",
                params={"version": llm_version} if llm_version is not None else None,
            )
        return retell_payload.build_snapshot(call, agent, llm)

    # -- recordings -------------------------------------------------------------------------
    def open_recording(
        self, call: Call, recording: Recording
    ) -> AbstractContextManager[Iterator[bytes]]:
        if not recording.url:
            raise RecordingError(
                f"call {call.call_id} has no URL for its {recording.kind} recording; "
                "Retell may not have stored one (check the agent's data storage setting)",
                provider=self.name,
            )
        return self._download(call, recording, recording.url)

    @contextmanager
    def _download(self, call: Call, recording: Recording, url: str) -> Iterator[Iterator[bytes]]:
        what = f"the {recording.kind} recording of call {call.call_id}"
        try:
            # recording URLs are CDN links: the API key never goes with them
            with self.http.stream(url, what=what, authorize=False) as chunks:
                yield chunks
        except (AuthError, NotFoundError) as exc:
            raise RecordingError(
                f"Retell: {what} was refused (HTTP {exc.status}); recording URLs may expire "
                "after 24 h, so get the call again for fresh ones",
                provider=self.name,
                status=exc.status,
            ) from exc

    # -- knowledge base ---------------------------------------------------------------------
    def fetch_knowledge(self, call: Call) -> Call:
        """``call`` with the contexts of its ``knowledge_base_retrieved_contents_url``."""
        url = knowledge_url(call)
        if url is None:
            return call
        what = f"the knowledge-base contents of call {call.call_id}"
        try:
            text = self._download_text(url, what)
        except (AuthError, NotFoundError) as exc:
            return _warned(call, f"{what} were refused (HTTP {exc.status}); the URL may have "
                                 "expired (after 24 h), so get the call again for a fresh one; "
                                 "imported without them")
        except VoiceReplayError as exc:
            return _warned(call, f"{what} could not be fetched: {exc}; imported without them")
        return with_retrieved(call, text)

    def _download_text(self, url: str, what: str) -> str:
        data = bytearray()
        with self.http.stream(url, what=what, authorize=False) as chunks:
            for chunk in chunks:
                data += chunk
                if len(data) > MAX_KNOWLEDGE_BYTES:
                    raise PayloadError(f"{what} are larger than "
                                       f"{MAX_KNOWLEDGE_BYTES >> 20} MB", source="Retell")
        return data.decode("utf-8", errors="replace").removeprefix("\ufeff")

    # -- webhooks ---------------------------------------------------------------------------
    def parse_webhook(self, body: bytes | str | Mapping[str, Any]) -> Call:
        """The call in a Retell webhook body (``{"event": …, "call": {…}}``); no signature check."""
        return parse_webhook(body)


def parse_webhook(body: bytes | str | Mapping[str, Any]) -> Call:
    """The call in a Retell webhook body (``call_ended``, ``call_analyzed``, …)."""
    source = "Retell webhook"
    payload: Any = body
    if isinstance(body, bytes | str):
        try:
            payload = json.loads(body.removeprefix("\ufeff") if isinstance(body, str) else body)
        except (ValueError, RecursionError) as exc:
            raise PayloadError(f"the body is not JSON ({exc})", source=source) from exc
    if not isinstance(payload, Mapping) or not isinstance(payload.get("event"), str):
        raise PayloadError("expected a webhook body {\"event\": …, \"call\": {…}}", source=source)
    event = payload["event"]
    return retell_payload.parse_call(payload, source=f"{source} {event}")


def _warned(call: Call, warning: str) -> Call:
    return call.model_copy(update={"warnings": [*call.warnings, warning]})


def _page_items(page: Any, what: str) -> list[dict[str, Any]]:
    items = page.get("items") if isinstance(page, dict) else page  # v2: a bare list
    if not isinstance(items, list):
        raise PayloadError(
            f"{what}: expected a JSON list of calls, got {type(page).__name__}", source="Retell"
        )
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("call_id"), str):
            raise PayloadError(f"{what}: item {i} is not a call with a call_id", source="Retell")
    return items


def _epoch_ms(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _at(version: object) -> str:
    return f" version {version}" if version is not None else ""


def _factory(
    api_key: str | None = None,
    base_url: str | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float | None = None,
    settings: Settings | None = None,
    **_: Any,
) -> RetellProvider:
    """Options given win over ``settings`` (read from the environment when not given);
    ``timeout`` is seconds per try."""
    settings = settings or Settings.from_env()
    return RetellProvider(
        api_key or settings.retell_api_key,
        base_url or settings.retell_base_url,
        transport=transport,
        timeout=timeout if timeout is not None else settings.http_timeout,
    )


register("retell", _factory)
