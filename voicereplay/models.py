"""The normalized call: one shape for every provider's call log.

Units: every time is seconds as a float (``start``/``end`` are seconds from the start of the
call, ``duration`` is seconds), every datetime is timezone-aware UTC, every cost is USD.
Provider adapters (``voicereplay.providers``) build these from raw payloads; nothing else in
voicereplay reads a provider's raw shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voicereplay.checks import Check

__all__ = [
    "Analysis",
    "Backends",
    "Replay",
    "ReplayDivergence",
    "ReplayTurn",
    "StageTimings",
    "Call",
    "CallType",
    "Cost",
    "CostItem",
    "KnowledgeContext",
    "KnowledgeDocument",
    "KnowledgeSource",
    "ProviderMetrics",
    "ProviderName",
    "Recording",
    "RecordingKind",
    "Role",
    "ToolCall",
    "ToolResult",
    "Turn",
    "TurnLatency",
    "Word",
    "local_recordings",
    "missing_recordings",
]

ProviderName = Literal["vapi", "retell"]
CallType = Literal["inbound", "outbound", "web", "unknown"]
Role = Literal["agent", "user", "tool_call", "tool_result", "system"]
RecordingKind = Literal["mixed", "stereo", "customer", "agent"]
KnowledgeSource = Literal["vapi-message", "vapi-tool", "retell-url"]
RECORDING_KINDS: tuple[RecordingKind, ...] = ("stereo", "customer", "agent", "mixed")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Word(_Model):
    word: str
    start: float = Field(description="seconds from call start")
    end: float = Field(description="seconds from call start")
    confidence: float | None = None


class ToolCall(_Model):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str | None = Field(
        default=None, description="the arguments text as sent, when it was not valid JSON"
    )


class ToolResult(_Model):
    id: str | None = Field(default=None, description="the id of the tool call answered")
    name: str | None = None
    result: str = ""
    success: bool | None = None
    source: Literal["recorded", "mock", "live", "error"] | None = Field(
        default=None, description="in a replay: where the result came from"
    )


class Turn(_Model):
    role: Role
    text: str = ""
    start: float | None = Field(default=None, description="seconds from call start")
    end: float | None = Field(default=None, description="seconds from call start")
    words: list[Word] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_result: ToolResult | None = None
    speaker: str | None = Field(
        default=None, description="which assistant spoke (squads hand over between assistants)"
    )

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return max(0.0, self.end - self.start)


class KnowledgeDocument(_Model):
    """One retrieved piece of a knowledge base, as the provider recorded it."""

    content: str
    score: float | None = Field(default=None, description="the retriever's similarity score")
    id: str | None = Field(default=None, description="the document/chunk id, when recorded")


class KnowledgeContext(_Model):
    """Knowledge-base content retrieved for one agent turn: what the model saw besides the talk.

    ``turn`` is the index (in ``Call.turns``) of the agent turn the retrieval informed — the
    first agent turn after it — or None when it could not be placed (see ``voicereplay.
    knowledge``). A replay serves it to the agent before that turn's reply.
    """

    turn: int | None = Field(default=None, description="index in Call.turns of the agent turn")
    at: float | None = Field(default=None, description="seconds from call start, if recorded")
    source: KnowledgeSource
    query: str | None = Field(default=None, description="what was searched for, if recorded")
    documents: list[KnowledgeDocument] = Field(default_factory=list)
    text: str = Field(default="", description="the content as the model got it, when the "
                                               "provider recorded it as one text")
    tool_call_id: str | None = Field(default=None, description="vapi-tool: the tool call")

    @property
    def content(self) -> str:
        """The retrieved text: the recorded text, else the documents one per paragraph."""
        if self.text.strip():
            return self.text.strip()
        return "\n\n".join(d.content.strip() for d in self.documents if d.content.strip())


class CostItem(_Model):
    kind: str = Field(description="transport, stt, llm, tts, platform, analysis, …")
    usd: float
    detail: dict[str, Any] = Field(default_factory=dict)


class Cost(_Model):
    total_usd: float | None = None
    breakdown: list[CostItem] = Field(default_factory=list)


class Analysis(_Model):
    summary: str | None = None
    success: bool | None = Field(default=None, description="success evaluation as a real bool")
    structured_data: dict[str, Any] = Field(default_factory=dict)
    sentiment: str | None = None


class TurnLatency(_Model):
    """One agent turn's latency as the provider measured it (seconds)."""

    turn: int | None = None
    total: float | None = None
    model: float | None = None
    voice: float | None = None
    transcriber: float | None = None
    endpointing: float | None = None


