"""The comparison of a baseline call and one replay of it, as plain pydantic models.

A :class:`Comparison` is what every report is made from: the terminal view, ``report.json``
(this model, dumped; its JSON Schema is ``report.schema.json`` beside this module and
:data:`SCHEMA_VERSION` names its version), ``report.md``, the JUnit XML and the pictures.
Functions in :mod:`voicereplay.compare` build it from the models in :mod:`voicereplay.models`.

Numbering: **agent turn N** is the N-th agent reply of the baseline call, counting the opening
as turn 1; a reply is every agent, tool-call and tool-result turn between two caller turns.
**Caller turn N** is the N-th thing the caller said. Indices into ``Call.turns`` /
``Replay.turns`` are 0-based and named ``*_turns``. Times are seconds.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voicereplay.models import Backends, ToolCall

__all__ = [
    "SCHEMA_VERSION",
    "MetricUnit",
    "AlignedTurn",
    "CheckResult",
    "Comparison",
    "CsatEstimate",
    "CsatPair",
    "Divergence",
    "Evidence",
    "Fidelity",
    "LatencyStats",
    "LatencyTurn",
    "MetricRow",
    "ReplayInfo",
    "SideMetrics",
    "TokenUsage",
    "ToolChange",
    "TurnFlakiness",
    "WerTurn",
    "WordOp",
    "WordErrors",
]

SCHEMA_VERSION = "1.2"  # 1.1: MetricRow.unit is a MetricUnit (talk ratio: "ratio"); 1.2: csat


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WordOp(_Model):
    """One step of a word-level diff (``equal`` words appear on both sides)."""

    op: Literal["equal", "insert", "delete", "replace"]
    baseline: str = Field(default="", description="the baseline's words in this step")
    replay: str = Field(default="", description="the replay's words in this step")


class ToolChange(_Model):
    """A tool call added, dropped, or called differently in one agent turn."""

    turn: int | None = Field(description="agent turn (baseline numbering; the replay's when "
                                          "the whole turn was added)")
    kind: Literal["added", "dropped", "renamed", "arguments"]
    baseline: ToolCall | None = None
    replay: ToolCall | None = None
    arguments: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="kind 'arguments': name → {baseline, replay} for each argument that differs")
    summary: str = Field(description="e.g. 'turn 4: issue_refund → check_status'")


class AlignedTurn(_Model):
    """A baseline turn and the replay turn aligned with it (either may be missing)."""

    kind: Literal["caller", "agent"]
    number: int | None = Field(description="agent or caller turn number (see module docs): "
                                           "the baseline's, or the replay's when inserted")
    replay_number: int | None = Field(default=None,
                                      description="the same turn's number in the replay")
    status: Literal["matched", "dropped", "inserted"] = Field(
        description="dropped: only the baseline has it; inserted: only the replay has it")
    baseline_turns: list[int] = Field(default_factory=list, description="indices in Call.turns")
    replay_turns: list[int] = Field(default_factory=list, description="indices in Replay.turns")
    baseline_text: str = ""
    replay_text: str = ""
    baseline_tools: list[str] = Field(default_factory=list)
    replay_tools: list[str] = Field(default_factory=list)
    similarity: float | None = Field(default=None, description="agent turns: reply similarity")
    words: list[WordOp] = Field(default_factory=list, description="agent turns: the word diff")
    tool_changes: list[ToolChange] = Field(default_factory=list)


class Divergence(_Model):
    """The first agent turn whose meaning departs from the baseline."""

    turn: int = Field(description="agent turn number")
    reason: Literal["tool-call", "intent", "text", "missing", "extra"] = Field(
        description="a different tool call, a different intent (e.g. a question against a "
                    "statement), similarity under the threshold, no reply (missing), or a reply "
                    "the baseline does not have (extra)")
    detail: str = Field(description="one line a person reads, e.g. 'issue_refund → check_status'")
    similarity: float | None = None
    threshold: float
    baseline_text: str = ""
    replay_text: str = ""
    baseline_intent: str | None = None
    replay_intent: str | None = None


class LatencyStats(_Model):
    count: int = 0
    p50: float | None = None
    p90: float | None = None
    max: float | None = None


class LatencyTurn(_Model):
    """Response latency of one agent turn: end of caller speech → start of agent audio."""

    turn: int = Field(description="agent turn number")
    baseline: float | None = None
    baseline_source: Literal["provider", "audio", "transcript"] | None = Field(
        default=None, description="the provider's own per-turn figure, the gap measured in the "
                                  "recording, or the gap between transcript timestamps")
    replay: float | None = None
    stt: float | None = Field(default=None, description="replay: STT seconds of the caller turn")
    llm_ttft: float | None = Field(default=None, description="replay: LLM time to first token")
    tts_ttfa: float | None = Field(default=None, description="replay: TTS time to first audio")


class TokenUsage(_Model):
    prompt: int | None = None
    completion: int | None = None
    model: str | None = None
    cost_usd: float | None = Field(default=None, description="estimated LLM cost")
    cost_source: Literal["provider", "price-table", "unknown"] = "unknown"


class SideMetrics(_Model):
    """Metrics of one side (the baseline call or the replay)."""

    duration: float | None = None
    agent_turns: int = 0
    caller_turns: int = 0
    tool_calls: int = 0
    agent_wpm: float | None = Field(default=None, description="agent words per minute spoken")
    caller_wpm: float | None = None
    talk_ratio: float | None = Field(default=None,
                                     description="agent speech / (agent + caller speech)")
    silence: float | None = Field(default=None, description="seconds when nobody spoke")
    interruptions: int | None = Field(
        default=None, description="times one party started speaking over the other")
    interruptions_source: Literal["audio", "transcript"] | None = None
    latency: LatencyStats = Field(default_factory=LatencyStats)
    tokens: TokenUsage = Field(default_factory=TokenUsage)


class MetricUnit(StrEnum):
    """What a metric's numbers measure; every renderer formats a value by its unit."""

    COUNT = ""  # turns, tool calls, interruptions
    SECONDS = "s"
    WORDS_PER_MINUTE = "wpm"
    RATIO = "ratio"  # a share from 0 to 1, shown as a percentage
    TOKENS = "tokens"
    USD = "USD"


