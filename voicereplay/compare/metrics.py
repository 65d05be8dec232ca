"""Conversation metrics of one side (baseline call or replay) and the table comparing two sides.

Units and definitions (times are seconds; a "span" is ``(start, end)`` in seconds from the call
start):

* ``agent_turns`` / ``caller_turns``: agent replies and caller turns as
  :mod:`voicereplay.turns` numbers them; ``tool_calls``: every tool call of every turn.
* ``agent_wpm`` / ``caller_wpm``: words of that party's timed turns (whitespace-separated words
  of ``Turn.text``, for turns with ``start < end``) ÷ that party's spoken minutes (the union of
  those turns' spans). None when the party has no timed speech. Rounded to 0.1.
* Speech spans per party come from the audio when ``speech`` is given (voice activity spans,
  :func:`voicereplay.audio.speech_spans`, keys ``"agent"`` and ``"caller"``), else from
  the turns (agent turns for the agent, user turns for the caller; tool turns do not speak).
  Each party's spans are merged (union) first.
* ``talk_ratio`` = agent speech seconds ÷ (agent + caller speech seconds), 0–1; None when
  nobody spoke. Rounded to 0.0001.
* ``silence`` = ``duration`` − seconds covered by any party's speech (spans clipped to
  ``[0, duration]``), never below 0; None when the duration is unknown or there is nothing to
  measure speech by (no audio spans given and no timed turn). Rounded to 0.001 s.
* ``interruptions``: how many times a party started speaking while the other party's span was
  ongoing (strictly after that span started) and the two overlapped for at least
  :data:`MIN_OVERLAP` seconds; shorter overlaps (backchannel "mm-hm", edge noise) are ignored.
  Each start counts once. Simultaneous starts are not interruptions, and neither is resuming
  after a pause while being talked over: the other party's span must have started after this
  party's previous span ended (it held the floor). None (source None) when the transcript has no
  timed speech and no audio spans were given.

``latency`` and ``tokens`` are left at their defaults here; other modules fill them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from voicereplay.compare.model import MetricRow, MetricUnit, SideMetrics
from voicereplay.models import Turn
from voicereplay.turns import agent_replies, caller_turns

__all__ = ["MIN_OVERLAP", "interruptions", "metric_rows", "side_metrics", "union"]

MIN_OVERLAP = 0.3  # seconds of overlap before a start over the other party is an interruption
_EPS = 1e-9

Span = tuple[float, float]


def side_metrics(turns: Sequence[Turn], duration: float | None, *,
                 speech: Mapping[str, list[Span]] | None = None) -> SideMetrics:
    """Metrics of one side's turns (see the module docstring for every definition)."""
    words = {"agent": 0, "user": 0}
    timed: dict[str, list[Span]] = {"agent": [], "user": []}
    for turn in turns:
        if turn.role in timed and turn.start is not None and turn.end is not None \
                and turn.end > turn.start:
            timed[turn.role].append((turn.start, turn.end))
            words[turn.role] += len(turn.text.split())
    if speech is not None:
        agent, caller = union(speech.get("agent", [])), union(speech.get("caller", []))
        source: Literal["audio", "transcript"] | None = "audio"
    else:
        agent, caller = union(timed["agent"]), union(timed["user"])
        source = "transcript" if agent or caller else None
    agent_seconds, caller_seconds = _length(agent), _length(caller)
    talking = agent_seconds + caller_seconds
    silence = None
    if duration is not None and source is not None:
        covered = _length(union(_clip(agent + caller, duration)))
        silence = round(max(0.0, duration - covered), 3)
    return SideMetrics(
        duration=duration,
        agent_turns=len(agent_replies(turns)),
        caller_turns=len(caller_turns(turns)),
        tool_calls=sum(len(t.tool_calls) for t in turns),
        agent_wpm=_wpm(words["agent"], timed["agent"]),
        caller_wpm=_wpm(words["user"], timed["user"]),
        talk_ratio=round(agent_seconds / talking, 4) if talking > 0 else None,
        silence=silence,
        interruptions=interruptions(agent, caller) if source else None,
        interruptions_source=source,
    )


