"""Batch aggregates: counts, case lists, bootstrap intervals, verdicts, batch vs batch, CSV."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from tests.compare_samples import CALL_ID, sample_comparison
from voicereplay.compare.aggregate import (
    CallRow,
    aggregate,
    aggregate_csv,
    badness_key,
    rows_csv,
)
from voicereplay.compare.aggregate_batch import compare_batches
from voicereplay.compare.aggregate_stats import Interval, bootstrap_mean, verdict
from voicereplay.compare.model import CsatEstimate, CsatPair
from voicereplay.errors import PayloadError

POLITE, TOOL = "polite", "calls check_status"


def _row(key: str, p90: tuple[float, float], *, polite: str = "pass", tool: str = "pass",
         turn: int | None = None, reason: str | None = None,
         changes: tuple[str, ...] = (), cost: tuple[float, float] = (0.01, 0.01),
         wer: float | None = 0.05, fidelity: tuple[float | None, str] = (0.9, "high"),
         csat: tuple[float | None, float | None] = (None, None)) -> CallRow:
    return CallRow(
        call_key=key, checks=((POLITE, polite), (TOOL, tool)), divergence_turn=turn,
        divergence_reason=reason, tool_changes=changes,
        baseline={"latency_p90": p90[0], "cost": cost[0], "duration": 40.0, "csat": csat[0]},
        replay={"latency_p90": p90[1], "cost": cost[1], "duration": 40.2, "wer": wer,
                "csat": csat[1]},
        fidelity_score=fidelity[0], fidelity_level=fidelity[1])


def _batch() -> list[CallRow]:
    refund = ("issue_refund → check_status",)
    return [
        _row("c1", (1.0, 0.7), turn=4, reason="tool-call", changes=refund),       # improved 0.3
        _row("c2", (1.0, 1.5), tool="fail", turn=2, reason="text"),               # regressed 0.5
        _row("c3", (1.2, 1.22)),                                                  # unchanged
        _row("c4", (0.9, 1.0), polite="error", tool="fail", turn=4,               # regressed 0.1
             reason="tool-call", changes=refund + refund, cost=(0.01, 0.02)),
        _row("c5", (1.5, 1.4), changes=("added lookup",), fidelity=(0.5, "low")),  # improved 0.1
    ]


def test_counts_lists_and_pass_rates() -> None:
    agg = aggregate(_batch())
    assert agg.calls == 5
    assert (agg.overall.passed, agg.overall.total, agg.overall.rate) == (3, 5, 0.6)
    assert agg.check(TOOL).failing == ["c2", "c4"]
    assert agg.check(TOOL).passing == ["c1", "c3", "c5"]
    assert agg.check(POLITE).rate.rate == 0.8  # "error" is not a pass
    p90 = agg.metric("latency_p90")
    # sorted by the largest change first
    assert [(c.call_key, round(c.delta, 6)) for c in p90.improved] == [("c1", -0.3),
                                                                        ("c5", -0.1)]
    assert [(c.call_key, round(c.delta, 6)) for c in p90.regressed] == [("c2", 0.5),
                                                                         ("c4", 0.1)]
    assert [c.call_key for c in p90.unchanged] == ["c3"]
    assert p90.mean_delta == pytest.approx((-0.3 + 0.5 + 0.02 + 0.1 - 0.1) / 5)
    assert p90.baseline.median == 1.0 and p90.replay.mean == pytest.approx(5.82 / 5)
    cost = agg.metric("cost")
    assert [c.call_key for c in cost.regressed] == ["c4"] and len(cost.unchanged) == 4
    duration = agg.metric("duration")  # no better direction: changed, never improved
    assert len(duration.unchanged) == 5 and not duration.improved and not duration.changed
    wer = agg.metric("wer")
    assert wer.replay.count == 5 and wer.mean_delta is None and wer.baseline.count == 0
    assert wer.verdict.word == "no baseline" and wer.replay.mean == pytest.approx(0.05)
    assert agg.divergence_by_turn == {2: 1, 4: 2}
    assert agg.divergence_by_reason == {"tool-call": 2, "text": 1}
    # counted in calls: c4's two identical changes count once
    assert agg.tool_changes == {"issue_refund → check_status": 2, "added lookup": 1}
    assert agg.fidelity_mean == pytest.approx((0.9 * 4 + 0.5) / 5)
    assert agg.fidelity_levels == {"high": 4, "low": 1}


def test_worst_calls_order() -> None:
    agg = aggregate(_batch(), worst=4)
    # c4: two failing checks; c2: one (divergence turn 2); then no failures: c1 diverges at 4,
    # then c3/c5 without divergence, c3's latency regression (+0.02) before c5's (-0.1)
    assert [w.call_key for w in agg.worst] == ["c4", "c2", "c1", "c3"]
    assert sorted(_batch(), key=badness_key)[-1].call_key == "c5"


def test_bootstrap_matches_a_hand_computation() -> None:
    deltas = [-0.3, 0.5, 0.02, 0.1, -0.1]
    idx = np.random.default_rng(7).integers(0, 5, size=(500, 5))
    means = np.asarray(deltas)[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    ci = bootstrap_mean(deltas, seed=7, resamples=500)
    assert ci is not None and (ci.low, ci.high) == (pytest.approx(low), pytest.approx(high))
    agg = aggregate(_batch(), seed=7, resamples=500)
    agg_ci = agg.metric("latency_p90").ci
    assert agg_ci is not None
    assert (agg_ci.low, agg_ci.high) == (pytest.approx(low), pytest.approx(high))
    assert agg_ci.low <= float(np.mean(deltas)) <= agg_ci.high


def test_bootstrap_properties() -> None:
    rng = np.random.default_rng(1)
    small = list(rng.normal(0.2, 1.0, 20))
    large = list(rng.normal(0.2, 1.0, 2000))
    ci_small, ci_large = bootstrap_mean(small), bootstrap_mean(large)
    assert ci_small is not None and ci_large is not None
    assert ci_small.low <= np.mean(small) <= ci_small.high
    assert ci_large.high - ci_large.low < ci_small.high - ci_small.low
    assert bootstrap_mean(small, seed=3) == bootstrap_mean(small, seed=3)
    assert bootstrap_mean(small, seed=3) != bootstrap_mean(small, seed=4)
    assert bootstrap_mean([1.0]) is None and bootstrap_mean([]) is None
    assert bootstrap_mean([1.0, 1.0, 1.0]) == Interval(1.0, 1.0, 0.95)


@pytest.mark.parametrize(("low", "high", "better", "word"), [
    (-0.30, -0.10, "lower", "better"),
    (0.10, 0.40, "lower", "worse"),
    (-0.12, 0.03, "lower", "no worse"),
    (-0.20, 0.30, "lower", "inconclusive"),
    (0.10, 0.30, "higher", "better"),
    (-0.30, -0.10, "higher", "worse"),
    (0.10, 0.30, None, "higher"),
    (-0.03, 0.04, None, "about the same"),
    (-0.20, 0.30, None, "inconclusive"),
])
def test_verdict_rule(low: float, high: float, better: str | None, word: str) -> None:
    v = verdict("latency p90", Interval(low, high, 0.95), better=better,  # type: ignore[arg-type]
                tolerance=0.05, unit="s", count=10)
    assert v.word == word


def test_verdict_wording() -> None:
    v = verdict("latency p90", Interval(-0.12, 0.03, 0.95), better="lower", tolerance=0.05,
                unit="s", count=30)
    assert v.text == ("the candidate is no worse than production on latency p90 "
                      "(95 % CI -0.12 s … +0.03 s)")
    assert "inconclusive" in verdict("x", Interval(-0.2, 0.3, 0.95), better="lower",
                                     tolerance=0.05, unit="s", count=30).text


@pytest.mark.parametrize("count", [0, 1])
def test_too_few_calls(count: int) -> None:
    agg = aggregate(_batch()[:count])
    p90 = agg.metric("latency_p90")
    assert p90.ci is None and p90.verdict.word == "too few calls"
    assert "too few calls" in p90.verdict.text
    assert agg.overall.ci is None and agg.overall.total == count
    assert agg.overall.rate == (None if count == 0 else 1.0)
    json.loads(agg.to_json())
    assert len(list(csv.DictReader(io.StringIO(aggregate_csv(agg))))) >= 1


def test_duplicate_call_key_is_refused() -> None:
    with pytest.raises(PayloadError, match="c1"):
        aggregate([_row("c1", (1, 1)), _row("c1", (1, 2))])


def test_batch_vs_batch_lists_missing_calls() -> None:
    a = [_row("c1", (1.0, 1.0)), _row("c2", (1.0, 1.0), tool="fail"), _row("c3", (1.0, 1.0)),
         _row("only-a", (1.0, 1.0))]
    b = [_row("c1", (1.0, 0.6)), _row("c2", (1.0, 1.3)), _row("c3", (1.0, 1.01), tool="fail"),
         _row("only-b", (1.0, 1.0))]
    cmp = compare_batches(a, b)
    assert cmp.matched == ["c1", "c2", "c3"]
    assert cmp.only_in_a == ["only-a"] and cmp.only_in_b == ["only-b"]
    p90 = cmp.metric("latency_p90")
    assert [c.call_key for c in p90.improved] == ["c1"]
    assert [c.call_key for c in p90.regressed] == ["c2"]
    assert [c.call_key for c in p90.unchanged] == ["c3"]
    assert cmp.calls[0].deltas["latency_p90"] == pytest.approx(-0.4)
    assert cmp.check(TOOL).improved == ["c2"] and cmp.check(TOOL).regressed == ["c3"]
    assert cmp.check(POLITE).unchanged == ["c1", "c2", "c3"]
    assert json.loads(cmp.to_json())["only_in_b"] == ["only-b"]
    wide = compare_batches([_row(f"k{i}", (1.0, 1.0)) for i in range(10)],
                           [_row(f"k{i}", (1.0, 1.5 + i / 100)) for i in range(10)])
    assert wide.metric("latency_p90").verdict.word == "worse"
    assert wide.metric("latency_p90").verdict.text.startswith(
        "batch B is worse than batch A on latency p90 (95 % CI +0.5")


def test_csv_round_trip() -> None:
    rows = _batch()
    agg = aggregate(rows)
    summary = {(r["kind"], r["name"]): r
               for r in csv.DictReader(io.StringIO(aggregate_csv(agg)))}
    assert float(summary["overall", "all checks"]["pass_rate"]) == 0.6
    assert (summary["check", TOOL]["passed"], summary["check", TOOL]["failed"]) == ("3", "2")
    p90 = summary["metric", "latency_p90"]
    assert (p90["improved"], p90["regressed"], p90["unchanged"]) == ("2", "2", "1")
    assert float(p90["ci_low"]) == agg.metric("latency_p90").ci.low  # type: ignore[union-attr]
    assert p90["verdict"] == agg.metric("latency_p90").verdict.word
    per_call = list(csv.DictReader(io.StringIO(rows_csv(rows))))
    assert [r["call_key"] for r in per_call] == ["c1", "c2", "c3", "c4", "c5"]
    assert per_call[1]["passed"] == "False" and per_call[1]["divergence_turn"] == "2"
    assert float(per_call[0]["latency_p90_delta"]) == pytest.approx(-0.3)
    assert per_call[3]["tool_changes"] == "issue_refund → check_status; issue_refund → check_status"
    assert per_call[0]["latency_p50_baseline"] == ""


def test_json_is_the_aggregate() -> None:
    data = json.loads(aggregate(_batch()).to_json())
    assert data["overall"]["passed"] == 3
    assert data["divergence_by_turn"] == {"2": 1, "4": 2}
    assert data["metrics"][1]["key"] == "latency_p90"


def test_row_from_a_real_comparison() -> None:
    comparison = sample_comparison()
    row = CallRow.from_comparison(CALL_ID, comparison)
    assert row.call_key == CALL_ID
    assert row.checks == (("calls check_status for an order question", "pass"),
                          ("never mentions a refund unless asked", "fail"))
    assert not row.passed and row.failing_checks == 1
    assert (row.divergence_turn, row.divergence_reason) == (4, "tool-call")
    assert row.tool_changes == ("issue_refund → check_status",)
    assert row.delta("latency_p90") == pytest.approx(1.524 - 1.582)
    assert row.baseline["tokens"] == 4210 + 182 and row.replay["cost"] == 0.0
    assert row.replay["wer"] == 0.031 and row.baseline.get("wer") is None
    assert (row.fidelity_score, row.fidelity_level) == (0.79, "medium")
    assert row.delta("csat") is None  # no --csat
    comparison.csat = CsatPair(baseline=CsatEstimate(score=2, reason="a", model="m"),
                               replay=CsatEstimate(score=5, reason="b", model="m"), delta=3)
    row = CallRow.from_comparison(CALL_ID, comparison)
    assert (row.baseline["csat"], row.replay["csat"], row.delta("csat")) == (2.0, 5.0, 3.0)
    agg = aggregate([row, CallRow.from_comparison("second", comparison)])
    assert agg.tool_changes == {"issue_refund → check_status": 2}
    assert agg.check("never mentions a refund unless asked").failing == [CALL_ID, "second"]


def test_csat_estimates_aggregate_like_any_metric() -> None:
    # higher is better, tolerance 0.5: a change of one point is improved or regressed
    rows = [_row("c1", (1, 1), csat=(2, 4)), _row("c2", (1, 1), csat=(3, 4)),
            _row("c3", (1, 1), csat=(5, 3)), _row("c4", (1, 1), csat=(4, 4)),
            _row("c5", (1, 1), csat=(None, 5)),  # the baseline's estimate failed: no delta
            _row("c6", (1, 1))]  # no --csat
    csat = aggregate(rows, seed=3, resamples=500).metric("csat")
    assert (csat.label, csat.unit, csat.better, csat.tolerance) == (
        "CSAT (estimate)", "", "higher", 0.5)
    assert [(c.call_key, c.delta) for c in csat.improved] == [("c1", 2.0), ("c2", 1.0)]
    assert [(c.call_key, c.delta) for c in csat.regressed] == [("c3", -2.0)]
    assert [c.call_key for c in csat.unchanged] == ["c4"] and not csat.changed
    assert csat.baseline.count == 4 and csat.replay.count == 5
    assert csat.baseline.mean == pytest.approx(3.5) and csat.replay.median == 4.0
    assert csat.mean_delta == pytest.approx(0.25)
    deltas = np.asarray([2.0, 1.0, -2.0, 0.0])
    means = deltas[np.random.default_rng(3).integers(0, 4, size=(500, 4))].mean(axis=1)
    assert csat.ci is not None
    assert (csat.ci.low, csat.ci.high) == tuple(pytest.approx(v) for v in
                                                np.percentile(means, [2.5, 97.5]))
    assert csat.verdict.word == "inconclusive"  # the CI reaches a regression beyond 0.5
    better = aggregate([_row(f"k{i}", (1, 1), csat=(2, 4)) for i in range(5)]).metric("csat")
    assert better.verdict.text == ("the candidate is better than production on CSAT (estimate) "
                                   "(95 % CI +2.0 … +2.0)")
    per_call = {r["call_key"]: r for r in csv.DictReader(io.StringIO(rows_csv(rows)))}
    assert (per_call["c3"]["csat_baseline"], per_call["c3"]["csat_replay"],
            per_call["c3"]["csat_delta"]) == ("5", "3", "-2")
    assert per_call["c6"]["csat_delta"] == ""
    b = [_row("c1", (1, 1), csat=(2, 5)), _row("c2", (1, 1), csat=(3, 3))]
    assert [c.call_key for c in compare_batches(rows[:2], b).metric("csat").improved] == ["c1"]


def test_a_thousand_rows_aggregate() -> None:
    rng = np.random.default_rng(0)
    rows = [_row(f"call-{i}", (1.0, float(1.0 + rng.normal(0, 0.2))),
                 tool="pass" if i % 4 else "fail", turn=int(i % 7) or None,
                 reason="text" if i % 7 else None)
            for i in range(1000)]
    agg = aggregate(rows)
    assert agg.calls == 1000 and agg.overall.passed == 750
    p90 = agg.metric("latency_p90")
    assert len(p90.improved) + len(p90.regressed) + len(p90.unchanged) == 1000
