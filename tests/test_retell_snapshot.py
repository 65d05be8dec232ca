"""Retell agent + Retell LLM → AgentSnapshot: prompt, variables, tools, modes, versions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fakes.retell_samples import sample_agent, sample_call, sample_llm
from voicereplay.errors import PayloadError
from voicereplay.providers.retell_payload import build_snapshot, parse_call


def test_snapshot_prompt_variables_and_model() -> None:
    call = parse_call(sample_call())
    snap = build_snapshot(call, sample_agent(), sample_llm())
    # call variables beat the LLM defaults; defaults fill the rest; unknown names stay
    assert snap.system_prompt == (
        "You are the front desk of Bright Dental (Main St). "
        "The caller is Ada, calling from +14155550100. {{unknown_thing}}"
    )
    assert snap.first_message == "Hi Ada, this is Dental Desk. How can I help?"
    assert snap.first_message_mode == "agent-speaks-first"
    assert snap.variables == {
        "customer_name": "Ada", "clinic": "Main St", "user_number": "+14155550100",
    }
    assert (snap.model.provider, snap.model.name, snap.model.temperature) == (
        "openai", "gpt-4.1", 0.2,
    )
    assert (snap.voice.voice_id, snap.voice.model, snap.voice.speed) == (
        "11labs-Adrian", "eleven_flash_v2", 1.1,
    )
    assert (snap.transcriber.language, snap.transcriber.model) == ("en-US", "fast")
    assert snap.turn_taking.silence_timeout == 30.0
    assert snap.turn_taking.max_duration == 1800.0


def test_snapshot_tools_include_state_tools_once() -> None:
    snap = build_snapshot(parse_call(sample_call()), sample_agent(), sample_llm())
    assert [(t.name, t.kind) for t in snap.tools] == [
        ("end_call", "end_call"),
        ("lookup_appointment", "function"),
        ("reschedule", "function"),
        ("transfer_to_staff", "transfer_call"),
        ("press_digit", "press_digit"),
    ]
    lookup = snap.tool("lookup_appointment")
    assert lookup is not None
    assert lookup.server_url == "https://tools.example.invalid/lookup"
    assert lookup.parameters["required"] == ["phone"]
    assert snap.tool("end_call").description == "End the call."  # type: ignore[union-attr]
    assert [s["name"] for s in snap.states] == ["reschedule", "transfer"]
    assert snap.states[0]["tools"][1]["description"] == "duplicate"  # kept verbatim


def test_snapshot_source_names_versions() -> None:
    snap = build_snapshot(parse_call(sample_call()), sample_agent(), sample_llm())
    source = snap.source
    assert (source.provider, source.agent_id, source.agent_version) == (
        "retell", "agent_sample", "3",
    )
    assert (source.llm_id, source.llm_version, source.call_id) == (
        "llm_sample", "2", "call_sample1",
    )


def test_same_agent_same_snapshot_id_across_calls() -> None:
    a = build_snapshot(parse_call(sample_call("call_a")), sample_agent(), sample_llm())
    b = build_snapshot(parse_call(sample_call("call_b")), sample_agent(), sample_llm())
    assert a.id == b.id and a.source.call_id != b.source.call_id


@pytest.mark.parametrize(
    ("start_speaker", "begin", "mode"),
    [
        ("agent", "Hello!", "agent-speaks-first"),
        ("agent", "", "agent-generates-first"),
        ("agent", None, "agent-generates-first"),
        ("user", "Hello!", "user-speaks-first"),
        (None, "", "user-speaks-first"),
        (None, None, "agent-generates-first"),
    ],
)
def test_first_message_modes(start_speaker: str | None, begin: str | None, mode: str) -> None:
    llm = sample_llm()
    llm["start_speaker"] = start_speaker
    llm["begin_message"] = begin
    snap = build_snapshot(parse_call(sample_call()), sample_agent(), llm)
    assert snap.first_message_mode == mode


@pytest.mark.parametrize(
    ("model", "provider"),
    [("claude-3.7-sonnet", "anthropic"), ("gemini-2.0-flash", "google"), ("gpt-4o-mini", "openai"),
     ("mystery-1", None)],
)
def test_model_providers(model: str, provider: str | None) -> None:
    llm = {**sample_llm(), "model": model}
    assert build_snapshot(parse_call(sample_call()), None, llm).model.provider == provider


def test_snapshot_from_webhook_call_reads_its_variables() -> None:
    call = parse_call({"event": "call_ended", "call": sample_call()})
    snap = build_snapshot(call, sample_agent(), sample_llm())
    assert snap.variables["customer_name"] == "Ada"


def test_custom_llm_and_conversation_flow_agents() -> None:
    call = parse_call(sample_call())
    agent = sample_agent()
    agent["response_engine"] = {"type": "custom-llm", "llm_websocket_url": "wss://my.llm/ws"}
    snap = build_snapshot(call, agent, None)
    assert (snap.model.provider, snap.model.name) == ("custom-llm", "wss://my.llm/ws")
    assert snap.system_prompt is None and snap.tools == ()
    assert snap.voice.voice_id == "11labs-Adrian"
    agent["response_engine"] = {"type": "conversation-flow", "conversation_flow_id": "cf_1",
                                "version": 4}
    snap = build_snapshot(call, agent, None)
    assert snap.model.provider == "conversation-flow"
    assert (snap.source.llm_id, snap.source.llm_version) == ("cf_1", "4")


def test_llm_without_agent_and_neither() -> None:
    call = parse_call(sample_call())
    snap = build_snapshot(call, None, sample_llm())
    assert snap.source.agent_id == "agent_sample" and snap.source.agent_version == "3"
    assert snap.voice.voice_id is None
    with pytest.raises(PayloadError, match="call_sample1.*neither"):
        build_snapshot(call, None, None)


@pytest.mark.parametrize(
    ("llm_change", "field"),
    [
        ({"general_tools": [{"type": "custom"}]}, "general_tools[0].name"),
        ({"general_tools": [{"name": "x", "parameters": "schema"}]}, "parameters"),
        ({"states": [{"name": "s", "tools": "none"}]}, "states[0].tools"),
        ({"model_temperature": "warm"}, "model_temperature"),
        ({"general_prompt": ["x"]}, "general_prompt"),
    ],
)
def test_malformed_llm_is_a_payload_error(llm_change: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError, match=f"call_sample1.*{re.escape(field)}"):
        build_snapshot(parse_call(sample_call()), sample_agent(), {**sample_llm(), **llm_change})
    with pytest.raises(PayloadError):
        build_snapshot(parse_call(sample_call()), ["not", "an", "agent"], None)  # type: ignore[arg-type]