class ProviderMetrics(_Model):
    turn_latencies: list[TurnLatency] = Field(default_factory=list)
    summary: dict[str, float] = Field(
        default_factory=dict, description="aggregates, seconds, e.g. e2e_p50, llm_p90"
    )


class Recording(_Model):
    kind: RecordingKind
    url: str | None = Field(default=None, description="where the provider serves it")
    path: str | None = Field(default=None, description="local file once downloaded")
    sha256: str | None = None
    size: int | None = None


def local_recordings(recordings: Iterable[Recording]) -> dict[RecordingKind, Path]:
    """Kind → local file of the recordings that are downloaded and still on disk.

    A downloaded recording whose file is gone is left out here; :func:`missing_recordings`
    names it, so a replay says so instead of silently synthesizing the caller.
    """
    return {r.kind: Path(r.path) for r in recordings if r.path and Path(r.path).exists()}


def missing_recordings(recordings: Iterable[Recording]) -> list[str]:
    """One warning per downloaded recording whose file is no longer in the store."""
    return [f"recording {r.kind} is missing from the store ({r.path})"
            for r in recordings if r.path and not Path(r.path).exists()]


class Call(_Model):
    provider: ProviderName
    call_id: str
    type: CallType = "unknown"
    status: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration: float | None = Field(default=None, description="seconds")
    ended_reason: str | None = None
    cost: Cost = Field(default_factory=Cost)
    analysis: Analysis = Field(default_factory=Analysis)
    customer_number: str | None = None
    agent_id: str | None = Field(default=None, description="Vapi assistant / Retell agent id")
    agent_version: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    provider_metrics: ProviderMetrics = Field(default_factory=ProviderMetrics)
    recordings: list[Recording] = Field(default_factory=list)
    knowledge: list[KnowledgeContext] = Field(
        default_factory=list, description="knowledge-base content retrieved per agent turn")
    warnings: list[str] = Field(
        default_factory=list, description="what could not be imported with the call, e.g. "
                                          "knowledge-base contents behind an expired URL")
    metadata: dict[str, Any] = Field(default_factory=dict)
    raw: dict[str, Any] = Field(default_factory=dict, description="the payload, verbatim")

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.call_id}"

    def recording(self, kind: RecordingKind) -> Recording | None:
        return next((r for r in self.recordings if r.kind == kind), None)

    def turns_by(self, role: Role) -> list[Turn]:
        return [t for t in self.turns if t.role == role]

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [c for t in self.turns for c in t.tool_calls]


ReplayMode = Literal["scripted", "turn", "adaptive"]
ReplayStatus = Literal["completed", "failed"]
TurnOrigin = Literal[
    "original-audio",  # caller: cut from the baseline's customer audio
    "tts-of-transcript",  # caller: synthesized from the baseline's text (no audio)
    "caller-llm",  # caller: adaptive mode's simulated caller
    "first-message",  # agent: the snapshot's first message
    "llm",  # agent: the LLM under test
    "recorded",  # agent: the baseline's reply, replayed verbatim
    "tool",  # tool calls and results
]


