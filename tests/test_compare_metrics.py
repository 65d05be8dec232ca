"""voicereplay.compare.metrics: side metrics on hand-made turns (figures computed by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicereplay.compare.latency import baseline_latencies, latency_stats
from voicereplay.compare.metrics import interruptions, metric_rows, side_metrics, union
from voicereplay.compare.model import LatencyStats, SideMetrics, TokenUsage
from voicereplay.models import Call, ToolCall, Turn
from voicereplay.providers.files import FilesProvider, scan

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"


def words(count: int) -> str:
    return " ".join(f"w{i}" for i in range(count))


def agent(start: float | None, end: float | None, count: int = 5) -> Turn:
    return Turn(role="agent", text=words(count), start=start, end=end)


def user(start: float | None, end: float | None, count: int = 5) -> Turn:
    return Turn(role="user", text=words(count), start=start, end=end)


# agent 0–4 s (10 words), caller 5–8 s (6 words), agent 7.5–10 s (5 words), call 12 s long.
OVERLAP = [agent(0.0, 4.0, 10), user(5.0, 8.0, 6), agent(7.5, 10.0, 5)]


def test_overlapping_turns_by_hand() -> None:
    m = side_metrics(OVERLAP, 12.0)
    # replies: [agent 0–4] (the opening), then [agent 7.5–10] after the caller → 2; caller 1
    assert (m.agent_turns, m.caller_turns, m.tool_calls) == (2, 1, 0)
    # agent: 15 words over 4 + 2.5 = 6.5 s = 0.10833 min → 138.46 wpm
    assert m.agent_wpm == 138.5
    # caller: 6 words over 3 s = 0.05 min → 120 wpm
    assert m.caller_wpm == 120.0
    # talk ratio: 6.5 / (6.5 + 3) = 0.68421
    assert m.talk_ratio == 0.6842
    # union of all speech: 0–4 and 5–10 → 9 s; 12 − 9 = 3 s of silence
    assert m.silence == 3.0
    # the agent starts at 7.5 while the caller (5–8, who took the floor after the agent's
    # 0–4 ended) is still speaking: 8 − 7.5 = 0.5 s ≥ 0.3 s → one interruption
    assert m.interruptions == 1
    assert m.interruptions_source == "transcript"
    # left to other modules
    assert m.latency == LatencyStats() and m.tokens == TokenUsage()
    assert m.duration == 12.0


def test_short_overlaps_are_not_interruptions() -> None:
    # caller starts 0.2 s before the agent's 0–4 ends → backchannel/edge noise, not counted
    assert side_metrics([agent(0, 4), user(3.8, 6)], 7).interruptions == 0
    # exactly 0.3 s (4 − 3.7 is 0.29999… in floats) counts
    assert side_metrics([agent(0, 4), user(3.7, 6)], 7).interruptions == 1
    # simultaneous starts: nobody was speaking first
    assert interruptions([(0.0, 2.0)], [(0.0, 1.0)]) == 0


def test_resuming_while_talked_over_is_not_a_second_interruption() -> None:
    # agent 0–2, pause, 2.3–4; caller barges in at 1.5 until 3: the caller interrupts once
    # (overlap 2 − 1.5 = 0.5 s); the agent's 2.3 restart happens inside the caller's span, but the
    # caller took the floor (1.5) before the agent's previous span ended (2) → not counted
    assert interruptions([(0.0, 2.0), (2.3, 4.0)], [(1.5, 3.0)]) == 1
    # both ways: caller 1–3 over agent 0–2 (1 s), agent 5–7 over caller 4–6 (1 s) → 2
    assert interruptions([(0.0, 2.0), (5.0, 7.0)], [(1.0, 3.0), (4.0, 6.0)]) == 2


def test_tool_and_system_turns_and_counts() -> None:
    turns = [
        Turn(role="system", text="you are a bot", start=0.0),
        agent(1.0, 3.0, 4),
        user(4.0, 5.0, 2),
        Turn(role="tool_call", start=5.5, tool_calls=[
            ToolCall(id="a", name="lookup"), ToolCall(id="b", name="notify")]),
        Turn(role="tool_result", start=5.8),
        agent(6.0, 8.0, 6),
        user(9.0, 10.0, 3),
        user(10.5, 11.0, 1),
        agent(12.0, 13.0, 2),
    ]
    m = side_metrics(turns, 14.0)
    # replies: [1], [3, 4, 5], [8] → 3; caller turns 2, 6, 7 → 3; tool calls 2
    assert (m.agent_turns, m.caller_turns, m.tool_calls) == (3, 3, 2)
    # agent: 12 words over 2 + 2 + 1 = 5 s → 144 wpm; caller 6 words over 1 + 1 + 0.5 = 2.5 s
    # → 144 wpm
    assert (m.agent_wpm, m.caller_wpm) == (144.0, 144.0)
    # talk ratio 5 / 7.5; silence 14 − 7.5 = 6.5 (no overlaps)
    assert m.talk_ratio == 0.6667
    assert m.silence == 6.5
    assert m.interruptions == 0


def test_untimed_turns_give_no_speech_figures() -> None:
    m = side_metrics([agent(None, None), user(None, None), agent(2.0, 2.0)], 20.0)
    assert (m.agent_turns, m.caller_turns) == (2, 1)
    assert m.agent_wpm is None and m.caller_wpm is None
    assert m.talk_ratio is None and m.silence is None
    assert m.interruptions is None and m.interruptions_source is None


def test_unknown_duration_and_clipping() -> None:
    assert side_metrics(OVERLAP, None).silence is None
    # a 9 s call: the agent's 7.5–10 is clipped to 7.5–9 → speech 0–4 and 5–9 = 8 s → 1 s
    assert side_metrics(OVERLAP, 9.0).silence == 1.0
    # more speech than call never goes below 0
    assert side_metrics(OVERLAP, 0.0).silence == 0.0


def test_audio_spans_override_the_turn_times() -> None:
    speech = {"agent": [(0.1, 3.9), (8.0, 10.0)], "caller": [(5.2, 8.4)]}
    m = side_metrics(OVERLAP, 12.0, speech=speech)
    assert m.interruptions_source == "audio"
    # agent 3.8 + 2 = 5.8 s, caller 3.2 s → 5.8 / 9 = 0.64444
    assert m.talk_ratio == 0.6444
    # union 0.1–3.9 and 5.2–10 = 3.8 + 4.8 = 8.6 s → 12 − 8.6 = 3.4 s
    assert m.silence == pytest.approx(3.4)
    # agent starts at 8.0 inside the caller's 5.2–8.4: 0.4 s overlap → 1
    assert m.interruptions == 1
    # words per minute still come from the turns
    assert (m.agent_wpm, m.caller_wpm) == (138.5, 120.0)


def test_silent_audio_is_all_silence() -> None:
    m = side_metrics(OVERLAP, 12.0, speech={"agent": [], "caller": []})
    assert (m.talk_ratio, m.silence, m.interruptions, m.interruptions_source) == (
        None, 12.0, 0, "audio")


def test_union() -> None:
    assert union([(3.0, 4.0), (0.0, 1.0), (0.5, 2.0), (2.0, 2.5), (5.0, 5.0)]) == [
        (0.0, 2.5), (3.0, 4.0)]


# -- the table ---------------------------------------------------------------------------------
def test_metric_rows() -> None:
    baseline = SideMetrics(
        duration=40.0, agent_turns=6, caller_turns=5, tool_calls=1, agent_wpm=150.0,
        caller_wpm=None, talk_ratio=0.6, silence=10.0, interruptions=1,
        latency=LatencyStats(count=5, p50=1.0, p90=1.5, max=2.0),
        tokens=TokenUsage(prompt=1000, completion=100, cost_usd=0.002),
    )
    replay = SideMetrics(
        duration=38.0, agent_turns=6, caller_turns=5, tool_calls=2, agent_wpm=152.0,
        caller_wpm=140.0, talk_ratio=0.65, silence=12.0, interruptions=0,
        latency=LatencyStats(count=5, p50=0.8, p90=1.52, max=2.5),
        tokens=TokenUsage(prompt=1200, completion=100, cost_usd=0.0015),
    )
    rows = {r.key: r for r in metric_rows(baseline, replay)}
    assert list(rows) == [
        "duration", "agent_turns", "caller_turns", "tool_calls", "agent_wpm", "caller_wpm",
        "talk_ratio", "silence", "interruptions", "latency_p50", "latency_p90", "latency_max",
        "prompt_tokens", "completion_tokens", "llm_cost",
    ]

    def check(key: str, delta: float | None, better: str | None, verdict: str | None) -> None:
        row = rows[key]
        assert (row.delta, row.better, row.verdict) == (
            pytest.approx(delta) if delta is not None else None, better, verdict), key

    check("duration", -2.0, None, None)  # changed, neither better nor worse
    check("agent_turns", 0.0, None, "same")
    check("tool_calls", 1.0, None, None)
    check("agent_wpm", 2.0, None, "same")  # under the 5 wpm tolerance
    check("caller_wpm", None, None, None)  # the baseline has none
    check("talk_ratio", 0.05, None, None)
    check("silence", 2.0, "lower", "worse")
    check("interruptions", -1.0, "lower", "better")
    check("latency_p50", -0.2, "lower", "better")
    check("latency_p90", 0.02, "lower", "same")  # under 50 ms
    check("latency_max", 0.5, "lower", "worse")
    check("prompt_tokens", 200.0, None, None)
    check("completion_tokens", 0.0, None, "same")
    check("llm_cost", -0.0005, "lower", "better")
    assert rows["silence"].unit == "s" and rows["llm_cost"].unit == "USD"
    assert rows["caller_wpm"].baseline is None and rows["caller_wpm"].replay == 140.0
    assert rows["prompt_tokens"].baseline == 1000.0


def test_metric_rows_of_empty_sides() -> None:
    rows = metric_rows(SideMetrics(), SideMetrics())
    assert len(rows) == 15
    counts = {r.key: r.verdict for r in rows if r.baseline is not None}
    assert counts == {"agent_turns": "same", "caller_turns": "same", "tool_calls": "same"}


# -- the demo call ------------------------------------------------------------------------------
def demo_call() -> Call:
    [file] = scan(DEMO)
    return FilesProvider(DEMO).load(file)


def test_demo_call_metrics() -> None:
    call = demo_call()
    m = side_metrics(call.turns, call.duration)
    assert (m.agent_turns, m.caller_turns, m.tool_calls) == (6, 5, 1)
    assert m.duration == pytest.approx(46.429)
    # agent turns last 4.0 + 3.057 + 2.534 + 5.161 + 6.775 + 2.412 = 23.939 s, caller turns
    # 3.635 + 1.672 + 0.654 + 4.3 + 1.574 = 11.835 s, no overlap:
    # talk ratio 23.939 / 35.774 = 0.66918; silence 46.429 − 35.774 = 10.655
    assert m.talk_ratio == 0.6692
    assert m.silence == pytest.approx(10.655)
    assert m.interruptions == 0 and m.interruptions_source == "transcript"
    assert 150 < m.agent_wpm < 260 and 150 < m.caller_wpm < 260  # type: ignore[operator]
    m.latency = latency_stats(v for v, _ in baseline_latencies(call).values())
    assert m.latency.count == 5
    rows = metric_rows(m, m)
    assert all(r.verdict in ("same", None) and r.delta in (0.0, None) for r in rows)
