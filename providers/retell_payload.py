"""Retell call payloads → :class:`~voicereplay.models.Call`. Pure functions, no I/O.

Accepts what Retell sends or serves: a ``GET /v2/get-call`` body, a ``list-calls`` item, or a
webhook body ``{"event": …, "call": {…}}``. Older webhooks used ``"data"`` instead of ``"call"``.
Units are converted at this boundary:

* Timestamps in epoch ms become UTC datetimes.
* ``*_ms`` values become seconds.
* Costs in cents become USD.

Malformed input raises :class:`~voicereplay.errors.PayloadError`, with the field path and
``source`` in the message. It never raises any other exception and never returns a
half-built call. :func:`build_snapshot` (in :mod:`.retell_agent`) freezes the agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from voicereplay.errors import PayloadError
from voicereplay.models import (
    Analysis,
    Call,
    CallType,
    Cost,
    CostItem,
    ProviderMetrics,
    Recording,
    RecordingKind,
)
from voicereplay.providers.fields import Obj, check_depth
from voicereplay.providers.retell_agent import build_snapshot
from voicereplay.providers.retell_fields import call_body
from voicereplay.providers.retell_transcript import build_turns, latency_metrics

__all__ = ["build_snapshot", "call_body", "is_retell", "parse_call"]

_CALL_MARKERS = (
    "agent_id",
    "call_status",
    "call_type",
    "transcript_object",
    "transcript_with_tool_calls",
    "start_timestamp",
)
_RECORDING_KEYS: tuple[tuple[RecordingKind, str, str], ...] = (
    ("stereo", "recording_multi_channel_url", "scrubbed_recording_multi_channel_url"),
    ("mixed", "recording_url", "scrubbed_recording_url"),
)


def is_retell(payload: Any) -> bool:
    """True for a Retell call body or a Retell webhook body wrapping one."""
    if not isinstance(payload, Mapping):
        return False
    if _looks_like_call(payload):
        return True
    if isinstance(payload.get("event"), str):
        return any(_looks_like_call(payload.get(key)) for key in ("call", "data"))
    return False


def _looks_like_call(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("call_id"), str)
        and any(key in value for key in _CALL_MARKERS)
    )


def parse_call(payload: Any, *, source: str | None = None) -> Call:
    """Normalize one Retell call body or webhook body."""
    check_depth(payload, source=source)
    root = Obj.of(payload, "", source, lenient=True)
    body, path = call_body(root.data)
    if not path and "event" in root.data and "call_id" not in root.data:
        what = "a chat event" if "chat" in root.data else "a webhook body without a call"
        raise PayloadError(f"{what} (no 'call' or 'data' object); nothing to import", source=source)
    call = root.child(body, path) if path else root
    call_id = call.string("call_id", required=True)
    if not call_id:
        call.fail("call_id", "is empty")
    if source is None:
        call = replace(call, source=f"Retell call {call_id}")
    try:
        return _build(call, call_id, dict(root.data))
    except ValidationError as exc:  # a value our model refuses, e.g. a non-string key
        call.invalid(exc)


def _build(call: Obj, call_id: str, raw: dict[str, Any]) -> Call:
    agent_name = call.string("agent_name")
    started = call.when("start_timestamp")
    ended = call.when("end_timestamp")
    duration_ms = call.number("duration_ms")
    if duration_ms is not None and duration_ms < 0:
        call.fail("duration_ms", f"is negative ({duration_ms:g})")
    if duration_ms is not None:
        duration: float | None = duration_ms / 1000
    elif started and ended and ended >= started:
        duration = (ended - started).total_seconds()
    else:
        duration = None
    call_type = _call_type(call)
    turns = build_turns(call, agent_name)
    summary, latencies = latency_metrics(call.obj("latency"), turns)
    return Call(
        provider="retell",
        call_id=call_id,
        type=call_type,
        status=call.string("call_status"),
        started_at=started,
        ended_at=ended,
        duration=duration,
        ended_reason=call.string("disconnection_reason"),
        cost=_cost(call.obj("call_cost")),
        analysis=_analysis(call.obj("call_analysis")),
        customer_number=_customer_number(call, call_type),
        agent_id=call.string("agent_id"),
        agent_version=call.ident("agent_version"),
        turns=turns,
        provider_metrics=ProviderMetrics(turn_latencies=latencies, summary=summary),
        recordings=_recordings(call),
        metadata=_metadata(call),
        raw=raw,
    )


def _call_type(call: Obj) -> CallType:
    kind = call.string("call_type")
    direction = call.string("direction")
    if kind == "web_call":
        return "web"
    if kind in (None, "phone_call") and direction in ("inbound", "outbound"):
        return "inbound" if direction == "inbound" else "outbound"
    return "unknown"


def _customer_number(call: Obj, call_type: CallType) -> str | None:
    from_number = call.string("from_number")
    to_number = call.string("to_number")
    if call_type == "inbound":
        return from_number
    if call_type == "outbound":
        return to_number
    return None


def _cost(cost: Obj | None) -> Cost:
    if cost is None:
        return Cost()
    items = []
    for item in cost.objects("product_costs"):
        product = item.string("product") or "unknown"
        cents = item.number("cost", required=True)
        assert cents is not None
        detail: dict[str, Any] = {"product": product}
        unit_price = item.number("unit_price")
        if unit_price is not None:
            detail["unit_price_usd"] = _usd(unit_price)
        if item.flag("is_transfer_leg_cost"):
            detail["is_transfer_leg_cost"] = True
        items.append(CostItem(kind=_cost_kind(product), usd=_usd(cents), detail=detail))
    combined = cost.number("combined_cost")
    return Cost(total_usd=_usd(combined) if combined is not None else None, breakdown=items)


def _usd(cents: float) -> float:
    return round(cents / 100, 10)


_COST_KINDS = (
    ("tts", ("tts", "elevenlabs", "cartesia", "playht", "minimax", "voice")),
    ("stt", ("stt", "asr", "transcri", "deepgram")),
    ("llm", ("llm", "gpt", "claude", "gemini", "s2s", "realtime")),
    ("transport", ("telephony", "twilio", "telnyx", "vonage", "sip", "phone")),
    ("knowledge_base", ("knowledge", "kb")),
    ("platform", ("platform", "retell", "infra")),
)


def _cost_kind(product: str) -> str:
    """Our cost kind for a Retell product name (the name itself when none fits)."""
    lowered = product.lower()
    for kind, needles in _COST_KINDS:
        if any(n in lowered for n in needles):
            return kind
    return product


def _analysis(analysis: Obj | None) -> Analysis:
    if analysis is None:
        return Analysis()
    return Analysis(
        summary=analysis.string("call_summary"),
        success=analysis.flag("call_successful"),
        sentiment=analysis.string("user_sentiment"),
        structured_data=analysis.mapping("custom_analysis_data"),
    )


def _recordings(call: Obj) -> list[Recording]:
    out = []
    for kind, plain, scrubbed in _RECORDING_KEYS:
        url = call.string(plain) or call.string(scrubbed)
        if url:
            out.append(Recording(kind=kind, url=url))
    return out


def _metadata(call: Obj) -> dict[str, Any]:
    metadata = call.mapping("metadata")
    for key in ("retell_llm_dynamic_variables", "collected_dynamic_variables"):
        values = call.mapping(key)
        if values:
            metadata[key] = values
    return metadata
