"""voicereplay.compare.latency: provider → audio → transcript fallback, replay split, stats."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from voicereplay.compare.activity import party_speech, party_tracks
from voicereplay.compare.latency import (
    baseline_latencies,
    latency_stats,
    replay_latencies,
)
from voicereplay.compare.model import LatencyStats, LatencyTurn
from voicereplay.models import (
    Call,
    ProviderMetrics,
    Replay,
    ReplayTurn,
    StageTimings,
    ToolCall,
    Turn,
    TurnLatency,
    Word,
)
from voicereplay.providers.files import FilesProvider, scan

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"

# Reply numbers (turns.py): 1 = the opening [1], 2 = [3] answers turn 2, 3 = [5, 6, 7] answers
# turn 4, 4 = [9] answers turn 8.
TURNS = [
    Turn(role="system", text="prompt", start=0.0),
    Turn(role="agent", text="hello", start=0.5, end=3.0),                       # 1
    Turn(role="user", text="hi there", start=4.0, end=6.0),                     # 2
    Turn(role="agent", text="how can I help", start=7.0, end=9.0),              # 3
    Turn(role="user", text="my order", start=10.0, end=11.0,                    # 4
         words=[Word(word="my", start=10.0, end=10.4), Word(word="order", start=10.5, end=10.8)]),
    Turn(role="tool_call", start=11.5, tool_calls=[ToolCall(id="t", name="lookup")]),  # 5
    Turn(role="tool_result", start=11.8),                                       # 6
    Turn(role="agent", text="it ships today", start=12.0, end=14.0,             # 7
         words=[Word(word="it", start=12.2, end=12.4), Word(word="ships", start=12.5, end=13.0),
                Word(word="today", start=13.1, end=14.0)]),
    Turn(role="user", text="great thanks", start=15.0, end=16.0),               # 8
    Turn(role="agent", text="bye", start=15.8, end=18.0),                       # 9
]


def call(provider: str = "vapi", latencies: list[TurnLatency] | None = None,
         turns: list[Turn] | None = None) -> Call:
    return Call(provider=provider, call_id="c", turns=turns if turns is not None else TURNS,
                provider_metrics=ProviderMetrics(turn_latencies=latencies or []))


def test_transcript_gaps() -> None:
    found = baseline_latencies(call())
    assert found == {
        2: (1.0, "transcript"),  # agent 7.0 − caller end 6.0
        3: (1.4, "transcript"),  # first word 12.2 − last word end 10.8 (words beat turn times)
        4: (0.0, "transcript"),  # 15.8 − 16.0 = −0.2: the agent talked over → clamped to 0
    }
    assert 1 not in found  # the opening answers nobody


SPEECH = {
    "agent": [(0.5, 3.0), (7.1, 9.0), (12.3, 14.0), (15.9, 18.0)],
    "caller": [(4.1, 5.9), (10.1, 10.7), (15.0, 16.1)],
}


def test_audio_gaps() -> None:
    found = baseline_latencies(call(), SPEECH)
    assert found == {
        # agent speech starting within ±1 s of 7.0 → 7.1; caller speech around 4–6 → ends 5.9
        2: (pytest.approx(1.2), "audio"),
        # agent within ±1 s of 12.2 → 12.3; caller 10.1–10.7 → 12.3 − 10.7 = 1.6
        3: (pytest.approx(1.6), "audio"),
        # agent 15.9, caller ends 16.1 → −0.2 → 0
        4: (0.0, "audio"),
    }


def test_audio_falls_back_to_transcript_when_no_speech_is_near() -> None:
    speech = {"agent": [(7.1, 9.0), (20.0, 21.0)], "caller": [(4.1, 5.9)]}
    found = baseline_latencies(call(), speech)
    assert found[2] == (pytest.approx(1.2), "audio")
    assert found[3] == (1.4, "transcript")  # no agent start within 11.2–13.2
    assert found[4] == (0.0, "transcript")  # no agent start within 14.8–16.8
    # an agent start but no caller speech near the caller turn → transcript too
    found = baseline_latencies(call(), {"agent": SPEECH["agent"], "caller": []})
    assert {n: s for n, (_, s) in found.items()} == {2: "transcript", 3: "transcript",
                                                     4: "transcript"}


def test_provider_first_then_audio_then_transcript() -> None:
    # Vapi: turnLatencies[i] is the i-th reply that answers the caller (and speaks)
    latencies = [TurnLatency(turn=0, total=0.9), TurnLatency(turn=1, total=None)]
    found = baseline_latencies(call("vapi", latencies), SPEECH)
    assert found[2] == (0.9, "provider")
    assert found[3] == (pytest.approx(1.6), "audio")  # the provider has no total for it
    assert found[4] == (0.0, "audio")  # no provider entry at all
    assert baseline_latencies(call("vapi", latencies))[3] == (1.4, "transcript")


def test_retell_turn_is_an_index_into_the_turns() -> None:
    latencies = [TurnLatency(turn=3, total=1.1), TurnLatency(turn=7, total=1.3),
                 TurnLatency(turn=None, total=5.0)]  # more values than answering turns
    found = baseline_latencies(call("retell", latencies))
    assert found == {2: (1.1, "provider"), 3: (1.3, "provider"), 4: (0.0, "transcript")}


def test_vapi_skips_answering_replies_that_do_not_speak() -> None:
    turns = [
        Turn(role="agent", text="hello", start=0.0, end=1.0),
        Turn(role="user", text="hi", start=2.0, end=3.0),
        Turn(role="agent", text="yes", start=4.0, end=5.0),
        Turn(role="user", text="bye", start=6.0, end=7.0),
        Turn(role="tool_call", start=7.5, tool_calls=[ToolCall(id="e", name="endCall")]),
    ]
    latencies = [TurnLatency(turn=0, total=0.8), TurnLatency(turn=1, total=0.9)]
    # reply 2 gets entry 0; reply 3 never speaks, so entry 1 belongs to no reply, and reply 3
    # has no transcript figure either
    assert baseline_latencies(call("vapi", latencies, turns)) == {2: (0.8, "provider")}


def test_caller_speaks_first() -> None:
    turns = [Turn(role="user", text="hello?", start=1.0, end=1.5),
             Turn(role="agent", text="hi", start=2.5, end=4.0)]
    assert baseline_latencies(call("vapi", [TurnLatency(turn=0, total=1.0)], turns)) == {
        1: (1.0, "provider")}
    assert baseline_latencies(call("retell", [], turns)) == {1: (1.0, "transcript")}


def test_replay_latencies() -> None:
    turns = [
        ReplayTurn(role="agent", text="hello", start=0.5, end=2.0, origin="first-message",
                   timings=StageTimings(llm_ttft=0.2, tts_ttfa=0.1)),
        ReplayTurn(role="user", text="hi", start=3.0, end=4.0, origin="original-audio",
                   timings=StageTimings(stt=0.15)),
        ReplayTurn(role="tool_call", start=4.6, origin="tool"),
        ReplayTurn(role="agent", text="sure", start=5.05, end=6.0, origin="llm",
                   timings=StageTimings(stt=0.15, llm_ttft=0.4, tts_ttfa=0.2, response=1.05)),
        ReplayTurn(role="agent", text="more", start=6.2, end=7.0, origin="llm",
                   timings=StageTimings(llm_ttft=0.1, tts_ttfa=0.1)),  # same reply: ignored
        ReplayTurn(role="user", text="ok", start=8.0, end=9.0, origin="original-audio",
                   timings=StageTimings(stt=0.1)),
        ReplayTurn(role="agent", text="bye", start=9.7, end=10.5, origin="llm",
                   timings=StageTimings(llm_ttft=0.3, tts_ttfa=0.1, response=0.7)),
        ReplayTurn(role="user", text="wait", start=11.0, end=11.5, origin="original-audio"),
        ReplayTurn(role="agent", text="untimed", start=12.0, end=12.5, origin="recorded"),
    ]
    replay = Replay(id="r", call_provider="vapi", call_id="c", snapshot_id="s", turns=turns)
    assert replay_latencies(replay) == {
        2: LatencyTurn(turn=2, replay=1.05, stt=0.15, llm_ttft=0.4, tts_ttfa=0.2),
        # no STT time on the agent turn: the caller turn's own is used
        3: LatencyTurn(turn=3, replay=0.7, stt=0.1, llm_ttft=0.3, tts_ttfa=0.1),
    }


def test_latency_stats() -> None:
    # linear interpolation: p50 of 1,2,3,4 sits halfway between 2 and 3; p90 at rank
    # 0.9 × 3 = 2.7 → 3 + 0.7 × (4 − 3) = 3.7
    assert latency_stats([1, 2, 3, 4]) == LatencyStats(count=4, p50=2.5, p90=3.7, max=4.0)
    # sorted 0.5 1 1.5 2 3: p50 = 1.5; p90 rank 3.6 → 2 + 0.6 × 1 = 2.6
    assert latency_stats([0.5, 1.5, 1.0, 3.0, 2.0]) == LatencyStats(
        count=5, p50=1.5, p90=2.6, max=3.0)
    assert latency_stats([None, 2.0, None, math.nan]) == LatencyStats(
        count=1, p50=2.0, p90=2.0, max=2.0)
    assert latency_stats([]) == LatencyStats(count=0, p50=None, p90=None, max=None)
    assert latency_stats(iter([None])) == LatencyStats()


# -- the demo call ------------------------------------------------------------------------------
PROVIDER = {2: 1.567, 3: 0.976, 4: 1.592, 5: 0.771, 6: 1.059}  # performanceMetrics, ms → s


def test_demo_call_latencies() -> None:
    [file] = scan(DEMO)
    demo = FilesProvider(DEMO).load(file)
    found = baseline_latencies(demo)
    assert {n: v for n, (v, _) in found.items()} == PROVIDER
    assert {s for _, s in found.values()} == {"provider"}
    assert all(0 < v < 3 for v, _ in found.values())
    # sorted 0.771 0.976 1.059 1.567 1.592: p50 1.059; p90 rank 3.6 → 1.567 + 0.6 × 0.025
    assert latency_stats(v for v, _ in found.values()) == LatencyStats(
        count=5, p50=1.059, p90=1.582, max=1.592)

    # without the provider's figures: the fixture's transcript times are the real gaps, and the
    # recording agrees within two 20 ms frames
    bare = demo.model_copy(update={"provider_metrics": ProviderMetrics()})
    transcript = baseline_latencies(bare)
    assert {n: s for n, (_, s) in transcript.items()} == dict.fromkeys(PROVIDER, "transcript")
    for number, value in PROVIDER.items():
        assert transcript[number][0] == pytest.approx(value, abs=1e-6)
    tracks = party_tracks(file.recordings, demo)
    assert tracks is not None
    audio = baseline_latencies(bare, party_speech(tracks))
    assert {n: s for n, (_, s) in audio.items()} == dict.fromkeys(PROVIDER, "audio")
    for number, value in PROVIDER.items():
        assert audio[number][0] == pytest.approx(value, abs=0.05)
