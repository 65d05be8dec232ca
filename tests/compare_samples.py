"""A realistic comparison built by hand, for tests of the report files (and others that want one).

It mirrors ``fixtures/demo/``: the demo call (6 agent turns, 5 caller turns) replayed with the
fixed prompt, where agent turn 4's tool call changed from ``issue_refund`` to ``check_status``.
:func:`sample_call` and :func:`sample_replay` are the matching Call and Replay (turns with
start/end on the demo's timeline), :func:`sample_comparison` the Comparison of the two.
"""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from pathlib import Path

from voicereplay.compare.model import (
    AlignedTurn,
    CheckResult,
    Comparison,
    Divergence,
    Evidence,
    Fidelity,
    LatencyStats,
    LatencyTurn,
    MetricRow,
    ReplayInfo,
    SideMetrics,
    TokenUsage,
    ToolChange,
    TurnFlakiness,
    WerTurn,
    WordErrors,
    WordOp,
)
from voicereplay.models import (
    Call,
    Recording,
    Replay,
    ReplayTurn,
    StageTimings,
    ToolCall,
    ToolResult,
    Turn,
)

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
STEREO_WAV = DEMO / "demo-refund.stereo.wav"
MIXED_WAV = DEMO / "demo-refund.mixed.wav"

CALL_ID = "dfed92e7-b86e-5139-835c-d451a4f9d515"
REPLAY_ID = "rp_7c1e9a2f4b6d4e0a"

SYSTEM_PROMPT = "You are Sam, a friendly and efficient customer support agent for Acme Audio."

CALLER = [
    "Hi, I ordered a pair of headphones last week and I'm wondering where my order is.",
    "Sure, it's 4417.",
    "Jordan Miles.",
    "Wait, what? I didn't want a refund. I just wanted to know when my headphones will arrive.",
    "Okay. Thanks. Goodbye.",
]
BASELINE_AGENT = [
    "Thank you for calling Acme Audio, this is Sam. How can I help you today?",
    "I can help with that. Could you please give me your order number?",
    "Thanks. And can you confirm the name on the order?",
    "Thank you, Jordan. I've issued a refund of $59.99 to your original payment method.",
    "I'm so sorry about that, Jordan. I'll escalate this to our orders team right away so they "
    "can sort out the refund and your delivery.",
    "Thank you for your patience, Jordan. Goodbye.",
]
REPLAY_AGENT = [
    "Thank you for calling Acme Audio, this is Sam. How can I help you today?",
    "I can help with that. Could you give me your order number, please?",
    "Thanks. And can you confirm the name on the order?",
    "Thanks, Jordan. Your order 4417 shipped yesterday and should arrive on Friday.",
    "I'm sorry for the confusion, Jordan. You haven't been refunded; your headphones are on "
    "their way and should arrive Friday.",
    "Thank you for calling, Jordan. Goodbye.",
]
HEARD = [
    "Hi I ordered a pair of headphones last week and I'm wondering where my order is",
    "Sure it's 4417",
    "Jordan Miles",
    "Wait what I didn't want a refund I just want to know when my headphones will arrive",
    "Okay thanks goodbye",
]

REFUND = ToolCall(id="call_cnnxu4XoXnEWusaud0wJUTIo", name="issue_refund",
                  arguments={"order_id": "4417", "reason": "customer inquiry"})
STATUS = ToolCall(id="call_rp_4", name="check_status", arguments={"order_id": "4417"})


def sample_call() -> Call:
    """The demo call's turns (baseline), as the Vapi adapter reads them."""
    return Call(
        provider="vapi",
        call_id=CALL_ID,
        type="inbound",
        duration=46.429,
        ended_reason="assistant-said-end-call-phrase",
        agent_id="cd6620eb-0ac8-5919-8a43-69cd3d0daf7d",
        recordings=[Recording(kind="stereo", path=str(STEREO_WAV)),
                    Recording(kind="mixed", path=str(MIXED_WAV))],
        turns=[
            Turn(role="system", text=SYSTEM_PROMPT, start=0.0),
            Turn(role="agent", text=BASELINE_AGENT[0], start=0.904, end=4.904),
            Turn(role="user", text=CALLER[0], start=5.777, end=9.412),
            Turn(role="agent", text=BASELINE_AGENT[1], start=10.979, end=14.036),
            Turn(role="user", text=CALLER[1], start=14.682, end=16.354),
            Turn(role="agent", text=BASELINE_AGENT[2], start=17.33, end=19.864),
            Turn(role="user", text=CALLER[2], start=20.531, end=21.185),
            Turn(role="tool_call", start=21.828, tool_calls=[REFUND]),
            Turn(role="tool_result", start=22.277,
                 tool_result=ToolResult(id=REFUND.id, name="issue_refund",
                                        result='{"status":"refunded","amount":59.99}')),
            Turn(role="agent", text=BASELINE_AGENT[3], start=22.777, end=27.938),
            Turn(role="user", text=CALLER[3], start=28.292, end=32.592),
            Turn(role="agent", text=BASELINE_AGENT[4], start=33.363, end=40.138),
            Turn(role="user", text=CALLER[4], start=40.521, end=42.095),
            Turn(role="agent", text=BASELINE_AGENT[5], start=43.154, end=45.566),
        ],
    )


