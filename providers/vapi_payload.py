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
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from voicereplay import knowledge
from voicereplay.models import (
    Analysis,
    Call,
    CallType,
    Cost,
    CostItem,
    KnowledgeContext,
    ProviderMetrics,
    Recording,
    RecordingKind,
    Turn,
    TurnLatency,
)
from voicereplay.providers.fields import Obj, check_depth, to_epoch_ms
from voicereplay.providers.vapi_fields import call_object
from voicereplay.providers.vapi_messages import parse_conversation, parse_transcript
from voicereplay.providers.vapi_snapshot import (
    build_snapshot,
    embedded_assistant,
    referenced_tool_ids,
)

__all__ = [
    "build_snapshot",
    "embedded_assistant",
    "is_vapi",
    "knowledge_tools",
    "parse_call",
    "referenced_tool_ids",
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
    check_depth(payload, source=source)
    call = call_object(payload, source, "Vapi call")
    call_id = call.ident("id")
    if not call_id:
        call.fail("id", "is missing; a Vapi call must have an id")
    if _is_assistant(call.data):
        call.fail(None, "is a Vapi assistant, not a call (it has model/voice and no call "
                        "fields); pass it as the call's .assistant.json sidecar")
    call = replace(call, what=f"Vapi call {call_id}")

    artifact = call.section("artifact")
    started = call.when("startedAt")
    ended = call.when("endedAt")
    duration: float | None = None
    if started and ended:
        duration = round(max(0.0, (ended - started).total_seconds()), 3)
    else:
        ms = call.number("durationMs")
        seconds = call.number("durationSeconds")
        duration = seconds if seconds is not None else (ms / 1000 if ms is not None else None)
        duration = None if duration is None else max(0.0, duration)

    customer = call.section("customer")
    assistant = call.section("assistant")
    squad = bool(call.data.get("squadId") or call.data.get("squad"))
    call_type = call.string("type")
    turns, contexts = _turns(call, artifact, started, squad=squad)

    try:
        parsed = Call(
            provider="vapi",
            call_id=call_id,
            type=CALL_TYPES.get(call_type or "", "unknown"),
            status=call.string("status"),
            started_at=started,
            ended_at=ended,
            duration=duration,
            ended_reason=call.string("endedReason"),
            cost=_cost(call),
            analysis=_analysis(call),
            customer_number=customer.string("number"),
            agent_id=(
                call.ident("assistantId") or assistant.ident("id") or call.ident("squadId")
            ),
            agent_version=call.ident("assistantVersion"),
            turns=turns,
            provider_metrics=_metrics(artifact),
            recordings=_recordings(call, artifact),
            knowledge=contexts,
            metadata=call.mapping("metadata"),
            raw=dict(payload),
        )
    except ValidationError as exc:  # a value our checks let through but the model refused
        call.invalid(exc)
    return knowledge.from_tool_results(parsed, knowledge_tools(embedded_assistant(payload)))


def knowledge_tools(assistant: Mapping[str, Any] | None) -> set[str]:
    """The names of an assistant's knowledge-base tools (``model.tools`` of type ``query``)."""
    model = assistant.get("model") if isinstance(assistant, Mapping) else None
    tools = model.get("tools") if isinstance(model, Mapping) else None
    names: set[str] = set()
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, Mapping) or tool.get("type") != "query":
            continue
        function = tool.get("function")
        name = function.get("name") if isinstance(function, Mapping) else tool.get("name")
        if isinstance(name, str) and name:
            names.add(name)
    return names


def _is_assistant(obj: Mapping[str, Any]) -> bool:
    return not _CALL_KEYS.intersection(obj) and bool(_ASSISTANT_KEYS.intersection(obj))


def _turns(call: Obj, artifact: Obj, started: datetime | None, *,
           squad: bool) -> tuple[list[Turn], list[KnowledgeContext]]:
    holder = artifact if artifact.array("messages") else call
    messages = holder.objects("messages")
    if messages:
        start_ms = to_epoch_ms(started) if started is not None else None
        return parse_conversation(messages, call_start_ms=start_ms, squad=squad)
    transcript = artifact.string("transcript") or call.string("transcript")
    return (parse_transcript(transcript) if transcript else []), []


