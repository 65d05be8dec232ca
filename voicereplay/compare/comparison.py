"""One function that turns a baseline call and a replay into a :class:`Comparison`.

:func:`compare` aligns the two (:mod:`~voicereplay.compare.align`), scores every agent turn's
similarity, finds the divergence turn, measures both sides (:mod:`~voicereplay.compare.metrics`,
:mod:`~voicereplay.compare.latency`, :mod:`~voicereplay.compare.wer`, tokens and cost from
:mod:`~voicereplay.compare.prices`, caller satisfaction when asked from
:mod:`~voicereplay.compare.csat`), states the fidelity (:mod:`~voicereplay.compare.fidelity`)
and evaluates the checks. It reads audio files (for speech activity) but writes nothing:
:mod:`~voicereplay.compare.files` writes the reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from voicereplay.compare.align import align
from voicereplay.compare.checks import Check, evaluate, evaluate_baseline
from voicereplay.compare.csat import CsatEstimator, csat_pair
from voicereplay.compare.divergence import find_divergence
from voicereplay.compare.fidelity import flakiness, measure
from voicereplay.compare.judge import Judge, JudgeFor
from voicereplay.compare.latency import baseline_latencies, latency_stats, replay_latencies
from voicereplay.compare.metrics import metric_rows, side_metrics
from voicereplay.compare.model import (
    AlignedTurn,
    Comparison,
    CsatEstimate,
    Fidelity,
    LatencyTurn,
    ReplayInfo,
)
from voicereplay.compare.prices import Price, baseline_usage, load_prices, replay_usage
from voicereplay.compare.similarity import Similarity, scorer
from voicereplay.compare.speech import speech_of
from voicereplay.compare.wer import word_errors
from voicereplay.models import Call, Replay

__all__ = ["compare", "has_overrides", "scored_alignment"]


def has_overrides(replay: Replay) -> bool:
    """Did the replay run a changed agent (anything but the call's own snapshot)?"""
    changed_snapshot = (replay.base_snapshot_id is not None
                        and replay.snapshot_id != replay.base_snapshot_id)
    return bool(replay.overrides) or changed_snapshot


def scored_alignment(call: Call, replay: Replay, similarity: Similarity) -> list[AlignedTurn]:
    """:func:`~voicereplay.compare.align.align` with every agent turn's similarity filled in."""
    rows = align(call.turns, replay.turns)
    matched = [r for r in rows if r.kind == "agent" and r.status == "matched"]
    scores = similarity.score_many([(r.baseline_text, r.replay_text) for r in matched])
    for row, score in zip(matched, scores, strict=True):
        row.similarity = round(score, 4)
    for row in rows:
        if row.kind == "agent" and row.status != "matched":
            row.similarity = 0.0
    return rows


def compare(
    call: Call,
    replay: Replay,
    *,
    batch: Sequence[Replay] = (),
    reference: Replay | None = None,
    checks: Sequence[Check] = (),
    judge: Judge | None = None,
    judge_for: JudgeFor | None = None,
    similarity: Similarity | None = None,
    baseline_model: str | None = None,
    replay_model: str | None = None,
    prices: Mapping[str, Price] | None = None,
    audio: bool = True,
    csat: CsatEstimator | None = None,
    baseline_csat: CsatEstimate | None = None,
) -> Comparison:
    """Compare ``replay`` with its baseline ``call``.

    ``batch``: every replay of the same ``--runs N`` batch (``replay`` included) for flakiness;
    ``reference``: a replay of the same call with no overrides, whose fidelity this comparison
    states when ``replay`` has overrides; ``baseline_model`` / ``replay_model``: the LLM names
    priced; ``judge`` / ``judge_for``: the default judge and the builder of a judge an
    ``llm_judge`` check names (see :func:`~voicereplay.compare.checks.evaluate`); ``audio``:
    measure speech activity from the recordings (else from turn times only); ``csat``: estimate
    caller satisfaction on both sides (``baseline_csat``: the baseline's, already estimated).
    """
    scoring = similarity or scorer()
    rows = scored_alignment(call, replay, scoring)
    agent_rows = [r for r in rows if r.kind == "agent"]
    mean = (sum(r.similarity or 0.0 for r in agent_rows) / len(agent_rows)
            if agent_rows else None)
    divergence = find_divergence(rows, scoring.threshold)

    warnings: list[str] = []
    base_speech = speech_of(call.recordings, call, warnings) if audio else None
    replay_speech = speech_of(replay.recordings, call, warnings) if audio else None
    base_metrics = side_metrics(call.turns, call.duration, speech=base_speech)
    replay_metrics = side_metrics(replay.turns, replay.duration, speech=replay_speech)
    latency = _latency_rows(call, replay, rows, base_speech)
    base_metrics.latency = latency_stats(t.baseline for t in latency)
    replay_metrics.latency = latency_stats(t.replay for t in latency)
    table = prices if prices is not None else load_prices()
    base_metrics.tokens = baseline_usage(call, baseline_model, table)
    replay_metrics.tokens = replay_usage(replay, replay_model, table)

    comparison = Comparison(
        generated_at=datetime.now(UTC),
        call_provider=call.provider,
        call_id=call.call_id,
        replay=ReplayInfo(
            id=replay.id, mode=replay.mode, snapshot_id=replay.snapshot_id,
            base_snapshot_id=replay.base_snapshot_id, overrides=replay.overrides,
            batch_id=replay.batch_id, run_index=replay.run_index, backends=replay.backends,
            ended_reason=replay.ended_reason, warnings=replay.warnings,
            wall_seconds=replay.wall_seconds, duration=replay.duration),
        similarity_method=scoring.name,
        threshold=scoring.threshold,
        similarity=None if mean is None else round(mean, 4),
        alignment=rows,
        tool_changes=[c for r in rows for c in r.tool_changes],
        divergence=divergence,
        baseline_metrics=base_metrics,
        replay_metrics=replay_metrics,
        metrics=metric_rows(base_metrics, replay_metrics),
        latency=latency,
        word_errors=word_errors(call, replay),
        fidelity=_fidelity(call, replay, rows, batch, reference, scoring,
                           divergence.turn if divergence else None),
        warnings=warnings,
    )
    if csat is not None:
        comparison.csat = csat_pair(csat, call, replay, baseline=baseline_csat)
    if checks:
        comparison.checks = evaluate(checks, call, replay, comparison, judge=judge,
                                     judge_for=judge_for)
        comparison.baseline_checks = evaluate_baseline(checks, call, comparison)
    return comparison


def _latency_rows(call: Call, replay: Replay, rows: Sequence[AlignedTurn],
                  base_speech: Mapping[str, list[tuple[float, float]]] | None,
                  ) -> list[LatencyTurn]:
    """Per aligned agent turn: the baseline's response latency and the replay's (with split)."""
    base = baseline_latencies(call, base_speech)
    ours = replay_latencies(replay)
    found: list[LatencyTurn] = []
    for row in rows:
        if row.kind != "agent" or row.number is None:
            continue
        before = base.get(row.number) if row.status != "inserted" else None
        after = ours.get(row.replay_number) if row.replay_number is not None else None
        if before is None and (after is None or after.replay is None):
            continue
        turn = (after.model_copy(update={"turn": row.number}) if after is not None
                else LatencyTurn(turn=row.number))
        if before is not None:
            turn.baseline, turn.baseline_source = before[0], before[1]
        found.append(turn)
    return found


def _fidelity(call: Call, replay: Replay, rows: list[AlignedTurn], batch: Sequence[Replay],
              reference: Replay | None, scoring: Similarity,
              divergence_turn: int | None) -> Fidelity:
    runs = [r for r in batch if r.batch_id == replay.batch_id] if replay.batch_id else []
    if not has_overrides(replay):
        fidelity = measure(rows, basis="this replay (no overrides)", replay_id=replay.id)
        fidelity.note = _note(fidelity, "this replay ran the call's own agent: what differs "
                                        "from the baseline is the replay pipeline's noise")
    elif reference is not None:
        fidelity = measure(scored_alignment(call, reference, scoring),
                           basis=f"replay {reference.id[:8]} of this call with no overrides",
                           replay_id=reference.id)
        fidelity.note = _note(fidelity, "with no overrides the pipeline reproduced this call "
                                        "this closely: differences well beyond that come from "
                                        "your change")
    else:  # only the replies the LLM wrote count: a fixed first message always agrees
        generated = [r for r in rows if r.kind != "agent" or r.status != "matched"
                     or any(replay.turns[i].origin == "llm" for i in r.replay_turns)]
        fidelity = measure(generated, before_turn=divergence_turn, replay_id=replay.id,
                           basis="the turns before the divergence" if divergence_turn
                           else "the whole replay (it never diverged)")
        fidelity.note = (
            "no replay of this call without overrides measured the pipeline yet; run "
            f"`voicereplay call {call.call_id}` with the same --model and no overrides to know "
            "which differences are noise")
        if fidelity.score is None:
            fidelity.note = "no LLM reply came before the divergence; " + fidelity.note
    if len(runs) > 1:
        others = [scored_alignment(call, r, scoring) if r.id != replay.id else rows
                  for r in runs]
        fidelity.runs = len(runs)
        fidelity.flakiness = flakiness(others, scoring)
    return fidelity


def _note(fidelity: Fidelity, meaning: str) -> str:
    if fidelity.score is None:
        return f"{meaning} (nothing could be scored)"
    if fidelity.level == "low":
        return (f"{meaning}; fidelity is low ({fidelity.score:.2f}), so single differences are "
                "weak evidence: use --runs N and compare how often they happen")
    return f"{meaning} ({fidelity.level}, {fidelity.score:.2f})"


def recordings_dir(replay: Replay) -> Path | None:
    """The folder of the replay's audio (reports are written beside it)."""
    for recording in replay.recordings:
        if recording.path:
            return Path(recording.path).parent
    return None
