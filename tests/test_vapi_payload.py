"""Vapi payload parsing and snapshot extraction: every drift case from provider-apis.md §1."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import vapi_samples as samples
from voicereplay.errors import PayloadError
from voicereplay.models import Call
from voicereplay.providers import vapi_payload
from voicereplay.providers.fields import parse_timestamp
from voicereplay.providers.vapi_payload import (
    build_snapshot,
    embedded_assistant,
    is_vapi,
    parse_call,
)

T0 = samples.T0
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _msgs(call: Call) -> list[tuple[str, str]]:
    return [(t.role, t.text) for t in call.turns]


# -- the whole call -------------------------------------------------------------------------
def test_get_call_body_is_normalized() -> None:
    payload = samples.call()
    call = parse_call(payload, source="inline")
    assert call.provider == "vapi"
    assert call.call_id == payload["id"]
    assert call.type == "inbound"
    assert call.status == "ended"
    assert call.ended_reason == "customer-ended-call"
    assert call.started_at == datetime(2025, 6, 10, 9, 7, tzinfo=UTC)
    assert call.duration == pytest.approx(10.5)
    assert call.customer_number == "+14155550142"
    assert call.agent_id == "a-sam"
    assert call.metadata == {"ticket": "T-1"}
    assert call.raw == payload
    assert [t.role for t in call.turns] == [
        "system", "agent", "user", "tool_call", "tool_result", "agent"
    ]
    agent = call.turns[1]
    assert (agent.start, agent.end) == (1.0, 3.5)
    tool_call = call.turns[3].tool_calls[0]
    assert (tool_call.id, tool_call.name, tool_call.arguments) == (
        "call_1", "check_status", {"order_id": "4417"}
    )
    result = call.turns[4].tool_result
    assert result is not None
    assert (result.id, result.name, result.result) == (
        "call_1", "check_status", '{"status": "shipped"}'
    )


def test_raw_is_the_payload_verbatim() -> None:
    payload = samples.call()
    before = copy.deepcopy(payload)
    call = parse_call(payload)
    assert payload == before
    assert call.raw == before


@pytest.mark.parametrize(
    ("vapi_type", "ours"),
    [("inboundPhoneCall", "inbound"), ("outboundPhoneCall", "outbound"), ("webCall", "web"),
     ("vapi.websocketCall", "web"), ("somethingNew", "unknown")],
)
def test_call_type_map(vapi_type: str, ours: str) -> None:
    assert parse_call(samples.call(type=vapi_type)).type == ours


# -- timing drift ---------------------------------------------------------------------------
def test_2025_duration_in_ms_is_ignored_spans_come_from_end_time() -> None:
    payload = samples.call()
    payload["artifact"]["messages"][1].update(
        time=1749546422419, endTime=1749546429009, duration=6280
    )
    payload["startedAt"] = samples.iso(1749546422419 - 1000)
    payload["artifact"]["messages"] = payload["artifact"]["messages"][:2]
    agent = parse_call(payload).turns[1]
    assert agent.start == pytest.approx(1.0)
    assert agent.end == pytest.approx(1.0 + 6.59)


def test_2024_duration_in_seconds_gives_the_same_spans() -> None:
    payload = samples.call()
    payload["artifact"]["messages"][1].update(duration=2.5)  # seconds, as mid-2024 sent it
    payload_ms = samples.call()  # 2500 ms
    assert parse_call(payload).turns[1].end == parse_call(payload_ms).turns[1].end == 3.5


def test_no_end_time_means_no_end_even_with_duration() -> None:
    payload = samples.call()
    del payload["artifact"]["messages"][1]["endTime"]
    agent = parse_call(payload).turns[1]
    assert agent.start == 1.0
    assert agent.end is None


@pytest.mark.parametrize(
    "started",
    ["2025-06-10T09:07:00.000Z", "2025-06-10T09:07:00+00:00", "2025-06-10T11:07:00+02:00",
     T0, float(T0), str(T0), f"{T0}.0", "2025-06-10T09:07:00"],
)
def test_timestamps_iso_epoch_ms_or_numeric_string(started: Any) -> None:
    call = parse_call(samples.call(startedAt=started))
    assert call.started_at == datetime(2025, 6, 10, 9, 7, tzinfo=UTC)
    assert call.turns[1].start == 1.0


def test_message_times_as_strings() -> None:
    payload = samples.call()
    for message in payload["artifact"]["messages"]:
        message["time"] = samples.iso(message["time"])
        if "endTime" in message:
            message["endTime"] = str(message["endTime"])
    assert [(t.start, t.end) for t in parse_call(payload).turns] == [
        (t.start, t.end) for t in parse_call(samples.call()).turns
    ]


def test_parse_timestamp_rejects_garbage() -> None:
    for garbage in ("yesterday", "", "2025-13-45T00:00:00Z", float("nan"), -5, True, [1], 1e30):
        with pytest.raises(ValueError):
            parse_timestamp(garbage)
    assert parse_timestamp(1_749_546_420) == parse_timestamp(T0)  # epoch seconds too


def test_call_start_falls_back_to_the_earliest_message() -> None:
    payload = samples.call()
    del payload["startedAt"]
    call = parse_call(payload)
    assert call.started_at is None
    assert call.duration is None
    assert call.turns[1].start == 1.0  # the system message at T0 is the earliest


def test_duration_from_the_report_when_timestamps_are_missing() -> None:
    body = samples.report()
    del body["message"]["startedAt"], body["message"]["endedAt"]
    assert parse_call(body).duration == pytest.approx(10.5)


# -- roles, tools ---------------------------------------------------------------------------
def test_bot_and_assistant_roles_are_both_agent_turns() -> None:
    payload = samples.call()
    payload["artifact"]["messages"][1]["role"] = "assistant"
    call = parse_call(payload)
    assert [t.role for t in call.turns if t.role == "agent"] == ["agent", "agent"]
    assert call.turns[1].text == "Thanks for calling Acme. How can I help?"


def _tool_call_with(arguments: Any) -> Any:
    payload = samples.call()
    payload["artifact"]["messages"][3]["toolCalls"][0]["function"]["arguments"] = arguments
    return parse_call(payload).turns[3].tool_calls[0]


def test_tool_arguments_as_json_string_or_object() -> None:
    assert _tool_call_with('{"order_id": "4417"}').arguments == {"order_id": "4417"}
    assert _tool_call_with({"order_id": "4417"}).arguments == {"order_id": "4417"}
    assert _tool_call_with("").arguments == {}


@pytest.mark.parametrize("text", ['{"order_id": ', "not json", "[1, 2]", '"4417"'])
def test_unparseable_tool_arguments_are_kept_raw(text: str) -> None:
    tool_call = _tool_call_with(text)
    assert tool_call.arguments == {}
    assert tool_call.raw_arguments == text


def test_flattened_tool_call_list_of_the_docs() -> None:
    payload = samples.call()
    payload["artifact"]["messages"][3] = {
        "role": "tool_calls", "time": T0 + 6800,
        "toolCallList": [{"id": "t9", "name": "lookup", "parameters": {"q": "x"}}],
    }
    tool_call = parse_call(payload).turns[3].tool_calls[0]
    assert (tool_call.id, tool_call.name, tool_call.arguments) == ("t9", "lookup", {"q": "x"})


def test_legacy_function_call_messages() -> None:
    payload = samples.call()
    payload["artifact"]["messages"][3] = {
        "role": "function_call", "time": T0 + 6800, "message": "", "name": "check_status",
        "args": '{"order_id":"4417"}', "secondsFromStart": 6.8,
    }
    turn = parse_call(payload).turns[3]
    assert turn.role == "tool_call"
    assert turn.start == 6.8
    assert turn.tool_calls[0].name == "check_status"
    assert turn.tool_calls[0].arguments == {"order_id": "4417"}


def test_tool_result_that_is_an_object_becomes_json_text() -> None:
    payload = samples.call()
    payload["artifact"]["messages"][4]["result"] = {"status": "shipped"}
    result = parse_call(payload).turns[4].tool_result
    assert result is not None and json.loads(result.result) == {"status": "shipped"}


def test_unknown_roles_are_skipped() -> None:
    payload = samples.call()
    payload["artifact"]["messages"].append({"role": "transfer_note", "time": T0 + 9500})
    assert len(parse_call(payload).turns) == 6


# -- legacy fields ---------------------------------------------------------------------------
def test_legacy_top_level_fields_when_the_artifact_lacks_them() -> None:
    payload = samples.call()
    artifact = payload.pop("artifact")
    payload.update(
        messages=artifact["messages"], recordingUrl="https://legacy/mono.wav",
        stereoRecordingUrl="https://legacy/stereo.wav", summary="Legacy summary.",
    )
    payload["analysis"] = {"successEvaluation": "false"}
    call = parse_call(payload)
    assert len(call.turns) == 6
    assert {r.kind: r.url for r in call.recordings} == {
        "stereo": "https://legacy/stereo.wav", "mixed": "https://legacy/mono.wav"
    }
    assert call.analysis.summary == "Legacy summary."
    assert call.analysis.success is False


def test_transcript_text_when_there_are_no_messages() -> None:
    payload = samples.call()
    del payload["artifact"]["messages"]
    payload["artifact"]["transcript"] = "AI: Hello there.\nUser: Hi.\nwrapped line\nAI: Bye."
    call = parse_call(payload)
    assert _msgs(call) == [("agent", "Hello there."), ("user", "Hi. wrapped line"),
                           ("agent", "Bye.")]
    assert all(t.start is None for t in call.turns)


def test_recordings_from_artifact_recording_then_artifact_urls() -> None:
    call = parse_call(samples.call())
    assert {r.kind: r.url for r in call.recordings} == {
        "stereo": "https://storage.vapi.ai/rec-stereo.wav",
        "customer": "https://storage.vapi.ai/rec-customer.wav",
        "agent": "https://storage.vapi.ai/rec-assistant.wav",
        "mixed": "https://storage.vapi.ai/rec-mono.wav",
    }
    assert all(r.path is None for r in call.recordings)
    payload = samples.call()
    del payload["artifact"]["recording"]
    assert [r.kind for r in parse_call(payload).recordings] == ["stereo", "mixed"]


# -- squads ----------------------------------------------------------------------------------
def _squad() -> dict[str, Any]:
    """Two assistants; secondsFromStart resets at the handoff and one entry is out of order."""
    payload = samples.call(squadId="sq-1", assistantId=None)
    payload["squad"] = {"members": [
        {"assistant": samples.assistant("a-front")}, {"assistantId": "a-billing"}
    ]}
    payload["artifact"]["messages"] = [
        {"role": "system", "message": "Front desk.", "time": T0, "secondsFromStart": 0},
        {"role": "bot", "message": "Front desk here.", "time": T0 + 1000, "endTime": T0 + 2000,
         "secondsFromStart": 1, "assistantName": "Receptionist"},
        {"role": "tool_calls", "time": T0 + 21925, "secondsFromStart": 21.925,
         "toolCalls": [{"id": "x1", "function": {"name": "transferCall",
                                                 "arguments": {"destination": "Billing"}}}]},
        {"role": "user", "message": "Billing please.", "time": T0 + 21770,
         "endTime": T0 + 21900, "secondsFromStart": 21.77},
        {"role": "system", "message": "Billing.", "time": T0 + 23000, "secondsFromStart": 0},
        {"role": "bot", "message": "Billing here.", "time": T0 + 24000, "endTime": T0 + 25000,
         "secondsFromStart": 1, "assistantId": "a-billing"},
    ]
    return payload


def test_squad_turns_are_ordered_by_absolute_time() -> None:
    call = parse_call(_squad())
    assert [t.role for t in call.turns] == [
        "system", "agent", "user", "tool_call", "system", "agent"
    ]
    starts = [t.start for t in call.turns]
    assert starts == [0.0, 1.0, 21.77, 21.925, 23.0, 24.0]  # not the reset secondsFromStart
    assert [t.speaker for t in call.turns if t.role == "agent"] == ["Receptionist", "a-billing"]
    assert call.agent_id == "sq-1"


def test_speaker_is_only_set_for_squads() -> None:
    payload = samples.call()
    payload["artifact"]["messages"][1]["assistantName"] = "Sam"
    assert parse_call(payload).turns[1].speaker is None


# -- analysis, cost, metrics ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("verdict", "success"),
    [("true", True), ("false", False), ("TRUE ", True), (True, True), (False, False),
     ("8", None), ("Pass", None), (None, None), (7, None)],
)
def test_success_evaluation_is_a_real_bool(verdict: Any, success: bool | None) -> None:
    payload = samples.call()
    payload["analysis"]["successEvaluation"] = verdict
    analysis = parse_call(payload).analysis
    assert analysis.success is success
    assert analysis.summary == "Order status question."
    assert analysis.structured_data == {"order_id": "4417"}


def test_cost_breakdown_from_costs_list() -> None:
    cost = parse_call(samples.call()).cost
    assert cost.total_usd == pytest.approx(0.0421)
    assert [(i.kind, i.usd) for i in cost.breakdown] == [
        ("stt", 0.0018), ("llm", 0.0026), ("tts", 0.0032), ("platform", 0.009),
        ("analysis", 0.0015),
    ]
    assert cost.breakdown[1].detail["promptTokens"] == 900


def test_cost_breakdown_object_when_there_is_no_costs_list() -> None:
    payload = samples.call(cost=None, costs=None, costBreakdown={
        "transport": 0.01, "stt": 0.02, "llm": 0.03, "tts": 0.04, "vapi": 0.05, "total": 0.16,
        "llmPromptTokens": 900, "llmCompletionTokens": 40, "ttsCharacters": 120,
        "analysisCostBreakdown": {"summary": 0.004, "summaryPromptTokens": 600,
                                  "successEvaluation": 0.002},
    })
    cost = parse_call(payload).cost
    assert cost.total_usd == pytest.approx(0.16)
    kinds = {i.kind: i for i in cost.breakdown}
    assert set(kinds) == {"transport", "stt", "llm", "tts", "platform", "analysis"}
    assert kinds["llm"].detail == {"prompt_tokens": 900, "completion_tokens": 40}
    assert kinds["tts"].detail == {"characters": 120}
    assert kinds["analysis"].usd == pytest.approx(0.006)


def test_turn_latencies_in_seconds() -> None:
    metrics = parse_call(samples.call()).provider_metrics
    first = metrics.turn_latencies[0]
    assert (first.turn, first.total, first.model, first.voice, first.transcriber,
            first.endpointing) == (0, 1.08, 0.42, 0.31, 0.15, 0.2)
    assert metrics.summary == {"llm_avg": 0.4, "tts_avg": 0.3, "e2e_avg": 1.05}


# -- webhook reports ------------------------------------------------------------------------
def test_end_of_call_report_uses_the_report_over_the_stale_call() -> None:
    body = samples.report()
    call = parse_call(body, source="hook")
    assert call.call_id == body["message"]["call"]["id"]
    assert call.status == "ended"  # message.call says "queued"
    assert call.type == "web"
    assert call.started_at == datetime(2025, 6, 10, 9, 7, tzinfo=UTC)
    assert call.analysis.success is False
    assert call.analysis.summary == "From the report."
    assert call.agent_id == "a-sam"
    assert len(call.turns) == 6
    assert call.raw == body


def test_other_webhook_types_are_not_calls() -> None:
    with pytest.raises(PayloadError, match=r"message.type is 'status-update'.*end-of-call"):
        parse_call({"message": {"type": "status-update", "status": "ended"}})


def test_report_without_call_id_names_the_field() -> None:
    body = samples.report()
    del body["message"]["call"]["id"]
    with pytest.raises(PayloadError, match=r"^hook\.json: .*message\.call\.id is missing"):
        parse_call(body, source="hook.json")


# -- detection, embedded assistant ------------------------------------------------------------
def test_is_vapi() -> None:
    assert is_vapi(samples.call())
    assert is_vapi(samples.report())
    assert is_vapi({"message": {"type": "status-update"}})
    assert not is_vapi({"call_id": "c", "transcript_object": []})
    assert not is_vapi({"event": "call_ended", "call": {"call_id": "c"}})
    assert not is_vapi(samples.assistant())
    assert not is_vapi([samples.call()])
    assert not is_vapi({"type": ["not", "hashable"]})


def test_an_assistant_is_not_parsed_as_a_call() -> None:
    with pytest.raises(PayloadError, match="is a Vapi assistant, not a call"):
        parse_call(samples.assistant())


def test_embedded_assistant() -> None:
    assert embedded_assistant(samples.call()) is None  # started with assistantId
    inline = samples.call(assistant=samples.assistant("inline"))
    assert (embedded_assistant(inline) or {})["id"] == "inline"
    assert (embedded_assistant(samples.report()) or {})["id"] == "a-sam"
    assert (embedded_assistant(_squad()) or {})["id"] == "a-front"
    assert embedded_assistant("nope") is None


# -- malformed input -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.pop("id"), r"\bid is missing"),
        (lambda p: p.update(id=""), r"\bid is missing"),
        (lambda p: p.update(id=["x"]), r"\bid should be an id"),
        (lambda p: p.update(startedAt="yesterday"), r"startedAt is not a timestamp"),
        (lambda p: p.update(endedAt=True), r"endedAt is not a timestamp"),
        (lambda p: p["artifact"].update(messages="oops"), r"artifact\.messages should be a list"),
        (lambda p: p["artifact"]["messages"].append(7), r"artifact\.messages\[6\] should be an"),
        (lambda p: p["artifact"]["messages"][2].update(time="soon"),
         r"artifact\.messages\[2\]\.time is not a timestamp"),
        (lambda p: p["artifact"]["messages"][2].pop("role"),
         r"artifact\.messages\[2\]\.role is missing"),
        (lambda p: p["artifact"]["messages"][2].update(message=42),
         r"artifact\.messages\[2\]\.message should be text"),
        (lambda p: p["artifact"]["messages"][3]["toolCalls"][0]["function"].update(arguments=3),
         r"toolCalls\[0\]\.function\.arguments should be a JSON string"),
        (lambda p: p["artifact"]["messages"][3]["toolCalls"][0]["function"].pop("name"),
         r"function\.name is missing"),
        (lambda p: p.update(cost="0.12"), r"\bcost should be a finite number"),
        (lambda p: p["costs"].append({"type": "x", "cost": float("inf")}),
         r"costs\[5\]\.cost should be a finite number"),
        (lambda p: p.update(analysis=[]), r"analysis should be an object"),
        (lambda p: p["analysis"].update(successEvaluation={"a": 1}),
         r"analysis\.successEvaluation should be text"),
        (lambda p: p["artifact"]["recording"].update(mono="x"),
         r"artifact\.recording\.mono should be an object"),
        (lambda p: p["artifact"]["performanceMetrics"]["turnLatencies"][0].update(
            modelLatency="fast"), r"turnLatencies\[0\]\.modelLatency should be a finite"),
        (lambda p: p.update(customer="+1555"), r"customer should be an object"),
    ],
)
def test_malformed_payloads_name_the_field_and_source(mutate: Any, field: str) -> None:
    payload = samples.call()
    mutate(payload)
    with pytest.raises(PayloadError, match=r"^calls/x\.json: Vapi call") as caught:
        parse_call(payload, source="calls/x.json")
    assert caught.match(field)
    assert caught.value.source == "calls/x.json"


@pytest.mark.parametrize("payload", [None, [], "text", 3, {"message": "x"}, {"message": {}}])
def test_not_a_call_at_all(payload: Any) -> None:
    with pytest.raises(PayloadError):
        parse_call(payload, source="s")


# -- snapshots -------------------------------------------------------------------------------
def test_snapshot_from_an_assistant() -> None:
    call = parse_call(samples.call())
    snap = build_snapshot(call, samples.assistant())
    assert snap.system_prompt == "You are Sam from Acme Audio."
    assert snap.first_message == "Thanks for calling Acme Audio. How can I help?"
    assert snap.first_message_mode == "agent-speaks-first"
    assert snap.variables == {"company": "Acme Audio"}
    assert (snap.model.provider, snap.model.name, snap.model.temperature,
            snap.model.max_tokens) == ("openai", "gpt-4o", 0.3, 250)
    assert (snap.voice.provider, snap.voice.voice_id, snap.voice.model, snap.voice.speed) == (
        "11labs", "sarah", "eleven_turbo_v2_5", 1.1)
    assert (snap.transcriber.provider, snap.transcriber.model, snap.transcriber.language) == (
        "deepgram", "nova-2-phonecall", "en")
    tt = snap.turn_taking
    assert (tt.endpointing, tt.silence_timeout, tt.max_duration, tt.end_call_phrases) == (
        0.3, 30.0, 600.0, ("goodbye", "bye now"))
    assert snap.source.model_dump(exclude_none=True) == {
        "provider": "vapi", "agent_id": "a-sam", "call_id": call.call_id}


def test_snapshot_tools() -> None:
    snap = build_snapshot(parse_call(samples.call()), samples.assistant())
    assert [(t.name, t.kind) for t in snap.tools] == [
        ("check_status", "function"), ("ping", "function"), ("endCall", "end_call"),
        ("transferCall", "transfer_call"), ("dtmf", "dtmf"),
    ]
    check = snap.tool("check_status")
    assert check is not None
    assert check.server_url == "https://tools.example.com/vapi"
    assert check.parameters["required"] == ["order_id"]
    ping = snap.tool("ping")
    assert ping is not None
    assert ping.parameters == {"type": "object", "properties": {}}
    assert ping.server_url == "https://hooks.example.com/vapi"  # the assistant's server
    end = snap.tool("endCall")
    assert end is not None and end.description and end.server_url is None
    transfer = snap.tool("transferCall")
    assert transfer is not None
    assert transfer.parameters["properties"]["destination"]["enum"] == ["+14155550100"]


def _legacy_assistant() -> dict[str, Any]:
    """The 2024 shape: systemPrompt, functions, serverUrl, responseDelaySeconds, …"""
    return {
        "id": "a-old", "orgId": "o", "name": "Old Sam",
        "model": {"provider": "openai", "model": "gpt-3.5-turbo",
                  "systemPrompt": "You are old Sam from {{company}}.",
                  "functions": [{"name": "lookup", "description": "Find.", "parameters": {
                      "type": "object", "properties": {"q": {"type": "string"}}}}]},
        "serverUrl": "https://legacy.example.com/hook",
        "responseDelaySeconds": 0.7,
        "silenceTimeoutSeconds": 25,
        "endCallFunctionEnabled": True,
        "endCallPhrases": ["bye"],
        "firstMessage": "Hello from {{company}}.",
    }


def test_legacy_2024_assistant_fields_are_read() -> None:
    snap = build_snapshot(parse_call(samples.call()), _legacy_assistant())
    assert snap.system_prompt == "You are old Sam from Acme Audio."
    assert [(t.name, t.kind, t.server_url) for t in snap.tools] == [
        ("lookup", "function", "https://legacy.example.com/hook"), ("endCall", "end_call", None)]
    tt = snap.turn_taking
    assert (tt.response_delay, tt.silence_timeout, tt.end_call_phrases) == (0.7, 25.0, ("bye",))


def test_current_assistant_fields_win_over_the_legacy_ones() -> None:
    assistant = _legacy_assistant()
    assistant["model"]["messages"] = [{"role": "system", "content": "You are new Sam."}]
    assistant["model"]["tools"] = [
        {"type": "function", "function": {"name": "check_status"}},
        {"type": "endCall", "function": {"name": "hang_up"}}]
    assistant["model"]["toolIds"] = ["tool-refund", "tool-gone"]
    assistant["server"] = {"url": "https://new.example.com/hook"}
    assistant["startSpeakingPlan"] = {"waitSeconds": 0.4}
    assistant["stopSpeakingPlan"] = {"numWords": 2}
    stored = {"tool-refund": {"id": "tool-refund", "type": "function", "function": {
        "name": "issue_refund", "parameters": {"type": "object", "properties": {}}},
        "server": {"url": "https://tools.example.com/refund"}}}
    snap = build_snapshot(parse_call(samples.call()), assistant, stored)
    assert snap.system_prompt == "You are new Sam."
    assert [(t.name, t.kind, t.server_url) for t in snap.tools] == [
        ("check_status", "function", "https://new.example.com/hook"),
        ("hang_up", "end_call", None),
        ("issue_refund", "function", "https://tools.example.com/refund"),
        ("lookup", "function", "https://new.example.com/hook"),  # legacy functions still count
    ]  # no second endCall for endCallFunctionEnabled; "tool-gone" was not available
    assert snap.turn_taking.response_delay == 0.4


def test_referenced_tool_ids_come_from_the_assistant_and_the_overrides() -> None:
    from voicereplay.providers.vapi_payload import referenced_tool_ids

    assistant = samples.assistant()
    assistant["model"]["toolIds"] = ["t1", "t2"]
    payload = samples.call(assistantOverrides={"model": {"toolIds": ["t2", "t3"]}})
    assert referenced_tool_ids(parse_call(payload), assistant) == ["t1", "t2", "t3"]
    assert referenced_tool_ids(parse_call(samples.call()), None) == []


def test_legacy_functions_and_end_call_flag() -> None:
    assistant = samples.assistant()
    del assistant["model"]["tools"]
    assistant["model"]["functions"] = [{"name": "lookup", "description": "Find.",
                                        "parameters": {"type": "object", "properties": {}}}]
    assistant["serverUrl"] = "https://legacy.example.com"
    del assistant["server"]
    assistant["endCallFunctionEnabled"] = True
    snap = build_snapshot(parse_call(samples.call()), assistant)
    assert [(t.name, t.kind, t.server_url) for t in snap.tools] == [
        ("lookup", "function", "https://legacy.example.com"), ("endCall", "end_call", None)]


def test_overrides_are_deep_merged_and_variables_substituted() -> None:
    payload = samples.call(assistantOverrides={
        "variableValues": {"company": "Globex", "agent": {"name": "Kim"}},
        "model": {"temperature": 0.9, "messages": [
            {"role": "system", "content": "You are {{agent.name}} at {{company}}. {{unknown}}"}]},
        "voice": {"speed": 0.8},
        "firstMessageMode": "assistant-waits-for-user",
    })
    snap = build_snapshot(parse_call(payload), samples.assistant())
    assert snap.model.temperature == 0.9
    assert snap.model.name == "gpt-4o"  # kept from the assistant
    assert snap.voice.speed == 0.8 and snap.voice.voice_id == "sarah"
    assert snap.system_prompt == "You are Kim at Globex. {{unknown}}"
    assert snap.first_message == "Thanks for calling Globex. How can I help?"
    assert snap.first_message_mode == "user-speaks-first"
    assert snap.variables == {"company": "Globex", "agent.name": "Kim"}


def test_artifact_variable_values_are_used() -> None:
    payload = samples.call(assistantOverrides=None)
    payload["artifact"]["variableValues"] = {"company": "Initech", "n": 3}
    snap = build_snapshot(parse_call(payload), samples.assistant())
    assert snap.system_prompt == "You are Sam from Initech."
    assert snap.variables == {"company": "Initech", "n": "3"}


def test_unresolved_template_tags_take_the_prompt_the_call_used() -> None:
    assistant = samples.assistant()
    assistant["model"]["messages"][0]["content"] = 'Today is {{"now" | date: "%A"}}. Be kind.'
    payload = samples.call()
    payload["artifact"]["messages"][0]["message"] = "Today is Tuesday. Be kind."
    assert build_snapshot(parse_call(payload), assistant).system_prompt == (
        "Today is Tuesday. Be kind.")
    payload["artifact"]["messages"][0]["message"] = "Something else entirely."
    assert build_snapshot(parse_call(payload), assistant).system_prompt == (
        'Today is {{"now" | date: "%A"}}. Be kind.')


def test_a_prompt_with_many_tags_that_the_call_does_not_match_is_kept_at_once() -> None:
    # 12 unset tags between short words, against a 2,000-word system message that has every
    # word but not the ending: a backtracking regex (".*?" between the pieces) takes about
    # n**12 steps here and never finishes; the linear match answers at once.
    tags = " ".join(f"and {{{{v{i}}}}}" for i in range(12))
    template = f"You help {tags} and then stop."
    assistant = samples.assistant()
    assistant["model"]["messages"][0]["content"] = template
    payload = samples.call()
    said = "You help " + " ".join(["and so"] * 1000) + " and then go on."
    payload["artifact"]["messages"][0]["message"] = said
    assert build_snapshot(parse_call(payload), assistant).system_prompt == template
    payload["artifact"]["messages"][0]["message"] = said.replace("go on.", "stop.")
    assert build_snapshot(parse_call(payload), assistant).system_prompt == (
        said.replace("go on.", "stop."))


def test_template_match_agrees_with_a_full_regex_match() -> None:
    import random
    import re

    from voicereplay.providers.vapi_snapshot import _fits

    rng = random.Random(7)
    for _ in range(3000):
        pieces = ["".join(rng.choice("ab") for _ in range(rng.randint(0, 2)))
                  for _ in range(rng.randint(2, 4))]
        said = "".join(rng.choice("ab") for _ in range(rng.randint(0, 7)))
        expected = re.fullmatch(".*?".join(map(re.escape, pieces)), said, re.DOTALL) is not None
        assert _fits(pieces, said) is expected, (pieces, said)


def test_template_tags_are_found_in_one_pass() -> None:
    import random
    import re

    from voicereplay.providers.vapi_snapshot import _untagged

    tag = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)  # what the pieces must equal
    rng = random.Random(11)
    for _ in range(5000):
        text = "".join(rng.choice("{}% a") for _ in range(rng.randint(0, 14)))
        assert _untagged(text) == tag.split(text), text
    # 200,000 unclosed "{{": the lazy regex rescans the rest of the text from each one (hours);
    # the scan reads the text once
    assert _untagged("{{ " * 200_000) == ["{{ " * 200_000]
    assert _untagged("{% " * 200_000 + "%}") == ["", ""]


def test_a_huge_prompt_with_unclosed_tags_is_kept() -> None:
    assistant = samples.assistant()
    assistant["model"]["messages"][0]["content"] = "{{ " * 100_000
    snap = build_snapshot(parse_call(samples.call()), assistant)
    assert snap.system_prompt == "{{ " * 100_000


@pytest.mark.parametrize(
    ("mode", "ours"),
    [("assistant-speaks-first", "agent-speaks-first"),
     ("assistant-speaks-first-with-model-generated-message", "agent-generates-first"),
     ("assistant-waits-for-user", "user-speaks-first"), (None, "agent-speaks-first")],
)
def test_first_message_modes(mode: str | None, ours: str) -> None:
    assistant = samples.assistant()
    assistant["firstMessageMode"] = mode
    assert build_snapshot(parse_call(samples.call()), assistant).first_message_mode == ours


def test_endpointing_falls_back_to_start_speaking_plan() -> None:
    assistant = samples.assistant()
    del assistant["transcriber"]["endpointing"]
    assistant["startSpeakingPlan"] = {"waitSeconds": 0.6}
    assistant["responseDelaySeconds"] = 0.2
    tt = build_snapshot(parse_call(samples.call()), assistant).turn_taking
    assert (tt.endpointing, tt.response_delay) == (0.6, 0.6)  # waitSeconds replaced the delay
    del assistant["startSpeakingPlan"]
    tt = build_snapshot(parse_call(samples.call()), assistant).turn_taking
    assert (tt.endpointing, tt.response_delay) == (None, 0.2)


def test_snapshot_uses_the_inline_assistant_of_a_report_or_squad() -> None:
    report = parse_call(samples.report())
    assert build_snapshot(report, None).system_prompt == "You are Sam from Acme Audio."
    squad = parse_call(_squad())
    snap = build_snapshot(squad, None)
    assert snap.source.agent_id == "sq-1"
    assert snap.model.name == "gpt-4o"


def test_missing_assistant_says_what_to_do() -> None:
    with pytest.raises(PayloadError, match=r"assistant config is missing.*API key.*assistant"):
        build_snapshot(parse_call(samples.call()), None)


def test_same_config_gives_the_same_snapshot_id() -> None:
    a = build_snapshot(parse_call(samples.call("c-1")), samples.assistant())
    b = build_snapshot(parse_call(samples.call("c-2")), samples.assistant())
    assert a.id == b.id
    assert a.source.call_id != b.source.call_id


def test_malformed_assistant_names_the_field() -> None:
    assistant = samples.assistant()
    assistant["model"]["temperature"] = "warm"
    with pytest.raises(PayloadError, match=r"Vapi assistant for call .*model\.temperature"):
        build_snapshot(parse_call(samples.call()), assistant)
    with pytest.raises(PayloadError, match=r"model\.tools\[0\] should be an object"):
        build_snapshot(parse_call(samples.call()),
                       {**samples.assistant(), "model": {"tools": ["x"]}})


# -- fixture files --------------------------------------------------------------------------
def _fixture_calls() -> list[Path]:
    paths = sorted((FIXTURES / "vapi").glob("*.json")) + sorted((FIXTURES / "demo").glob("*.json"))
    return [
        p for p in paths
        if not p.name.endswith((".assistant.json", ".agent.json", ".llm.json"))
        and is_vapi(json.loads(p.read_text()))
    ]


FIXTURE_CALLS = _fixture_calls()


@pytest.mark.parametrize("path", FIXTURE_CALLS, ids=lambda p: p.name)
def test_fixture_files_parse_and_snapshot(path: Path) -> None:
    payload = json.loads(path.read_text())
    call = parse_call(payload, source=str(path))
    assert call.call_id and call.started_at and call.duration and call.duration > 0
    assert call.recordings
    assert any(t.role == "agent" for t in call.turns) and any(t.role == "user" for t in call.turns)
    starts = [t.start for t in call.turns]
    assert all(s is not None and s >= 0 for s in starts)
    assert starts == sorted(starts)  # type: ignore[type-var]
    for turn in call.turns:
        if turn.end is not None:
            assert turn.start is not None and turn.start <= turn.end <= call.duration + 1
    sidecar = path.with_name(path.stem + ".assistant.json")
    assistant = embedded_assistant(payload) or (
        json.loads(sidecar.read_text()) if sidecar.exists() else None)
    snap = build_snapshot(call, assistant)
    assert snap.system_prompt and snap.model.name
    assert "{{" not in snap.system_prompt
    assert snap.source.call_id == call.call_id


def test_squad_fixture_keeps_absolute_order_and_speakers() -> None:
    call = parse_call(json.loads((FIXTURES / "vapi" / "vapi-squad.json").read_text()))
    assert len(call.turns_by("system")) >= 2
    assert len({t.speaker for t in call.turns_by("agent")}) >= 2
    secs = [m.get("secondsFromStart") for m in call.raw["artifact"]["messages"]]
    assert secs != sorted(secs)  # the raw entries reset / are unsorted; our turns are not


def test_2024_report_fixture() -> None:
    body = json.loads((FIXTURES / "vapi" / "vapi-2024-report.json").read_text())
    call = parse_call(body)
    assert call.call_id == body["message"]["call"]["id"]
    assert call.status == "ended"
    assert call.tool_calls and call.tool_calls[0].arguments
    assert vapi_payload.embedded_assistant(body) is not None