def _agent(text: str, start: float, end: float, origin: str, baseline_turn: int | None,
           timings: StageTimings | None = None) -> ReplayTurn:
    return ReplayTurn(role="agent", text=text, start=start, end=end, origin=origin,
                      baseline_turn=baseline_turn, timings=timings)


def _caller(index: int, start: float, end: float, baseline_turn: int) -> ReplayTurn:
    return ReplayTurn(role="user", text=CALLER[index], heard=HEARD[index], start=start, end=end,
                      origin="original-audio", baseline_turn=baseline_turn)


def sample_replay() -> Replay:
    """A scripted replay of :func:`sample_call` with the fixed prompt (turn 4 checks status)."""
    return Replay(
        id=REPLAY_ID,
        call_provider="vapi",
        call_id=CALL_ID,
        snapshot_id="snap_2b9f0c11",
        base_snapshot_id="snap_a41d7703",
        overrides={"system_prompt": (DEMO / "fixed-prompt.txt").read_text()},
        mode="scripted",
        backends={"stt": "faster-whisper", "llm": "llama-cpp", "tts": "piper"},
        wall_seconds=38.2,
        duration=47.35,
        ended_reason="assistant-said-end-call-phrase",
        turns=[
            _agent(REPLAY_AGENT[0], 0.904, 4.904, "first-message", 1),
            _caller(0, 5.777, 9.412, 2),
            _agent(REPLAY_AGENT[1], 10.702, 14.10, "llm", 3,
                   StageTimings(stt=0.41, llm_ttft=0.52, tts_ttfa=0.18, response=1.29)),
            _caller(1, 14.75, 16.422, 4),
            _agent(REPLAY_AGENT[2], 17.55, 20.08, "llm", 5,
                   StageTimings(stt=0.22, llm_ttft=0.48, tts_ttfa=0.16, response=1.128)),
            _caller(2, 20.70, 21.354, 6),
            ReplayTurn(role="tool_call", start=22.30, tool_calls=[STATUS], origin="tool",
                       baseline_turn=7),
            ReplayTurn(role="tool_result", start=22.31, origin="tool", baseline_turn=8,
                       tool_result=ToolResult(id=STATUS.id, name="check_status", source="mock",
                                              result='{"status":"shipped","eta":"Friday"}')),
            _agent(REPLAY_AGENT[3], 23.05, 27.60, "llm", 9,
                   StageTimings(stt=0.19, llm_ttft=0.61, tts_ttfa=0.17, response=1.696)),
            _caller(3, 28.10, 32.40, 10),
            _agent(REPLAY_AGENT[4], 33.90, 40.95, "llm", 11,
                   StageTimings(stt=0.44, llm_ttft=None, tts_ttfa=0.21, response=None)),
            _caller(4, 41.30, 42.874, 12),
            _agent(REPLAY_AGENT[5], 44.02, 46.60, "llm", 13,
                   StageTimings(stt=0.15, llm_ttft=0.55, tts_ttfa=0.2, response=1.146)),
        ],
    )


def word_ops(baseline: str, replay: str) -> list[WordOp]:
    """A word diff the way the comparison stores it (difflib over whitespace-split words)."""
    a, b = baseline.split(), replay.split()
    ops: list[WordOp] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        ops.append(WordOp(op=tag, baseline=" ".join(a[i1:i2]),
                          replay=" ".join(b[j1:j2])))
    return ops


def _similarity(baseline: str, replay: str) -> float:
    matcher = difflib.SequenceMatcher(a=baseline.split(), b=replay.split(), autojunk=False)
    return round(matcher.ratio(), 3)


TOOL_CHANGE = ToolChange(turn=4, kind="renamed", baseline=REFUND, replay=STATUS,
                         summary="turn 4: issue_refund → check_status")

# indices of each agent reply / caller turn: (baseline turns, replay turns)
_AGENT_INDICES = [([1], [0]), ([3], [2]), ([5], [4]), ([7, 8, 9], [6, 7, 8]), ([11], [10]),
                  ([13], [12])]
_CALLER_INDICES = [([2], [1]), ([4], [3]), ([6], [5]), ([10], [9]), ([12], [11])]


