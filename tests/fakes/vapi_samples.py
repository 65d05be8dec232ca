"""Small, realistic Vapi payloads for tests and benchmarks (shapes from provider-apis.md §1).

Each builder returns a fresh dict, so tests can mutate it freely.
"""

from __future__ import annotations

import copy
import io
import struct
import wave
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["T0", "assistant", "call", "iso", "report", "wav_bytes"]

T0 = 1749546420000  # 2025-06-10T09:07:00Z in epoch ms: the call starts here


def iso(ms: float) -> str:
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "message": "You are Sam from {{company}}.", "time": T0,
     "secondsFromStart": 0},
    {"role": "bot", "message": "Thanks for calling Acme. How can I help?", "time": T0 + 1000,
     "endTime": T0 + 3500, "secondsFromStart": 1.0, "duration": 2500, "source": ""},
    {"role": "user", "message": "Where is my order 4417?", "time": T0 + 4000,
     "endTime": T0 + 6200, "secondsFromStart": 4.0, "duration": 2200},
    {"role": "tool_calls", "message": "", "time": T0 + 6800, "secondsFromStart": 6.8,
     "toolCalls": [{"id": "call_1", "type": "function",
                    "function": {"name": "check_status",
                                 "arguments": "{\"order_id\": \"4417\"}"}}]},
    {"role": "tool_call_result", "toolCallId": "call_1", "name": "check_status",
     "result": "{\"status\": \"shipped\"}", "time": T0 + 7300, "secondsFromStart": 7.3},
    {"role": "bot", "message": "It shipped yesterday.", "time": T0 + 7600,
     "endTime": T0 + 9100, "secondsFromStart": 7.6, "duration": 1500, "source": ""},
]


def call(call_id: str = "3f1c2b9e-0000-4000-8000-000000000001", **fields: Any) -> dict[str, Any]:
    """A 2025-style GET /call body: an assistantId call with artifact, costs and analysis."""
    body: dict[str, Any] = {
        "id": call_id,
        "orgId": "0b9d1c1e-0000-4000-8000-0000000000aa",
        "createdAt": iso(T0 - 2000),
        "updatedAt": iso(T0 + 12000),
        "type": "inboundPhoneCall",
        "status": "ended",
        "endedReason": "customer-ended-call",
        "startedAt": iso(T0),
        "endedAt": iso(T0 + 10500),
        "assistantId": "a-sam",
        "assistantOverrides": {"variableValues": {"company": "Acme Audio"}},
        "customer": {"number": "+14155550142"},
        "cost": 0.0421,
        "costs": [
            {"type": "transcriber", "transcriber": {"provider": "deepgram", "model": "nova-2"},
             "minutes": 0.18, "cost": 0.0018},
            {"type": "model", "model": {"provider": "openai", "model": "gpt-4o"},
             "promptTokens": 900, "completionTokens": 40, "cost": 0.0026},
            {"type": "voice", "voice": {"provider": "11labs", "voiceId": "sarah"},
             "characters": 80, "cost": 0.0032},
            {"type": "vapi", "subType": "normal", "minutes": 0.18, "cost": 0.009},
            {"type": "analysis", "analysisType": "summary", "cost": 0.0015,
             "model": {"provider": "openai", "model": "gpt-4o"}, "promptTokens": 300,
             "completionTokens": 40},
        ],
        "analysis": {"summary": "Order status question.", "successEvaluation": "true",
                     "structuredData": {"order_id": "4417"}},
        "artifact": {
            "messages": copy.deepcopy(_MESSAGES),
            "transcript": "AI: Thanks for calling Acme. How can I help?\nUser: Where is my order?",
            "recordingUrl": "https://storage.vapi.ai/rec-mono.wav",
            "stereoRecordingUrl": "https://storage.vapi.ai/rec-stereo.wav",
            "recording": {
                "stereoUrl": "https://storage.vapi.ai/rec-stereo.wav",
                "mono": {"combinedUrl": "https://storage.vapi.ai/rec-mono.wav",
                         "assistantUrl": "https://storage.vapi.ai/rec-assistant.wav",
                         "customerUrl": "https://storage.vapi.ai/rec-customer.wav"},
            },
            "performanceMetrics": {
                "turnLatencies": [
                    {"modelLatency": 420, "voiceLatency": 310, "transcriberLatency": 150,
                     "endpointingLatency": 200, "turnLatency": 1080},
                    {"modelLatency": 380, "voiceLatency": 290, "transcriberLatency": 140,
                     "endpointingLatency": 210, "turnLatency": 1020},
                ],
                "modelLatencyAverage": 400, "voiceLatencyAverage": 300,
                "turnLatencyAverage": 1050, "numUserInterrupted": 0,
            },
        },
        "metadata": {"ticket": "T-1"},
    }
    body.update(fields)
    return body