class StageTimings(_Model):
    """What one replayed agent turn took, in seconds (measured on this machine)."""

    stt: float | None = Field(default=None, description="transcribing the caller's turn")
    llm_ttft: float | None = Field(default=None, description="LLM time to first token")
    llm_total: float | None = None
    tts_ttfa: float | None = Field(default=None, description="TTS time to first audio")
    tts_total: float | None = None
    response: float | None = Field(
        default=None,
        description="what the caller heard: end of caller speech → start of agent audio",
    )


class Backends(_Model):
    """Which backend ran each stage of a replay (registry names), and the LLM's model."""

    stt: str | None = None
    llm: str | None = None
    llm_model: str | None = Field(default=None, description="the model the LLM backend served")
    tts: str | None = None
    caller_tts: str | None = Field(default=None, description="the synthesized caller's voice")
    caller_llm: str | None = Field(default=None, description="adaptive mode's simulated caller")

    def named(self) -> dict[str, str]:
        """stage → backend for the stages that ran."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ReplayDivergence(_Model):
    """Adaptive mode: where the agent first departed from the baseline."""

    turn: int = Field(description="index in the replay's turns of the diverging reply's first "
                                  "turn")
    baseline_turn: int | None = Field(default=None,
                                      description="the baseline turn at that position")
    caller_turn: int = Field(description="1-based caller turn the reply answered")
    reason: str = Field(description="'tool-call', 'intent' or 'text'")
    detail: str | None = None
    similarity: float | None = None
    threshold: float | None = None
    expected: str = Field(default="", description="the baseline's reply")
    got: str = Field(default="", description="the replay's reply")
    expected_tools: list[str] = Field(default_factory=list)
    got_tools: list[str] = Field(default_factory=list)


class ReplayTurn(Turn):
    """A turn of a replay: a Turn on the replay's virtual clock, plus how it was made."""

    origin: TurnOrigin | None = None
    baseline_turn: int | None = Field(
        default=None, description="index in the baseline call's turns this turn replays"
    )
    heard: str | None = Field(default=None, description="user turns: what the replay's STT heard")
    llm_request: dict[str, Any] | None = Field(
        default=None, description="agent turns: the chat request (messages, tools) sent"
    )
    timings: StageTimings | None = None
    prompt_tokens: int | None = Field(
        default=None, description="agent/tool-call turns: prompt tokens of the LLM request")
    completion_tokens: int | None = Field(
        default=None, description="agent/tool-call turns: completion tokens of the LLM reply")
    knowledge: list[KnowledgeContext] = Field(
        default_factory=list, description="the baseline's knowledge-base context served to the "
                                          "LLM before this turn (on a reply's first turn)")


class Replay(_Model):
    """One replay of a call against a snapshot (with overrides), and what came of it."""

    id: str
    call_provider: ProviderName
    call_id: str
    snapshot_id: str
    base_snapshot_id: str | None = Field(default=None, description="the call's own snapshot")
    overrides: dict[str, Any] = Field(default_factory=dict)
    mode: ReplayMode = "scripted"
    seed: int | None = None
    batch_id: str | None = None
    run_index: int = 0
    job_id: str | None = Field(default=None, description="the background job that ran it")
    status: ReplayStatus = "completed"
    error: str | None = None
    backends: Backends = Field(default_factory=Backends)
    created_at: datetime | None = None
    wall_seconds: float | None = Field(default=None, description="how long the replay took")
    duration: float | None = Field(default=None, description="seconds of replayed call")
    turns: list[ReplayTurn] = Field(default_factory=list)
    recordings: list[Recording] = Field(default_factory=list)
    ended_reason: str | None = None
    warnings: list[str] = Field(
        default_factory=list, description="fallbacks taken, e.g. a caller turn synthesized"
    )
    checks: list[Check] = Field(
        default_factory=list, description="checks attached to the replay (voicereplay.checks)")
    divergence: ReplayDivergence | None = Field(
        default=None, description="adaptive mode: where the agent first departed from the "
                                  "baseline (None if it never did, or another mode)")
