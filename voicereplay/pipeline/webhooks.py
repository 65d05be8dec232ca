"""Receiving a provider webhook: verify its sender, read its shape, store it — nothing more.

:func:`receive` is all an endpoint does, in this order:

1. verify (:mod:`voicereplay.signatures`) — a provider with no secret configured refuses
   everything (401), so an unauthenticated webhook is never stored;
2. parse the body (:func:`parse_vapi`, :func:`parse_retell`) — a malformed one is a
   :class:`MalformedWebhook` (400) naming what is wrong; a type voicereplay does not act on
   is acknowledged and ignored;
3. store the event (``store.events.record``, committed before this returns) — a redelivery of
   a stored event is acknowledged as a duplicate and stored once.

A process receives one delivery at a time (``_RECEIVING``): the work is Python (one core per
process) and writes that take turns anyway (SQLite has one writer, and a process's write
sessions take turns), so request threads working side by side only add switching — with 16 at
once, 1.8 ms of CPU a delivery instead of 1.0 ms (``bench/webhooks.py``).

Processing the stored events (importing the call, rules, replays, notifications) happens
outside the request, in the event job :func:`receive` queues
(:mod:`voicereplay.pipeline.triggers`), so the webhook is acknowledged fast.

Which events are stored: Vapi ``end-of-call-report`` and ``status-update`` (as
``status-update:<status>``, so each status of a call is one event: ``in-progress``,
``ended``, …); Retell ``call_ended`` and ``call_analyzed``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from voicereplay.config import Settings
from voicereplay.errors import PayloadError
from voicereplay.pipeline.jobs import Submit
from voicereplay.pipeline.triggers import queue_event
from voicereplay.signatures import WebhookAuthError, verify_retell, verify_vapi
from voicereplay.store import Store

__all__ = [
    "PROVIDERS",
    "MalformedWebhook",
    "Receipt",
    "WebhookEvent",
    "parse_retell",
    "parse_vapi",
    "receive",
]

PROVIDERS = ("vapi", "retell")
VAPI_STORED = ("end-of-call-report", "status-update")
RETELL_STORED = ("call_ended", "call_analyzed")
KEPT_HEADERS = ("content-type", "user-agent")  # stored with the event; never a secret
_RECEIVING = threading.Lock()  # one delivery at a time in a process (see the module docs)


class MalformedWebhook(PayloadError):
    """A webhook body that is not what the provider sends (HTTP 400)."""

    http_status = 400


@dataclass(frozen=True)
class WebhookEvent:
    """What a webhook body says: its type (None: not one voicereplay stores) and call id."""

    event_type: str | None
    call_id: str | None
    received_type: str


@dataclass(frozen=True)
class Receipt:
    """The answer to a webhook: ``stored`` (new), ``duplicate`` or ``ignored``."""

    status: Literal["stored", "duplicate", "ignored"]
    provider: str
    event_type: str
    event_id: str | None = None
    call_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "provider": self.provider, "type": self.event_type,
                "event_id": self.event_id, "call_id": self.call_id,
                "duplicate": self.status == "duplicate"}


def _json_object(body: bytes, provider: str) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedWebhook(f"the body is not JSON ({exc})", source=provider) from None
    if not isinstance(data, dict):
        raise MalformedWebhook("the body is not a JSON object", source=provider)
    return data


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_vapi(body: bytes) -> WebhookEvent:
    """A Vapi server message ``{"message": {"type", "call", …}}``."""
    message = _json_object(body, "vapi").get("message")
    if not isinstance(message, dict):
        raise MalformedWebhook('no "message" object in the body', source="vapi")
    kind = _text(message.get("type"))
    if kind is None:
        raise MalformedWebhook('the message has no "type"', source="vapi")
    if kind not in VAPI_STORED:
        return WebhookEvent(None, None, kind)
    call = message.get("call")
    call_id = _text(call.get("id")) if isinstance(call, dict) else None
    if call_id is None:
        raise MalformedWebhook(f'the {kind} message has no "call.id"', source="vapi")
    if kind == "status-update":
        status = _text(message.get("status"))
        kind = f"status-update:{status}" if status else kind
    return WebhookEvent(kind, call_id, kind)


def parse_retell(body: bytes) -> WebhookEvent:
    """A Retell webhook ``{"event", "call"}`` (older payloads carry ``data``)."""
    data = _json_object(body, "retell")
    event = _text(data.get("event"))
    if event is None:
        raise MalformedWebhook('no "event" in the body', source="retell")
    if event not in RETELL_STORED:
        return WebhookEvent(None, None, event)
    call = data.get("call", data.get("data"))
    call_id = _text(call.get("call_id")) if isinstance(call, dict) else None
    if call_id is None:
        raise MalformedWebhook(f'the {event} event has no "call.call_id"', source="retell")
    return WebhookEvent(event, call_id, event)


def verify(provider: str, settings: Settings, body: bytes, headers: Mapping[str, str], *,
           now: float | None = None) -> None:
    """Raise :class:`WebhookAuthError` unless the webhook is signed as configured."""
    if provider == "vapi":
        if settings.vapi_webhook is None:
            raise WebhookAuthError("Vapi webhooks are refused: no secret is configured (set "
                                   "VOICEREPLAY_VAPI_WEBHOOK_SECRET and, for a bearer token "
                                   "or HMAC, VOICEREPLAY_VAPI_WEBHOOK_AUTH)")
        verify_vapi(settings.vapi_webhook, body, headers, now=now)
    elif provider == "retell":
        if settings.retell_webhook_key is None:
            raise WebhookAuthError("Retell webhooks are refused: no key is configured (set "
                                   "RETELL_API_KEY or VOICEREPLAY_RETELL_WEBHOOK_KEY to the "
                                   "API key with the webhook badge)")
        verify_retell(settings.retell_webhook_key, body, headers, now=now)
    else:
        raise ValueError(f"unknown webhook provider {provider!r}")


def receive(provider: str, store: Store, settings: Settings, body: bytes,
            headers: Mapping[str, str], *, now: float | None = None,
            submit: Submit | None = None) -> Receipt:
    """Verify, parse and durably store one webhook delivery (see the module docs), then
    queue its event job with ``submit`` (when given: the web app's queue)."""
    with _RECEIVING:
        verify(provider, settings, body, headers, now=now)
        event = parse_vapi(body) if provider == "vapi" else parse_retell(body)
        if event.event_type is None or event.call_id is None:
            return Receipt("ignored", provider, event.received_type)
        kept = {name: headers[name] for name in KEPT_HEADERS if headers.get(name) is not None}
        stored, new = store.events.record(provider, event.event_type, event.call_id,
                                          body.decode("utf-8"), kept)
        if submit is not None and stored.status == "PENDING":  # a redelivery after a crash
            queue_event(store, settings, submit, stored)
    return Receipt("stored" if new else "duplicate", provider, event.event_type, stored.id,
                   event.call_id)
