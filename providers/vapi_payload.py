"""Vapi payloads → our :class:`~voicereplay.models.Call`: pure functions, no I/O.

Two shapes are accepted: a ``GET /call/{id}`` body, and an end-of-call-report webhook body
``{"message": {"type": "end-of-call-report", "call": {…stale…}, "artifact": …}}``. For a report,
:func:`call_object` lays the report's own fields over its stale ``message.call`` so the rest of
the parser reads one flat call object. The drift between Vapi API versions (timestamp formats,
``duration`` units, roles, legacy top-level fields, squads) is described in
``reference/provider-apis.md`` §1 and handled here and in :mod:`.vapi_messages`.

Anything malformed raises :class:`~voicereplay.errors.PayloadError` naming the field and source.
Snapshots (the assistant config) are built in :mod:`.vapi_snapshot`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from voicereplay.models import (
    Analysis,
    Call,
    CallType,
    Cost,
    CostItem,
    ProviderMetrics,
    Recording,
    RecordingKind,
    Turn,
    TurnLatency,
)
from voicereplay.providers.vapi_fields import (
    CallObject,
    Fields,
    call_object,
    join,
    parse_timestamp,
    to_epoch_ms,
)
from voicereplay.providers.vapi_messages import parse_messages, parse_transcript
from voicereplay.providers.vapi_snapshot import build_snapshot, embedded_assistant

__all__ = [
    "build_snapshot",
    "embedded_assistant",
    "is_vapi",
    "parse_call",
    "parse_timestamp",
]

CALL_TYPES: dict[str, CallType] = {
    "inboundPhoneCall": "inbound",
    "outboundPhoneCall": "outbound",
    "webCall": "web",
    "vapi.websocketCall": "web",
}


_CALL_KEYS = frozenset({
    "type", "status", "artifact", "messages", "startedAt", "endedAt", "endedReason",
    "assistantId", "assistant", "squadId", "squad", "customer", "phoneNumberId", "cost", "costs",
    "transcript",
})
_ASSISTANT_KEYS = frozenset({"model", "voice", "transcriber", "firstMessage"})


def is_vapi(payload: Any) -> bool:
    """True for a Vapi ``GET /call`` object or a Vapi webhook body ``{"message": {"type"}}``."""
    if not isinstance(payload, Mapping):
        return False
    message = payload.get("message")
    if isinstance(message, Mapping) and isinstance(message.get("type"), str):
        return True
    if _is_assistant(payload):
        return False
    if "orgId" in payload or isinstance(payload.get("artifact"), Mapping):
        return True
    if isinstance(payload.get("type"), str) and payload["type"] in CALL_TYPES:
        return True
    messages = payload.get("messages")
    return isinstance(messages, list) and any(
        isinstance(m, Mapping) and "secondsFromStart" in m for m in messages[:5]
    )


def parse_call(payload: Mapping[str, Any], *, source: str | None = None) -> Call:
    """Normalize a Vapi GET /call body or end-of-call-report body; ``raw`` keeps it verbatim."""
    r = Fields(source, "Vapi call")
    call = call_object(payload, r)
    c = call.data
    call_id = r.ident(c, "id", call.where("id"))
    if not call_id:
        r.fail(call.path("id"), "is missing; a Vapi call must have an id")
    if _is_assistant(c):
        r.fail("(top level)", "is a Vapi assistant, not a call (it has model/voice and no "
                              "call fields); pass it as the call's .assistant.json sidecar")
    r.what = f"Vapi call {call_id}"
    p = call.path

    artifact = r.mapping(c, "artifact", call.where("artifact")) or {}
    started = r.when(c, "startedAt", call.where("startedAt"))
    ended = r.when(c, "endedAt", call.where("endedAt"))
    duration: float | None = None
    if started and ended:
        duration = round(max(0.0, (ended - started).total_seconds()), 3)
    else:
        ms = r.number(c, "durationMs", call.where("durationMs"))
        seconds = r.number(c, "durationSeconds", call.where("durationSeconds"))
        duration = seconds if seconds is not None else (ms / 1000 if ms is not None else None)
        duration = None if duration is None else max(0.0, duration)

    customer = r.mapping(c, "customer", call.where("customer")) or {}
    assistant = r.mapping(c, "assistant", call.where("assistant")) or {}
    squad = bool(c.get("squadId") or c.get("squad"))
    call_type = r.text(c, "type", call.where("type"))

    try:
        return Call(
            provider="vapi",
            call_id=call_id,
            type=CALL_TYPES.get(call_type or "", "unknown"),
            status=r.text(c, "status", call.where("status")),
            started_at=started,
            ended_at=ended,
            duration=duration,
            ended_reason=r.text(c, "endedReason", call.where("endedReason")),
            cost=_cost(r, call),
            analysis=_analysis(r, call, artifact),
            customer_number=r.text(customer, "number", p("customer")),
            agent_id=(
                r.ident(c, "assistantId", call.where("assistantId"))
                or r.ident(assistant, "id", p("assistant"))
                or r.ident(c, "squadId", call.where("squadId"))
            ),
            agent_version=r.ident(c, "assistantVersion", call.where("assistantVersion")),
            turns=_turns(r, call, artifact, started, squad=squad),
            provider_metrics=_metrics(r, artifact, f"{p('artifact')}"),
            recordings=_recordings(r, call, artifact),
            metadata=r.mapping(c, "metadata", call.where("metadata")) or {},
            raw=dict(payload),
        )
    except ValidationError as exc:  # a value our checks let through but the model refused
        err = exc.errors()[0]
        where_ = ".".join(str(part) for part in err["loc"])
        r.fail(where_ or "(top level)", f"is not valid: {err['msg']}")


def _is_assistant(obj: Mapping[str, Any]) -> bool:
    return not _CALL_KEYS.intersection(obj) and bool(_ASSISTANT_KEYS.intersection(obj))


def _turns(r: Fields, call: CallObject, artifact: dict[str, Any], started: Any, *,
           squad: bool) -> list[Turn]:
    c, p = call.data, call.path
    messages = r.sequence(artifact, "messages", p("artifact"))
    where = join(p("artifact"), "messages")
    if not messages:
        messages = r.sequence(c, "messages", call.where("messages"))
        where = p("messages")
    if messages:
        start_ms = to_epoch_ms(started) if started is not None else None
        return parse_messages(r, messages, where, call_start_ms=start_ms, squad=squad)
    transcript = r.text(artifact, "transcript", p("artifact")) or r.text(
        c, "transcript", call.where("transcript")
    )
    return parse_transcript(transcript) if transcript else []


_RECORDING_SOURCES: tuple[tuple[RecordingKind, tuple[str, ...]], ...] = (
    ("stereo", ("recording.stereoUrl", "stereoRecordingUrl", "@stereoRecordingUrl",
                "presignedStereoUrl")),
    ("customer", ("recording.mono.customerUrl", "presignedCustomerUrl")),
    ("agent", ("recording.mono.assistantUrl", "presignedAssistantUrl")),
    ("mixed", ("recording.mono.combinedUrl", "recordingUrl", "@recordingUrl",
               "presignedMonoUrl")),
)


def _recordings(r: Fields, call: CallObject, artifact: dict[str, Any]) -> list[Recording]:
    """URLs from artifact.recording, artifact.*RecordingUrl, then the legacy top-level fields."""
    out: list[Recording] = []
    for kind, paths in _RECORDING_SOURCES:
        for dotted in paths:
            if dotted.startswith("@"):
                url = r.text(call.data, dotted[1:], call.where(dotted[1:]))
            else:
                url = _dig_text(r, artifact, dotted, call.path("artifact"))
            if url:
                out.append(Recording(kind=kind, url=url))
                break
    return out


def _dig_text(r: Fields, obj: dict[str, Any], dotted: str, where: str) -> str | None:
    *parents, last = dotted.split(".")
    node: dict[str, Any] | None = obj
    for key in parents:
        node = r.mapping(node, key, where) if node is not None else None
        where = join(where, key)
    return r.text(node, last, where) if node is not None else None


_COST_KINDS = {
    "transcriber": "stt",
    "model": "llm",
    "voice": "tts",
    "vapi": "platform",
    "transport": "transport",
    "analysis": "analysis",
    "voicemail-detection": "voicemail_detection",
    "knowledge-base": "knowledge_base",
}
_BREAKDOWN_KINDS = {
    "transport": "transport",
    "stt": "stt",
    "llm": "llm",
    "tts": "tts",
    "vapi": "platform",
    "chat": "chat",
    "voicemailDetectionCost": "voicemail_detection",
    "knowledgeBaseCost": "knowledge_base",
}
_BREAKDOWN_DETAIL = {
    "llmPromptTokens": ("llm", "prompt_tokens"),
    "llmCompletionTokens": ("llm", "completion_tokens"),
    "llmCachedPromptTokens": ("llm", "cached_prompt_tokens"),
    "ttsCharacters": ("tts", "characters"),
}


def _cost(r: Fields, call: CallObject) -> Cost:
    c, p = call.data, call.path
    total = r.number(c, "cost", call.where("cost"))
    items: list[CostItem] = []
    costs = r.sequence(c, "costs", call.where("costs"))
    breakdown = r.mapping(c, "costBreakdown", call.where("costBreakdown"))
    if costs:
        for index, raw in enumerate(costs):
            where = f"{p('costs')}[{index}]"
            entry = r.item(raw, where)
            usd = r.number(entry, "cost", where)
            kind = r.text(entry, "type", where) or "other"
            if usd is None:
                continue
            detail = {k: v for k, v in entry.items() if k not in ("type", "cost")}
            items.append(CostItem(kind=_COST_KINDS.get(kind, _snake(kind)), usd=usd,
                                  detail=detail))
    elif breakdown:
        where = p("costBreakdown")
        details: dict[str, dict[str, Any]] = {}
        for key, (kind, name) in _BREAKDOWN_DETAIL.items():
            value = r.number(breakdown, key, where)
            if value is not None:
                details.setdefault(kind, {})[name] = value
        for key, kind in _BREAKDOWN_KINDS.items():
            usd = r.number(breakdown, key, where)
            if usd is not None:
                items.append(CostItem(kind=kind, usd=usd, detail=details.get(kind, {})))
        analysis = r.mapping(breakdown, "analysisCostBreakdown", where)
        if analysis:
            sub = join(where, "analysisCostBreakdown")
            usd = sum(
                r.number(analysis, key, sub) or 0.0
                for key in analysis
                if not key.endswith("Tokens")
            )
            items.append(CostItem(kind="analysis", usd=usd, detail=analysis))
        if total is None:
            total = r.number(breakdown, "total", where)
    if total is None and items:
        total = round(sum(item.usd for item in items), 6)
    return Cost(total_usd=total, breakdown=items)


def _analysis(r: Fields, call: CallObject, artifact: dict[str, Any]) -> Analysis:
    c, p = call.data, call.path
    analysis = r.mapping(c, "analysis", call.where("analysis")) or {}
    where = p("analysis")
    summary = r.text(analysis, "summary", where) or r.text(c, "summary", call.where("summary"))
    verdict = analysis.get("successEvaluation")
    if isinstance(verdict, bool):
        success: bool | None = verdict
    elif isinstance(verdict, str):
        success = {"true": True, "false": False}.get(verdict.strip().lower())
    elif verdict is None or isinstance(verdict, int | float):
        success = None  # a numeric score (e.g. 8 on a 1–10 rubric) is not a pass/fail
    else:
        r.fail(join(where, "successEvaluation"), "should be text such as \"true\"")
    return Analysis(
        summary=summary,
        success=success,
        structured_data=r.mapping(analysis, "structuredData", where) or {},
    )


_LATENCY_FIELDS = {
    "total": "turnLatency",
    "model": "modelLatency",
    "voice": "voiceLatency",
    "transcriber": "transcriberLatency",
    "endpointing": "endpointingLatency",
}
_AVERAGE_NAMES = {
    "turnLatencyAverage": "e2e_avg",
    "modelLatencyAverage": "llm_avg",
    "voiceLatencyAverage": "tts_avg",
    "transcriberLatencyAverage": "stt_avg",
    "endpointingLatencyAverage": "endpointing_avg",
}


def _metrics(r: Fields, artifact: dict[str, Any], where: str) -> ProviderMetrics:
    """Turn latencies and their averages from ``artifact.performanceMetrics`` (ms → seconds)."""
    perf = r.mapping(artifact, "performanceMetrics", where)
    if not perf:
        return ProviderMetrics()
    where = join(where, "performanceMetrics")
    latencies = []
    for index, raw in enumerate(r.sequence(perf, "turnLatencies", where) or []):
        item_where = f"{where}.turnLatencies[{index}]"
        item = r.item(raw, item_where)
        values = {
            ours: _seconds(r.number(item, theirs, item_where))
            for ours, theirs in _LATENCY_FIELDS.items()
        }
        latencies.append(TurnLatency(turn=index, **values))
    summary: dict[str, float] = {}
    for key in perf:
        if key.endswith("LatencyAverage"):
            value = r.number(perf, key, where)
            name = _AVERAGE_NAMES.get(key) or _snake(key[: -len("LatencyAverage")]) + "_avg"
            if value is not None:
                summary[name] = round(value / 1000, 4)
    return ProviderMetrics(turn_latencies=latencies, summary=summary)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 4)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).replace("-", "_").replace(".", "_").lower()