def _alignment() -> list[AlignedTurn]:
    aligned: list[AlignedTurn] = []
    for n in range(6):
        base_idx, rep_idx = _AGENT_INDICES[n]
        aligned.append(AlignedTurn(
            kind="agent", number=n + 1, status="matched",
            baseline_turns=base_idx, replay_turns=rep_idx,
            baseline_text=BASELINE_AGENT[n], replay_text=REPLAY_AGENT[n],
            baseline_tools=["issue_refund"] if n == 3 else [],
            replay_tools=["check_status"] if n == 3 else [],
            similarity=_similarity(BASELINE_AGENT[n], REPLAY_AGENT[n]),
            words=word_ops(BASELINE_AGENT[n], REPLAY_AGENT[n]),
            tool_changes=[TOOL_CHANGE] if n == 3 else [],
        ))
        if n < 5:
            base_idx, rep_idx = _CALLER_INDICES[n]
            aligned.append(AlignedTurn(
                kind="caller", number=n + 1, status="matched",
                baseline_turns=base_idx, replay_turns=rep_idx,
                baseline_text=CALLER[n], replay_text=HEARD[n],
            ))
    return aligned


def _latency() -> list[LatencyTurn]:
    return [
        LatencyTurn(turn=2, baseline=1.567, baseline_source="provider", replay=1.29,
                    stt=0.41, llm_ttft=0.52, tts_ttfa=0.18),
        LatencyTurn(turn=3, baseline=0.976, baseline_source="provider", replay=1.128,
                    stt=0.22, llm_ttft=0.48, tts_ttfa=0.16),
        LatencyTurn(turn=4, baseline=1.592, baseline_source="provider", replay=1.696,
                    stt=0.19, llm_ttft=0.61, tts_ttfa=0.17),
        # the replay's LLM stream broke before its first token was timed: no total
        LatencyTurn(turn=5, baseline=0.771, baseline_source="audio", replay=None,
                    stt=0.44, llm_ttft=None, tts_ttfa=0.21),
        LatencyTurn(turn=6, baseline=1.059, baseline_source="transcript", replay=1.146,
                    stt=0.15, llm_ttft=0.55, tts_ttfa=0.2),
    ]


def _metrics() -> tuple[SideMetrics, SideMetrics, list[MetricRow]]:
    baseline = SideMetrics(
        duration=46.429, agent_turns=6, caller_turns=5, tool_calls=1, agent_wpm=152.0,
        caller_wpm=171.0, talk_ratio=0.676, silence=11.87, interruptions=0,
        interruptions_source="audio",
        latency=LatencyStats(count=5, p50=1.059, p90=1.582, max=1.592),
        tokens=TokenUsage(prompt=4210, completion=182, model="gpt-4o-mini", cost_usd=0.0032,
                          cost_source="provider"),
    )
    replay = SideMetrics(
        duration=47.35, agent_turns=6, caller_turns=5, tool_calls=1, agent_wpm=158.0,
        caller_wpm=171.0, talk_ratio=0.661, silence=12.64, interruptions=0,
        interruptions_source="audio",
        latency=LatencyStats(count=4, p50=1.218, p90=1.524, max=1.696),
        tokens=TokenUsage(prompt=4388, completion=171, model="smollm2-1.7b", cost_usd=0.0,
                          cost_source="price-table"),
    )

    def row(key: str, label: str, unit: str, b: float | None, r: float | None,
            better: str | None) -> MetricRow:
        delta = None if b is None or r is None else round(r - b, 6)
        verdict = None
        if delta is not None and better is not None:
            if abs(delta) < 1e-9:
                verdict = "same"
            else:
                verdict = "better" if (delta < 0) == (better == "lower") else "worse"
        return MetricRow(key=key, label=label, unit=unit, baseline=b, replay=r, delta=delta,
                         better=better, verdict=verdict)

    # keys, labels and units as voicereplay.compare.metrics writes them
    rows = [
        row("duration", "duration", "s", 46.429, 47.35, None),
        row("agent_turns", "agent turns", "", 6, 6, None),
        row("tool_calls", "tool calls", "", 1, 1, None),
        row("agent_wpm", "agent words per minute", "wpm", 152.0, 158.0, None),
        row("talk_ratio", "agent talk ratio", "ratio", 0.676, 0.661, None),
        row("silence", "silence", "s", 11.87, 12.64, "lower"),
        row("interruptions", "interruptions", "", 0, 0, "lower"),
        row("latency_p50", "response latency p50", "s", 1.059, 1.218, "lower"),
        row("latency_p90", "response latency p90", "s", 1.582, 1.524, "lower"),
        row("prompt_tokens", "prompt tokens", "tokens", 4210, 4388, None),
        row("llm_cost", "LLM cost", "USD", 0.0032, 0.0, "lower"),
    ]
    return baseline, replay, rows


