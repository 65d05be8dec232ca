"""Response latency: end of the caller's speech → start of the agent's audio, in seconds.

Only agent replies that answer a caller turn have one (the opening, before the caller first
speaks, has none). Replies are keyed by their agent reply number
(:func:`voicereplay.turns.agent_replies`).

Baseline (:func:`baseline_latencies`), first source that has a figure, per reply:

1. ``"provider"``: the provider's own per-turn figure (``TurnLatency.total``). What
   ``TurnLatency.turn`` means differs by provider (see the parsers): for **Vapi** it is the
   0-based position in ``performanceMetrics.turnLatencies``, whose i-th entry is the i-th
   reply that answers the caller *and* speaks (an answering reply with no spoken turn, e.g. an
   ``endCall`` tool call alone, makes no entry); for **Retell** it is the index in
   ``Call.turns`` of the answering agent turn, mapped to the reply that holds it.
2. ``"audio"``: measured in the recording's speech spans (``speech["caller"]`` and
   ``speech["agent"]``, e.g. from :func:`voicereplay.audio.speech_spans`). Searched
   within :data:`WINDOW` seconds of the transcript times: the agent's start is the earliest
   agent span starting within ±WINDOW of the reply's transcript start; the caller's end is the
   latest end of the caller spans that overlap the answered caller turn's transcript span
   widened by WINDOW on both sides and start before that agent start. No such agent or caller
   span → no audio figure for that reply.
3. ``"transcript"``: the reply's first spoken turn start − the answered caller turn's end, using
   word times when the turns have them (first word start / last word end). Needs both times.

Sign convention: a negative gap (the agent started before the caller stopped: talking over
them) is **clamped to 0**; the overlap itself is counted as an interruption by
:mod:`voicereplay.compare.metrics`. Provider figures are clamped the same way.

Replay (:func:`replay_latencies`): ``StageTimings.response`` of the reply's first spoken agent
turn (what the caller heard on the replay's virtual clock), with its STT / LLM time-to-first-
token / TTS time-to-first-audio split. Keyed by the *replay's* own reply numbers.

:func:`latency_stats`: p50/p90 by linear interpolation between closest ranks (numpy's default
percentile method), max and count of the given values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np

from voicereplay.compare.model import LatencyStats, LatencyTurn
from voicereplay.models import Call, Replay, Turn
from voicereplay.turns import AgentReply, agent_replies

__all__ = [
    "WINDOW",
    "LatencySource",
    "baseline_latencies",
    "latency_stats",
    "replay_latencies",
]

LatencySource = Literal["provider", "audio", "transcript"]
WINDOW = 1.0  # seconds around transcript times where the audio's speech edges are looked for

Span = tuple[float, float]


def baseline_latencies(call: Call, speech: Mapping[str, list[Span]] | None = None
                       ) -> dict[int, tuple[float, LatencySource]]:
    """Reply number → (seconds, source) for each baseline reply that answers the caller."""
    answering = [r for r in agent_replies(call.turns) if r.after_caller is not None]
    provider = _provider_latencies(call, answering)
    found: dict[int, tuple[float, LatencySource]] = {}
    for reply in answering:
        if reply.number in provider:
            found[reply.number] = (_clamp(provider[reply.number]), "provider")
            continue
        if speech is not None:
            measured = _audio_gap(call.turns, reply, speech)
            if measured is not None:
                found[reply.number] = (_clamp(measured), "audio")
                continue
        gap = _transcript_gap(call.turns, reply)
        if gap is not None:
            found[reply.number] = (_clamp(gap), "transcript")
    return found


def replay_latencies(replay: Replay) -> dict[int, LatencyTurn]:
    """Replay reply number → its latency and stage split (replies answering the caller)."""
    found: dict[int, LatencyTurn] = {}
    for reply in agent_replies(replay.turns):
        if reply.after_caller is None or not reply.spoken:
            continue
        timings = replay.turns[reply.spoken[0]].timings
        if timings is None:
            continue
        stt = timings.stt
        if stt is None:  # the STT time is also kept on the caller turn itself
            heard = replay.turns[reply.after_caller].timings
            stt = heard.stt if heard is not None else None
        found[reply.number] = LatencyTurn(
            turn=reply.number, replay=timings.response, stt=stt,
            llm_ttft=timings.llm_ttft, tts_ttfa=timings.tts_ttfa,
        )
    return found


def latency_stats(values: Iterable[float | None]) -> LatencyStats:
    """Count, p50, p90 (linear interpolation) and max of the values; None/NaN are ignored."""
    kept = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not kept:
        return LatencyStats()
    data = np.asarray(kept, dtype=np.float64)
    return LatencyStats(
        count=len(kept),
        p50=round(float(np.percentile(data, 50)), 6),
        p90=round(float(np.percentile(data, 90)), 6),
        max=round(float(data.max()), 6),
    )


def _clamp(seconds: float) -> float:
    return round(max(0.0, seconds), 6)


def _provider_latencies(call: Call, answering: list[AgentReply]) -> dict[int, float]:
    """Reply number → the provider's ``total`` (see the module docstring for the mapping)."""
    found: dict[int, float] = {}
    if call.provider == "retell":
        by_index = {i: r.number for r in answering for i in r.indices}
        for latency in call.provider_metrics.turn_latencies:
            if latency.turn is not None and latency.total is not None \
                    and latency.turn in by_index:
                found.setdefault(by_index[latency.turn], latency.total)
    else:
        speaking = [r for r in answering if r.spoken]
        for position, latency in enumerate(call.provider_metrics.turn_latencies):
            index = latency.turn if latency.turn is not None else position
            if latency.total is not None and 0 <= index < len(speaking):
                found.setdefault(speaking[index].number, latency.total)
    return found


def _caller_end(turn: Turn) -> float | None:
    return turn.words[-1].end if turn.words else turn.end


def _agent_start(turns: Sequence[Turn], reply: AgentReply) -> float | None:
    for index in reply.spoken:
        turn = turns[index]
        start = turn.words[0].start if turn.words else turn.start
        if start is not None:
            return start
    return None


def _transcript_gap(turns: Sequence[Turn], reply: AgentReply) -> float | None:
    assert reply.after_caller is not None
    end, start = _caller_end(turns[reply.after_caller]), _agent_start(turns, reply)
    return None if end is None or start is None else start - end


def _audio_gap(turns: Sequence[Turn], reply: AgentReply,
               speech: Mapping[str, list[Span]]) -> float | None:
    """The caller-end → agent-start gap in the speech spans (see the module docstring)."""
    assert reply.after_caller is not None
    caller = turns[reply.after_caller]
    expected = _agent_start(turns, reply)
    said_end = _caller_end(caller)
    said_start = caller.words[0].start if caller.words else caller.start
    if expected is None or said_end is None:
        return None
    if said_start is None:
        said_start = said_end
    starts = [s for s, _ in speech.get("agent", []) if abs(s - expected) <= WINDOW]
    if not starts:
        return None
    agent_start = min(starts)
    ends = [e for s, e in speech.get("caller", [])
            if s < agent_start and s <= said_end + WINDOW and e >= said_start - WINDOW]
    if not ends:
        return None
    return agent_start - max(ends)
