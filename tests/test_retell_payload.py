"""Retell payloads → Call: shapes, units, transcripts, tools, latency, malformed input.

The snapshot side is in test_retell_snapshot.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.retell_samples import START_MS, sample_call
from voicereplay.errors import PayloadError
from voicereplay.models import Call
from voicereplay.providers import retell_payload
from voicereplay.providers.retell_payload import build_snapshot, is_retell, parse_call

RETELL_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "retell"


def _call(**changes: Any) -> dict[str, Any]:
    payload = sample_call()
    payload.update(changes)
    return payload


# -- detection ---------------------------------------------------------------------------------
def test_is_retell_accepts_call_and_webhook_bodies() -> None:
    call = sample_call()
    assert is_retell(call)
    assert is_retell({"event": "call_ended", "call": call})
    assert is_retell({"event": "call_analyzed", "data": call})


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "v1", "orgId": "o", "type": "webCall"},  # Vapi call
        {"message": {"type": "end-of-call-report", "call": {"id": "v1"}}},  # Vapi webhook
        {"event": "chat_ended", "chat": {"chat_id": "c"}},
        {"call_id": 5, "agent_id": "a"},
        [sample_call()],
        "call_1",
        None,
    ],
)
def test_is_retell_rejects_other_shapes(payload: Any) -> None:
    assert not is_retell(payload)


# -- a full call -------------------------------------------------------------------------------
def test_call_fields_units_and_cost() -> None:
    call = parse_call(sample_call(), source="sample.json")
    assert call.provider == "retell"
    assert call.call_id == "call_sample1"
    assert call.type == "inbound"
    assert call.status == "ended"
    assert call.started_at == datetime.fromtimestamp(START_MS / 1000, tz=UTC)
    assert call.started_at.tzinfo is not None
    assert call.ended_at == datetime.fromtimestamp((START_MS + 17_250) / 1000, tz=UTC)
    assert call.duration == pytest.approx(17.25)
    assert call.ended_reason == "agent_hangup"
    assert call.customer_number == "+14155550100"
    assert call.agent_id == "agent_sample"
    assert call.agent_version == "3"
    # cents → USD
    assert call.cost.total_usd == pytest.approx(0.05)
    kinds = {item.kind: item for item in call.cost.breakdown}
    assert kinds["tts"].usd == pytest.approx(0.02)
    assert kinds["llm"].usd == pytest.approx(0.013)
    assert kinds["platform"].detail["product"] == "retell_platform"
    assert kinds["tts"].detail["unit_price_usd"] == pytest.approx(0.07)
    assert call.analysis.summary == "Ada moved her appointment to Friday."
    assert call.analysis.success is True
    assert call.analysis.sentiment == "Positive"
    assert call.analysis.structured_data == {"rescheduled": True}
    assert call.metadata == {
        "crm_id": "c-9",
        "retell_llm_dynamic_variables": {"customer_name": "Ada"},
    }
    assert call.raw == sample_call()


def test_words_give_turn_timings_in_seconds() -> None:
    call = parse_call(sample_call())
    first = call.turns[0]
    assert first.role == "agent"
    assert first.speaker == "Dental Desk"
    assert first.words[0].word == "Hi"
    assert (first.words[0].start, first.words[0].end) == (0.5, 0.75)
    assert first.start == 0.5
    assert first.end == first.words[-1].end
    user = call.turns[1]
    assert (user.role, user.speaker, user.start) == ("user", None, 4.0)


def test_tool_invocations_with_string_and_object_arguments() -> None:
    payload = sample_call()
    payload["transcript_with_tool_calls"][7]["arguments"] = {"day": "friday"}  # seen in logs
    call = parse_call(payload)
    roles = [t.role for t in call.turns]
    assert roles == [
        "agent", "user", "agent", "tool_call", "tool_result", "agent", "user",
        "tool_call", "tool_result", "system", "agent",
    ]
    lookup, reschedule = call.tool_calls
    assert (lookup.id, lookup.name, lookup.arguments) == (
        "tc_1", "lookup_appointment", {"phone": "+14155550100"},
    )
    assert lookup.raw_arguments is None
    assert (reschedule.name, reschedule.arguments) == ("reschedule", {"day": "friday"})
    # no timestamp: placed at the previous turn's end; time_sec wins when present
    assert call.turns[3].start == call.turns[3].end == call.turns[2].end
    assert call.turns[7].start == 14.2
    result = call.turns[4].tool_result
    assert result is not None
    assert (result.id, result.name, result.success) == ("tc_1", "lookup_appointment", True)
    assert json.loads(result.result) == {"date": "2024-06-03"}
    assert call.turns[8].start == 14.2  # a result without time sits after its invocation
    assert "reschedule → goodbye" in call.turns[9].text


def test_invalid_json_arguments_are_kept_raw() -> None:
    payload = sample_call()
    payload["transcript_with_tool_calls"][3]["arguments"] = "{not json"
    call = parse_call(payload)
    assert call.tool_calls[0].arguments == {}
    assert call.tool_calls[0].raw_arguments == "{not json"


def test_events_become_system_turns() -> None:
    payload = _call(
        transcript_with_tool_calls=[
            {"role": "dtmf", "digit": "3"},
            {"role": "sms", "content": "See you Friday", "time_sec": 2.5},
            {"role": "injected", "content": "caller is VIP", "time_sec": 3},
            {"role": "agent", "content": "Hi", "words": []},
        ]
    )
    turns = parse_call(payload).turns
    assert [t.role for t in turns] == ["system", "system", "system", "agent"]
    assert "3" in turns[0].text and turns[0].start is None
    assert "See you Friday" in turns[1].text and turns[1].start == 2.5
    assert turns[2].start == 3.0
    assert turns[3].start is None and turns[3].words == []


def test_transfer_target_is_a_user_turn_with_its_own_speaker() -> None:
    payload = _call(
        transcript_with_tool_calls=[
            {"role": "transfer_target", "content": "Front desk.", "words": []},
        ]
    )
    (turn,) = parse_call(payload).turns
    assert (turn.role, turn.speaker, turn.text) == ("user", "transfer_target", "Front desk.")


def test_latency_summary_and_per_turn() -> None:
    metrics = parse_call(sample_call()).provider_metrics
    assert metrics.summary["e2e_p50"] == pytest.approx(1.15)
    assert metrics.summary["llm_p90"] == pytest.approx(0.69)
    assert "e2e_num" not in metrics.summary
    first, second = metrics.turn_latencies
    # the greeting answers nobody: the first value is the first agent reply to the user
    assert first.turn == 2 and second.turn == 10
    assert (first.total, first.model, first.voice, first.transcriber) == pytest.approx(
        (0.8, 0.4, 0.2, 0.1)
    )
    assert second.total == pytest.approx(1.5)
    assert second.transcriber is None  # asr had one value only


def test_recordings_prefer_plain_urls_over_scrubbed() -> None:
    call = parse_call(_call(scrubbed_recording_url="https://cdn/scrubbed.wav"))
    stereo, mixed = call.recording("stereo"), call.recording("mixed")
    assert stereo and stereo.url and stereo.url.endswith("recording_multichannel.wav")
    assert mixed and mixed.url and mixed.url.endswith("/recording.wav")
    payload = sample_call()
    del payload["recording_url"], payload["recording_multi_channel_url"]
    payload["scrubbed_recording_url"] = "https://cdn/scrubbed.wav"
    call = parse_call(payload)
    assert [(r.kind, r.url) for r in call.recordings] == [("mixed", "https://cdn/scrubbed.wav")]


# -- fallbacks and shapes ------------------------------------------------------------------------
def test_transcript_object_fallback() -> None:
    payload = sample_call()
    del payload["transcript_with_tool_calls"]
    call = parse_call(payload)
    assert [t.role for t in call.turns] == ["agent", "user", "agent", "agent", "user", "agent"]
    assert call.tool_calls == []
    assert call.turns[1].words and call.turns[1].start == 4.0


def test_plain_transcript_fallback() -> None:
    payload = sample_call()
    del payload["transcript_with_tool_calls"], payload["transcript_object"]
    payload["transcript"] = (
        "Agent: Hi there.\nUser: Move my appointment\nplease.\nTransfer Target: Front desk."
    )
    turns = parse_call(payload).turns
    assert [(t.role, t.text, t.speaker) for t in turns] == [
        ("agent", "Hi there.", "Dental Desk"),
        ("user", "Move my appointment\nplease.", None),
        ("user", "Front desk.", "transfer_target"),
    ]
    assert all(t.start is None for t in turns)


def test_no_transcript_at_all_gives_no_turns() -> None:
    payload = sample_call()
    for key in ("transcript_with_tool_calls", "transcript_object", "transcript"):
        del payload[key]
    payload["latency"] = {}
    assert parse_call(payload).turns == []


@pytest.mark.parametrize("key", ["call", "data"])
def test_webhook_bodies_with_call_and_legacy_data(key: str) -> None:
    body = {"event": "call_analyzed", key: sample_call()}
    call = parse_call(body, source="webhook")
    assert call.call_id == "call_sample1"
    assert len(call.turns) == 11
    assert call.raw == body


def test_web_call_and_outbound_call() -> None:
    web = sample_call()
    web.update(call_type="web_call", access_token="tok")
    for key in ("direction", "from_number", "to_number"):
        del web[key]
    call = parse_call(web)
    assert (call.type, call.customer_number) == ("web", None)
    outbound = parse_call(_call(direction="outbound"))
    assert (outbound.type, outbound.customer_number) == ("outbound", "+14155550199")
    assert parse_call(_call(direction=None, call_type="phone_call")).type == "unknown"


def test_numeric_strings_and_missing_duration() -> None:
    payload = _call(start_timestamp=str(START_MS), end_timestamp=f"{START_MS + 2000}.0",
                    duration_ms=None, agent_version=7)
    call = parse_call(payload)
    assert call.duration == pytest.approx(2.0)
    assert call.started_at == datetime.fromtimestamp(START_MS / 1000, tz=UTC)
    assert call.agent_version == "7"


# -- malformed input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"call_id": None}, "call_id"),
        ({"call_id": 42}, "call_id"),
        ({"start_timestamp": "yesterday"}, "start_timestamp"),
        ({"start_timestamp": True}, "start_timestamp"),
        ({"end_timestamp": 10**30}, "end_timestamp"),
        ({"end_timestamp": -5}, "end_timestamp"),
        ({"duration_ms": "NaN"}, "duration_ms"),
        ({"call_cost": {"combined_cost": "lots"}}, "call_cost.combined_cost"),
        ({"call_cost": {"product_costs": [{"product": "x"}]}}, "call_cost.product_costs[0].cost"),
        ({"call_analysis": {"call_successful": "maybe"}}, "call_analysis.call_successful"),
        ({"metadata": ["a"]}, "metadata"),
        ({"transcript_object": {"role": "agent"}}, "transcript_object"),
        ({"latency": {"e2e": {"values": [1, "x"]}}}, "latency.e2e.values[1]"),
    ],
)
def test_malformed_fields_name_the_field_and_source(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_call(_call(**change), source="bad.json")
    assert str(info.value).startswith("bad.json: ")
    assert field in str(info.value)


def test_words_without_start_end_or_text_keep_what_they_have() -> None:
    # every field of a Retell word is Optional in the SDK: the call is imported, and a missing
    # time comes from the word's neighbours
    payload = sample_call()
    words = payload["transcript_with_tool_calls"][1]["words"]
    words[0] = {"word": "I", "end": 4.25}  # no start, first word: its own end
    words[2] = {"word": "to", "start": 4.6}  # no end: the next word's start
    words[3] = {"start": 4.9, "end": 5.15}  # no text
    words[4] = {"word": "my"}  # no time at all: between its neighbours
    words[5] = {"word": "appointment."}  # last, no time: the end of the word before
    user = parse_call(payload, source="sdk.json").turns[1]
    assert [(w.word, w.start, w.end) for w in user.words] == [
        ("I", 4.25, 4.25), ("need", 4.3, 4.55), ("to", 4.6, 4.9), ("", 4.9, 5.15),
        ("my", 5.15, 5.15), ("appointment.", 5.15, 5.15)]
    assert (user.text, user.start, user.end) == ("I need to move my appointment.", 4.25, 5.15)
    # with no time anywhere the words cannot be placed; the utterance is kept untimed
    payload["transcript_with_tool_calls"][1]["words"] = [{"word": "I"}, {}]
    user = parse_call(payload).turns[1]
    assert (user.text, user.start, user.words) == ("I need to move my appointment.", None, [])


def test_truncated_transcript_entries_are_payload_errors() -> None:
    payload = sample_call()
    payload["transcript_with_tool_calls"][3] = {"role": "tool_call_invocation", "tool_call_id": "x"}
    with pytest.raises(PayloadError, match=r"transcript_with_tool_calls\[3\]\.name is missing"):
        parse_call(payload)
    payload = sample_call()
    payload["transcript_with_tool_calls"][3]["arguments"] = 12
    with pytest.raises(PayloadError, match="arguments"):
        parse_call(payload)


@pytest.mark.parametrize(
    "payload",
    [[], "text", None, {"event": "call_ended"}, {"event": "call_ended", "call": [1]},
     {"event": "chat_ended", "chat": {}}],
)
def test_not_a_call(payload: Any) -> None:
    with pytest.raises(PayloadError, match="w.json"):
        parse_call(payload, source="w.json")


def test_webhook_errors_name_the_nested_field_and_call() -> None:
    body = {"event": "call_ended", "call": _call(start_timestamp="soon")}
    with pytest.raises(PayloadError, match=r"^Retell call call_sample1: call\.start_timestamp"):
        parse_call(body)


# -- fixture files ---------------------------------------------------------------------------
FIXTURE_FILES = sorted(
    p for p in RETELL_FIXTURES.glob("*.json")
    if not p.name.endswith((".agent.json", ".llm.json"))
) if RETELL_FIXTURES.is_dir() else []


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_fixture_files_parse_or_fail_cleanly(path: Path) -> None:
    payload = json.loads(path.read_text(encoding="utf-8"))
    if not is_retell(payload):
        with pytest.raises(PayloadError):
            parse_call(payload, source=str(path))
        return
    call = parse_call(payload, source=str(path))
    assert Call.model_validate(call.model_dump()) == call
    assert call.provider == "retell" and call.call_id
    body, _ = retell_payload.call_body(payload)
    has_transcript = any(body.get(k) for k in ("transcript_with_tool_calls", "transcript_object",
                                               "transcript"))
    assert bool(call.turns) == has_transcript
    for turn in call.turns:
        if turn.words:
            assert turn.start == min(w.start for w in turn.words)
    entries = body.get("transcript_with_tool_calls") or []
    invoked = [e["tool_call_id"] for e in entries if e["role"] == "tool_call_invocation"]
    assert [c.id for c in call.tool_calls] == invoked
    answered = {t.tool_result.id for t in call.turns if t.tool_result}
    assert answered <= set(invoked)
    e2e = (body.get("latency") or {}).get("e2e") or {}
    assert len(call.provider_metrics.turn_latencies) == len(e2e.get("values") or [])
    for latency in call.provider_metrics.turn_latencies:
        assert latency.turn is not None and call.turns[latency.turn].role == "agent"
    if body.get("call_cost", {}).get("combined_cost") is not None:
        assert call.cost.total_usd == pytest.approx(body["call_cost"]["combined_cost"] / 100)
    agent_path = path.with_name(f"{path.stem}.agent.json")
    llm_path = path.with_name(f"{path.stem}.llm.json")
    if agent_path.exists() or llm_path.exists():
        agent = json.loads(agent_path.read_text()) if agent_path.exists() else None
        llm = json.loads(llm_path.read_text()) if llm_path.exists() else None
        snapshot = build_snapshot(call, agent, llm)
        assert snapshot.source.provider == "retell"
        assert snapshot.source.call_id == call.call_id
        if llm is not None:
            assert snapshot.system_prompt
            for name in snapshot.variables:
                assert not re.search(r"\{\{\s*" + re.escape(name) + r"\s*\}\}",
                                     snapshot.system_prompt)
            assert snapshot.source.llm_version == str(llm["version"])
            assert {t.name for t in snapshot.tools} >= {
                t["name"] for t in llm.get("general_tools", [])
            }