def _word_errors() -> WordErrors:
    turns = [
        WerTurn(turn=1, reference=CALLER[0], hypothesis=HEARD[0], wer=0.0, cer=0.0),
        WerTurn(turn=2, reference=CALLER[1], hypothesis=HEARD[1], wer=0.0, cer=0.0),
        WerTurn(turn=3, reference=CALLER[2], hypothesis=HEARD[2], wer=0.0, cer=0.0),
        WerTurn(turn=4, reference=CALLER[3], hypothesis=HEARD[3], wer=0.059, cer=0.027),
        WerTurn(turn=5, reference=CALLER[4], hypothesis=HEARD[4], wer=0.0, cer=0.0),
    ]
    return WordErrors(wer=0.031, cer=0.014, turns=turns,
                      normalizer="lower case, punctuation removed, numbers as digits")


CHECK_MESSAGE = ('mentions a refund in turn 5: "You haven\'t been refunded" '
                 "<rubric: never mention refunds & credits>")
JUDGE_REASONING = (
    "The caller only asked where their order was. The agent looked the order up with "
    "check_status and gave the delivery date, which is right.\n"
    "In turn 5, though, it said \"You haven't been refunded\": the rubric says the agent must "
    "not bring up refunds unless the caller asks for one, so this fails."
)


def _checks() -> list[CheckResult]:
    return [
        CheckResult(
            name="calls check_status for an order question", type="tool_called", status="pass",
            message="check_status was called in turn 4",
            evidence=[Evidence(turn=4, text="check_status(order_id='4417')")],
        ),
        CheckResult(
            name="never mentions a refund unless asked", type="llm_judge", status="fail",
            message=CHECK_MESSAGE,
            evidence=[Evidence(turn=5, text=REPLAY_AGENT[4])],
            reasoning=JUDGE_REASONING, judge_model="gpt-4o-mini",
        ),
    ]


def _fidelity() -> Fidelity:
    return Fidelity(
        score=0.79, level="medium",
        basis="3 runs of the call's own snapshot (no overrides)",
        replay_id="rp_0b5e33c1a9f2", agent_similarity=0.71, tool_agreement=0.67,
        turn_count_ratio=1.0, runs=3,
        flakiness=[
            TurnFlakiness(turn=4, disagreement=0.34, tool_disagreement=0.67, texts=[
                BASELINE_AGENT[3],
                "Thanks, Jordan. Let me check on that order for you.",
                "Thank you, Jordan. I've issued a refund of $59.99.",
            ]),
            TurnFlakiness(turn=5, disagreement=0.21, tool_disagreement=0.0, texts=[
                BASELINE_AGENT[4],
                "I'm so sorry, Jordan. I'll pass this on to our orders team.",
                "I apologize for the mix-up, Jordan. Let me escalate this.",
            ]),
        ],
        note="the agent itself varies at turns 4-5, so changes there are partly noise",
    )


def sample_comparison() -> Comparison:
    """The comparison of :func:`sample_call` with :func:`sample_replay`."""
    replay = sample_replay()
    baseline_metrics, replay_metrics, rows = _metrics()
    return Comparison(
        generated_at=datetime(2025, 6, 13, 9, 30, tzinfo=UTC),
        call_provider="vapi",
        call_id=CALL_ID,
        replay=ReplayInfo(
            id=replay.id, mode=replay.mode, snapshot_id=replay.snapshot_id,
            base_snapshot_id=replay.base_snapshot_id,
            overrides={"system_prompt": replay.overrides["system_prompt"],
                       "model": "smollm2-1.7b", "temperature": 0.2},
            backends=replay.backends, ended_reason=replay.ended_reason,
            warnings=["caller turn 4: STT heard 'want' for 'wanted'"],
            wall_seconds=12.5, duration=replay.duration,
        ),
        similarity_method="lexical",
        threshold=0.6,
        similarity=round(sum(_similarity(b, r) for b, r in zip(BASELINE_AGENT, REPLAY_AGENT,
                                                               strict=True)) / 6, 3),
        alignment=_alignment(),
        tool_changes=[TOOL_CHANGE],
        divergence=Divergence(
            turn=4, reason="tool-call", detail="issue_refund → check_status",
            similarity=_similarity(BASELINE_AGENT[3], REPLAY_AGENT[3]), threshold=0.6,
            baseline_text=BASELINE_AGENT[3], replay_text=REPLAY_AGENT[3],
        ),
        baseline_metrics=baseline_metrics,
        replay_metrics=replay_metrics,
        metrics=rows,
        latency=_latency(),
        word_errors=_word_errors(),
        fidelity=_fidelity(),
        checks=_checks(),
    )
