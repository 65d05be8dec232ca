"""Small, valid Retell bodies (call, agent, Retell LLM) and a tiny WAV for the Retell tests.

The shapes follow Retell's get-call / get-agent / get-retell-llm responses. Every function
returns a fresh dict, so tests can mutate what they get.
"""

from __future__ import annotations

import io
import json
import wave
from typing import Any

START_MS = 1_717_000_000_000  # 2024-05-29T16:26:40Z


def _words(text: str, start: float, step: float = 0.3) -> list[dict[str, Any]]:
    return [
        {"word": w, "start": round(start + i * step, 3), "end": round(start + i * step + 0.25, 3)}
        for i, w in enumerate(text.split())
    ]


def _said(role: str, text: str, start: float) -> dict[str, Any]:
    return {"role": role, "content": text, "words": _words(text, start)}


def sample_call(
    call_id: str = "call_sample1",
    *,
    start_ms: int = START_MS,
    agent_id: str = "agent_sample",
    agent_version: int = 3,
) -> dict[str, Any]:
    """A phone call with words, two tool calls (string and object arguments) and latency."""
    greet = _said("agent", "Hi Ada, this is Dental Desk. How can I help?", 0.5)
    ask = _said("user", "I need to move my appointment.", 4.0)
    check = _said("agent", "Let me check.", 6.0)
    booked = _said("agent", "You are booked on June third. Move it?", 9.0)
    friday = _said("user", "Yes, to Friday please.", 12.5)
    done = _said("agent", "Done. Goodbye!", 15.0)
    return {
        "call_id": call_id,
        "call_type": "phone_call",
        "direction": "inbound",
        "from_number": "+14155550100",
        "to_number": "+14155550199",
        "agent_id": agent_id,
        "agent_version": agent_version,
        "agent_name": "Dental Desk",
        "call_status": "ended",
        "start_timestamp": start_ms,
        "end_timestamp": start_ms + 17_250,
        "duration_ms": 17_250,
        "disconnection_reason": "agent_hangup",
        "transcript": "\n".join(
            f"{'Agent' if u['role'] == 'agent' else 'User'}: {u['content']}"
            for u in (greet, ask, check, booked, friday, done)
        ),
        "transcript_object": [greet, ask, check, booked, friday, done],
        "transcript_with_tool_calls": [
            greet,
            ask,
            check,
            {
                "role": "tool_call_invocation",
                "tool_call_id": "tc_1",
                "name": "lookup_appointment",
                "arguments": json.dumps({"phone": "+14155550100"}),
            },
            {
                "role": "tool_call_result",
                "tool_call_id": "tc_1",
                "content": json.dumps({"date": "2024-06-03"}),
                "successful": True,
            },
            booked,
            friday,
            {
                "role": "tool_call_invocation",
                "tool_call_id": "tc_2",
                "name": "reschedule",
                "arguments": '{"day": "friday"}',
                "time_sec": 14.2,
            },
            {"role": "tool_call_result", "tool_call_id": "tc_2", "content": "ok"},
            {
                "role": "node_transition",
                "former_node_id": "node-reschedule",
                "former_node_name": "reschedule",
                "new_node_id": "node-goodbye",
                "new_node_name": "goodbye",
            },
            done,
        ],
        "recording_url": f"https://dxc03zgurdly9.cloudfront.net/{call_id}/recording.wav",
        "recording_multi_channel_url": (
            f"https://dxc03zgurdly9.cloudfront.net/{call_id}/recording_multichannel.wav"
        ),
        "public_log_url": f"https://dxc03zgurdly9.cloudfront.net/{call_id}/public.log",
        "latency": {
            "e2e": {"p50": 1150, "p90": 1430, "max": 1500, "min": 800, "num": 2,
                    "values": [800, 1500]},
            "llm": {"p50": 550, "p90": 690, "max": 700, "min": 400, "num": 2,
                    "values": [400, 700]},
            "tts": {"p50": 250, "p90": 290, "max": 300, "min": 200, "num": 2,
                    "values": [200, 300]},
            "asr": {"p50": 100, "max": 100, "min": 100, "num": 1, "values": [100]},
        },
        "call_cost": {
            "product_costs": [
                {"product": "elevenlabs_tts", "unit_price": 7, "cost": 2.0},
                {"product": "gpt_4_1", "unit_price": 4.5, "cost": 1.3},
                {"product": "retell_platform", "unit_price": 5.5, "cost": 1.7},
            ],
            "total_duration_seconds": 18,
            "total_duration_unit_price": 17,
            "combined_cost": 5.0,
        },
        "call_analysis": {
            "call_summary": "Ada moved her appointment to Friday.",
            "in_voicemail": False,
            "user_sentiment": "Positive",
            "call_successful": True,
            "custom_analysis_data": {"rescheduled": True},
        },
        "metadata": {"crm_id": "c-9"},
        "retell_llm_dynamic_variables": {"customer_name": "Ada"},
    }