class MetricRow(_Model):
    """One line of the metrics table: baseline, replay, delta, and whether that is better."""

    key: str
    label: str
    unit: MetricUnit = MetricUnit.COUNT
    baseline: float | None = None
    replay: float | None = None
    delta: float | None = None
    better: Literal["lower", "higher"] | None = Field(
        default=None, description="which direction is better (None: neither)")
    verdict: Literal["better", "worse", "same"] | None = None


class WerTurn(_Model):
    turn: int = Field(description="caller turn number")
    reference: str = Field(description="the provider's transcript of the caller turn")
    hypothesis: str = Field(description="what the replay's STT heard")
    wer: float
    cer: float


class WordErrors(_Model):
    """The replay's STT of the caller's turns against the provider's transcript."""

    wer: float
    cer: float
    turns: list[WerTurn] = Field(default_factory=list)
    normalizer: str = Field(description="what was normalized before scoring")


class TurnFlakiness(_Model):
    turn: int = Field(description="agent turn number")
    disagreement: float = Field(description="1 - mean pairwise similarity of the N replies")
    tool_disagreement: float = Field(
        description="share of run pairs whose tool calls differ in this turn")
    texts: list[str] = Field(default_factory=list)


class Fidelity(_Model):
    """How closely a replay with no overrides reproduces the baseline (1.0: exactly)."""

    score: float | None = Field(default=None, description="mean of the three parts below")
    level: Literal["high", "medium", "low", "unknown"] = "unknown"
    basis: str = Field(description="what was measured, e.g. 'this replay (no overrides)'")
    replay_id: str | None = Field(default=None, description="the replay measured")
    agent_similarity: float | None = None
    tool_agreement: float | None = None
    turn_count_ratio: float | None = None
    runs: int = 1
    flakiness: list[TurnFlakiness] = Field(default_factory=list)
    note: str = Field(default="", description="what the figure means for this comparison")


class Evidence(_Model):
    turn: int | None = Field(default=None, description="agent turn number that decided it")
    text: str = ""


class CheckResult(_Model):
    name: str = Field(description="the check as a person reads it")
    type: str
    status: Literal["pass", "fail", "error"]
    message: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    reasoning: str | None = Field(default=None, description="llm_judge: the judge's reasoning")
    judge_model: str | None = None


class CsatEstimate(_Model):
    """A judge model's estimate of how satisfied the caller was
    (:mod:`voicereplay.compare.csat`)."""

    score: int | None = Field(default=None, ge=1, le=5,
                              description="1 (very unhappy) … 5 (very happy); None: see error")
    reason: str = Field(default="", description="one line: why that score")
    model: str = Field(description="the judge model that estimated it")
    error: str | None = Field(default=None, description="why there is no score (a malformed "
                                                        "answer, a backend failure)")
    cached: bool = Field(default=False, description="reused from an earlier identical question")


class CsatPair(_Model):
    """Caller satisfaction estimated for the baseline call and for the replay."""

    baseline: CsatEstimate
    replay: CsatEstimate
    delta: int | None = Field(default=None, description="replay score − baseline score")


class ReplayInfo(_Model):
    id: str
    mode: str
    snapshot_id: str
    base_snapshot_id: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    batch_id: str | None = None
    run_index: int = 0
    backends: Backends = Field(default_factory=Backends)
    ended_reason: str | None = None
    warnings: list[str] = Field(default_factory=list)
    wall_seconds: float | None = Field(default=None, description="how long the replay took")
    duration: float | None = Field(default=None, description="seconds of replayed call")


class Comparison(_Model):
    schema_version: str = SCHEMA_VERSION
    generated_at: datetime
    call_provider: str
    call_id: str
    replay: ReplayInfo
    similarity_method: str = Field(description="lexical or embedding")
    threshold: float = Field(description="similarity under this is a departure")
    similarity: float | None = Field(
        default=None, description="mean agent-turn similarity to the baseline (dropped and "
                                  "inserted turns count 0)")
    alignment: list[AlignedTurn] = Field(default_factory=list)
    tool_changes: list[ToolChange] = Field(default_factory=list)
    divergence: Divergence | None = None
    baseline_metrics: SideMetrics = Field(default_factory=SideMetrics)
    replay_metrics: SideMetrics = Field(default_factory=SideMetrics)
    metrics: list[MetricRow] = Field(default_factory=list)
    latency: list[LatencyTurn] = Field(default_factory=list)
    word_errors: WordErrors | None = None
    fidelity: Fidelity
    checks: list[CheckResult] = Field(default_factory=list)
    baseline_checks: list[CheckResult] = Field(
        default_factory=list, description="the checks that read one side only, judged on the "
                                          "baseline call: what production did")
    csat: CsatPair | None = Field(
        default=None, description="caller satisfaction estimate (opt-in: --csat)")
    warnings: list[str] = Field(
        default_factory=list, description="what the comparison had to do without, e.g. "
                                          "unreadable audio (measured from the turns instead)")
    files: dict[str, str] = Field(default_factory=dict,
                                  description="report files written: name → path")

    @property
    def passed(self) -> bool:
        return all(c.status == "pass" for c in self.checks)