_RECORDING_SOURCES: tuple[tuple[RecordingKind, tuple[str, ...]], ...] = (
    ("stereo", ("recording.stereoUrl", "stereoRecordingUrl", "@stereoRecordingUrl",
                "presignedStereoUrl")),
    ("customer", ("recording.mono.customerUrl", "presignedCustomerUrl")),
    ("agent", ("recording.mono.assistantUrl", "presignedAssistantUrl")),
    ("mixed", ("recording.mono.combinedUrl", "recordingUrl", "@recordingUrl",
               "presignedMonoUrl")),
)


def _recordings(call: Obj, artifact: Obj) -> list[Recording]:
    """URLs from artifact.recording, artifact.*RecordingUrl, then the legacy top-level fields."""
    out: list[Recording] = []
    for kind, paths in _RECORDING_SOURCES:
        for dotted in paths:
            if dotted.startswith("@"):
                url = call.string(dotted[1:])
            else:
                url = _dig_text(artifact, dotted)
            if url:
                out.append(Recording(kind=kind, url=url))
                break
    return out


def _dig_text(obj: Obj, dotted: str) -> str | None:
    *parents, last = dotted.split(".")
    node: Obj | None = obj
    for key in parents:
        node = node.obj(key) if node is not None else None
    return node.string(last) if node is not None else None


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


def _cost(call: Obj) -> Cost:
    total = call.number("cost")
    items: list[CostItem] = []
    costs = call.objects("costs")
    breakdown = call.section("costBreakdown")
    if costs:
        for entry in costs:
            usd = entry.number("cost")
            kind = entry.string("type") or "other"
            if usd is None:
                continue
            detail = {k: v for k, v in entry.data.items() if k not in ("type", "cost")}
            items.append(CostItem(kind=_COST_KINDS.get(kind, _snake(kind)), usd=usd,
                                  detail=detail))
    elif breakdown.data:
        details: dict[str, dict[str, Any]] = {}
        for key, (kind, name) in _BREAKDOWN_DETAIL.items():
            value = breakdown.number(key)
            if value is not None:
                details.setdefault(kind, {})[name] = value
        for key, kind in _BREAKDOWN_KINDS.items():
            usd = breakdown.number(key)
            if usd is not None:
                items.append(CostItem(kind=kind, usd=usd, detail=details.get(kind, {})))
        analysis = breakdown.section("analysisCostBreakdown")
        if analysis.data:
            usd = sum(
                analysis.number(key) or 0.0
                for key in analysis.data
                if not key.endswith("Tokens")
            )
            items.append(CostItem(kind="analysis", usd=usd, detail=dict(analysis.data)))
        if total is None:
            total = breakdown.number("total")
    if total is None and items:
        total = round(sum(item.usd for item in items), 6)
    return Cost(total_usd=total, breakdown=items)


def _analysis(call: Obj) -> Analysis:
    analysis = call.section("analysis")
    summary = analysis.string("summary") or call.string("summary")
    verdict = analysis.data.get("successEvaluation")
    if isinstance(verdict, bool):
        success: bool | None = verdict
    elif isinstance(verdict, str):
        success = {"true": True, "false": False}.get(verdict.strip().lower())
    elif verdict is None or isinstance(verdict, int | float):
        success = None  # a numeric score (e.g. 8 on a 1–10 rubric) is not a pass/fail
    else:
        analysis.fail("successEvaluation", "should be text such as \"true\"")
    return Analysis(
        summary=summary,
        success=success,
        structured_data=analysis.mapping("structuredData"),
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


def _metrics(artifact: Obj) -> ProviderMetrics:
    """Turn latencies and their averages from ``artifact.performanceMetrics`` (ms → seconds)."""
    perf = artifact.section("performanceMetrics")
    if not perf.data:
        return ProviderMetrics()
    latencies = []
    for index, item in enumerate(perf.objects("turnLatencies")):
        values = {
            ours: _seconds(item.number(theirs)) for ours, theirs in _LATENCY_FIELDS.items()
        }
        latencies.append(TurnLatency(turn=index, **values))
    summary: dict[str, float] = {}
    for key in perf.data:
        if key.endswith("LatencyAverage"):
            value = perf.number(key)
            name = _AVERAGE_NAMES.get(key) or _snake(key[: -len("LatencyAverage")]) + "_avg"
            if value is not None:
                summary[name] = round(value / 1000, 4)
    return ProviderMetrics(turn_latencies=latencies, summary=summary)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 4)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).replace("-", "_").replace(".", "_").lower()