def sample_agent(agent_id: str = "agent_sample", version: int = 3) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "version": version,
        "agent_name": "Dental Desk",
        "is_published": True,
        "response_engine": {"type": "retell-llm", "llm_id": "llm_sample", "version": 2},
        "voice_id": "11labs-Adrian",
        "voice_model": "eleven_flash_v2",
        "voice_speed": 1.1,
        "language": "en-US",
        "stt_mode": "fast",
        "responsiveness": 0.8,
        "interruption_sensitivity": 0.9,
        "end_call_after_silence_ms": 30_000,
        "max_call_duration_ms": 1_800_000,
        "last_modification_timestamp": 1_717_000_000_000,
    }


def sample_llm(llm_id: str = "llm_sample", version: int = 2) -> dict[str, Any]:
    lookup_params = {
        "type": "object",
        "properties": {"phone": {"type": "string"}},
        "required": ["phone"],
    }
    return {
        "llm_id": llm_id,
        "version": version,
        "last_modification_timestamp": 1_716_999_000_000,
        "model": "gpt-4.1",
        "model_temperature": 0.2,
        "general_prompt": (
            "You are the front desk of Bright Dental ({{clinic}}). "
            "The caller is {{customer_name}}, calling from {{user_number}}. {{unknown_thing}}"
        ),
        "begin_message": "Hi {{customer_name}}, this is Dental Desk. How can I help?",
        "start_speaker": "agent",
        "default_dynamic_variables": {"customer_name": "there", "clinic": "Main St"},
        "general_tools": [
            {"type": "end_call", "name": "end_call", "description": "End the call."},
            {
                "type": "custom",
                "name": "lookup_appointment",
                "description": "Find the caller's appointment.",
                "url": "https://tools.example.invalid/lookup",
                "method": "POST",
                "speak_during_execution": True,
                "parameters": lookup_params,
            },
        ],
        "states": [
            {
                "name": "reschedule",
                "state_prompt": "Help the caller pick a new day.",
                "edges": [{"destination_state_name": "transfer", "description": "wants a human"}],
                "tools": [
                    {
                        "type": "custom",
                        "name": "reschedule",
                        "description": "Move the appointment.",
                        "url": "https://tools.example.invalid/reschedule",
                        "parameters": {
                            "type": "object",
                            "properties": {"day": {"type": "string"}},
                        },
                    },
                    {"type": "end_call", "name": "end_call", "description": "duplicate"},
                ],
            },
            {
                "name": "transfer",
                "state_prompt": "Transfer to staff.",
                "tools": [
                    {
                        "type": "transfer_call",
                        "name": "transfer_to_staff",
                        "description": "Transfer to the front desk staff.",
                        "transfer_destination": {"type": "predefined", "number": "+14155550111"},
                        "transfer_option": {"type": "cold_transfer"},
                    },
                    {"type": "press_digit", "name": "press_digit"},
                ],
            },
        ],
        "starting_state": "reschedule",
    }


def tiny_wav(seconds: float = 0.05, rate: int = 8000, channels: int = 2) -> bytes:
    """A short silent PCM WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * channels * int(rate * seconds))
    return buffer.getvalue()