def report(call_id: str = "3f1c2b9e-0000-4000-8000-000000000002") -> dict[str, Any]:
    """A 2025-style end-of-call-report webhook body built from :func:`call`."""
    full = call(call_id)
    return {
        "message": {
            "type": "end-of-call-report",
            "timestamp": T0 + 13000,
            "endedReason": "customer-ended-call",
            "call": {
                "id": call_id, "orgId": full["orgId"], "createdAt": full["createdAt"],
                "updatedAt": full["createdAt"], "type": "webCall", "status": "queued",
                "assistantId": "a-sam", "assistantOverrides": full["assistantOverrides"],
            },
            "customer": {"number": "+14155550142"},
            "assistant": assistant(),
            "artifact": full["artifact"],
            "analysis": {"summary": "From the report.", "successEvaluation": "false"},
            "startedAt": full["startedAt"],
            "endedAt": full["endedAt"],
            "cost": full["cost"],
            "costs": full["costs"],
            "durationMs": 10500,
        }
    }


def assistant(assistant_id: str = "a-sam") -> dict[str, Any]:
    """A GET /assistant/{id} body with function, endCall and transferCall tools."""
    return {
        "id": assistant_id,
        "orgId": "0b9d1c1e-0000-4000-8000-0000000000aa",
        "name": "Sam",
        "createdAt": iso(T0 - 86_400_000),
        "updatedAt": iso(T0 - 3_600_000),
        "model": {
            "provider": "openai",
            "model": "gpt-4o",
            "temperature": 0.3,
            "maxTokens": 250,
            "messages": [{"role": "system", "content": "You are Sam from {{company}}."}],
            "tools": [
                {"type": "function", "async": False,
                 "function": {"name": "check_status", "description": "Order status.",
                              "parameters": {"type": "object", "properties": {
                                  "order_id": {"type": "string"}}, "required": ["order_id"]}},
                 "server": {"url": "https://tools.example.com/vapi"}},
                {"type": "function", "function": {"name": "ping"}},
                {"type": "endCall"},
                {"type": "transferCall", "destinations": [
                    {"type": "number", "number": "+14155550100", "message": "Transferring."}]},
                {"type": "dtmf"},
            ],
        },
        "voice": {"provider": "11labs", "voiceId": "sarah", "model": "eleven_turbo_v2_5",
                  "speed": 1.1},
        "transcriber": {"provider": "deepgram", "model": "nova-2-phonecall", "language": "en",
                        "endpointing": 300},
        "firstMessage": "Thanks for calling {{company}}. How can I help?",
        "firstMessageMode": "assistant-speaks-first",
        "endCallPhrases": ["goodbye", "bye now"],
        "silenceTimeoutSeconds": 30,
        "maxDurationSeconds": 600,
        "server": {"url": "https://hooks.example.com/vapi"},
    }


def wav_bytes(seed: int = 0, samples: int = 400) -> bytes:
    """A tiny 8 kHz mono WAV whose samples depend on ``seed`` (so each is unique)."""
    frames = b"".join(
        struct.pack("<h", ((seed * 7919 + i * 31) % 2000) - 1000) for i in range(samples)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(frames)
    return buffer.getvalue()