def union(spans: Sequence[Span]) -> list[Span]:
    """Spans merged where they overlap or touch, sorted; empty/inverted spans dropped."""
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def interruptions(agent: Sequence[Span], caller: Sequence[Span],
                  min_overlap: float = MIN_OVERLAP) -> int:
    """Starts of either party inside the other's ongoing span, overlapping ≥ ``min_overlap``."""
    agent, caller = union(agent), union(caller)
    count = 0
    for mine, theirs in ((agent, caller), (caller, agent)):
        previous_end = float("-inf")  # end of this party's previous span
        for start, end in mine:
            count += any(
                previous_end <= other_start < start < other_end
                and min(end, other_end) - start >= min_overlap - _EPS
                for other_start, other_end in theirs
            )
            previous_end = end
    return count


def _length(spans: Sequence[Span]) -> float:
    return sum(end - start for start, end in spans)


def _clip(spans: Sequence[Span], duration: float) -> list[Span]:
    return [(max(0.0, s), min(duration, e)) for s, e in spans]


def _wpm(words: int, spans: list[Span]) -> float | None:
    minutes = _length(union(spans)) / 60
    return round(words / minutes, 1) if minutes > 0 else None


# -- the comparison table ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Metric:
    key: str
    label: str
    unit: MetricUnit
    value: Callable[[SideMetrics], float | int | None]
    better: Literal["lower", "higher"] | None
    tolerance: float  # |delta| below this is "same"


_S, _N, _WPM, _TOK = MetricUnit.SECONDS, MetricUnit.COUNT, MetricUnit.WORDS_PER_MINUTE, \
    MetricUnit.TOKENS
_METRICS: tuple[_Metric, ...] = (
    _Metric("duration", "duration", _S, lambda m: m.duration, None, 0.5),
    _Metric("agent_turns", "agent turns", _N, lambda m: m.agent_turns, None, 0.5),
    _Metric("caller_turns", "caller turns", _N, lambda m: m.caller_turns, None, 0.5),
    _Metric("tool_calls", "tool calls", _N, lambda m: m.tool_calls, None, 0.5),
    _Metric("agent_wpm", "agent words per minute", _WPM, lambda m: m.agent_wpm, None, 5.0),
    _Metric("caller_wpm", "caller words per minute", _WPM, lambda m: m.caller_wpm, None, 5.0),
    _Metric("talk_ratio", "agent talk ratio", MetricUnit.RATIO, lambda m: m.talk_ratio, None,
            0.02),
    _Metric("silence", "silence", _S, lambda m: m.silence, "lower", 0.5),
    _Metric("interruptions", "interruptions", _N, lambda m: m.interruptions, "lower", 0.5),
    _Metric("latency_p50", "response latency p50", _S, lambda m: m.latency.p50, "lower", 0.05),
    _Metric("latency_p90", "response latency p90", _S, lambda m: m.latency.p90, "lower", 0.05),
    _Metric("latency_max", "response latency max", _S, lambda m: m.latency.max, "lower", 0.05),
    _Metric("prompt_tokens", "prompt tokens", _TOK, lambda m: m.tokens.prompt, None, 0.5),
    _Metric("completion_tokens", "completion tokens", _TOK, lambda m: m.tokens.completion,
            None, 0.5),
    _Metric("llm_cost", "LLM cost", MetricUnit.USD, lambda m: m.tokens.cost_usd, "lower",
            0.0001),
)


def metric_rows(baseline: SideMetrics, replay: SideMetrics) -> list[MetricRow]:
    """One row per metric, in a fixed order; delta = replay − baseline.

    ``verdict``: None when either side lacks the figure; "same" when |delta| is below the
    metric's tolerance (0.5 for counts, 0.5 s for duration/silence, 0.05 s for latency, 5 wpm,
    0.02 of talk ratio, $0.0001); else "better"/"worse" for metrics with a better direction
    (latency, silence, interruptions, cost: lower) and None for the rest (a change, neither
    better nor worse).
    """
    rows: list[MetricRow] = []
    for metric in _METRICS:
        old, new = metric.value(baseline), metric.value(replay)
        delta = None if old is None or new is None else round(float(new) - float(old), 6)
        verdict: Literal["better", "worse", "same"] | None = None
        if delta is not None:
            if abs(delta) < metric.tolerance:
                verdict = "same"
            elif metric.better is not None:
                improved = delta < 0 if metric.better == "lower" else delta > 0
                verdict = "better" if improved else "worse"
        rows.append(MetricRow(
            key=metric.key, label=metric.label, unit=metric.unit,
            baseline=None if old is None else float(old),
            replay=None if new is None else float(new),
            delta=delta, better=metric.better, verdict=verdict,
        ))
    return rows
