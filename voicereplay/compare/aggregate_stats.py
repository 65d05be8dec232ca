"""Small-sample statistics for batch aggregates: percentile bootstrap and plain-words verdicts.

The bootstrap resamples **calls** with replacement. For a sample of ``n`` values the resample
indices are ``numpy.random.default_rng(seed).integers(0, n, size=(resamples, n))`` — the same
matrix for every statistic of the same size, so results are deterministic for a seed, and a
reader can recompute any interval with those three lines of numpy. The interval is the
``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the resampled means
(numpy's default linear interpolation).

Verdict rule for a mean delta (replay − baseline) with interval ``[lo, hi]`` and the metric's
tolerance ``tol``, when lower is better (signs flip when higher is better):

- fewer than 2 values: **too few calls**;
- ``hi < -tol``: **better** (the whole interval is an improvement beyond the tolerance);
- ``lo > +tol``: **worse** (the whole interval is a regression beyond the tolerance);
- ``hi <= +tol``: **no worse** (a regression larger than the tolerance is ruled out);
- otherwise: **inconclusive** (the interval reaches a regression beyond the tolerance).

A metric measured on the replay only (WER: the replay's STT against the provider's
transcript) has **no baseline** in one batch; batch against batch it has a delta like any other.

For a metric with no better direction (duration, turns, tokens): ``lo > tol`` **higher**,
``hi < -tol`` **lower**, both within ``±tol`` **about the same**, otherwise **inconclusive**.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

__all__ = ["Bootstrap", "Interval", "Verdict", "bootstrap_mean", "verdict", "format_value"]

VerdictWord = Literal["better", "worse", "no worse", "inconclusive", "too few calls",
                      "higher", "lower", "about the same", "no baseline"]


@dataclass(frozen=True)
class Interval:
    """A percentile-bootstrap confidence interval of a mean."""

    low: float
    high: float
    confidence: float


@dataclass(frozen=True)
class Verdict:
    word: VerdictWord
    text: str = ""


@lru_cache(maxsize=4)  # one batch's statistics mostly share n: draw the matrix once
def _indices(n: int, seed: int, resamples: int) -> np.ndarray:
    matrix = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    matrix.setflags(write=False)
    return matrix


def bootstrap_mean(values: Sequence[float], *, seed: int = 0, resamples: int = 2000,
                   confidence: float = 0.95) -> Interval | None:
    """The percentile-bootstrap interval of the mean of ``values``; None under 2 values."""
    if len(values) < 2:
        return None
    data = np.asarray(values, dtype=float)
    means = data[_indices(len(data), seed, resamples)].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [100.0 * tail, 100.0 * (1.0 - tail)])
    return Interval(low=float(low), high=float(high), confidence=confidence)


@dataclass(frozen=True)
class Bootstrap:
    """The bootstrap's settings, applied to each sample in turn."""

    seed: int = 0
    resamples: int = 2000
    confidence: float = 0.95

    def mean_ci(self, values: Sequence[float]) -> Interval | None:
        return bootstrap_mean(values, seed=self.seed, resamples=self.resamples,
                              confidence=self.confidence)


def format_value(value: float, unit: str) -> str:
    """A delta or value as a person reads it: seconds with 2 decimals, USD with 4, etc."""
    if unit == "s":
        return f"{value:+.2f} s"
    if unit == "USD":
        return f"{value:+.4f} USD"
    if unit == "ratio":
        return f"{value * 100:+.1f} %"
    if unit in ("", "tokens"):
        return f"{value:+.1f}" + (f" {unit}" if unit else "")
    return f"{value:+.3f} {unit}".rstrip()


def verdict(label: str, interval: Interval | None, *, better: Literal["lower", "higher"] | None,
            tolerance: float, unit: str, count: int, candidate: str = "the candidate",
            reference: str = "production") -> Verdict:
    """The plain-words verdict on a metric's mean delta (rule in the module docstring).

    ``candidate`` and ``reference`` name the two sides (replay and baseline, or batch B and A).
    """
    if interval is None or count < 2:
        return Verdict("too few calls",
                       f"too few calls to judge {label} ({count} with a value on both sides)")
    lo, hi = interval.low, interval.high
    ci = (f"({interval.confidence * 100:g} % CI {format_value(lo, unit)} … "
          f"{format_value(hi, unit)})")
    if better is None:
        if lo > tolerance:
            word: VerdictWord = "higher"
        elif hi < -tolerance:
            word = "lower"
        elif lo >= -tolerance and hi <= tolerance:
            word = "about the same"
        else:
            word = "inconclusive"
        text = {"higher": f"{label} is higher for {candidate} {ci}",
                "lower": f"{label} is lower for {candidate} {ci}",
                "about the same": f"{label} is about the same for {candidate} {ci}",
                "inconclusive": f"inconclusive on {label} {ci}"}[word]
        return Verdict(word, text)
    sign = 1.0 if better == "lower" else -1.0
    worse_low, worse_high = sorted((sign * lo, sign * hi))  # positive: worse
    if worse_high < -tolerance:
        word = "better"
    elif worse_low > tolerance:
        word = "worse"
    elif worse_high <= tolerance:
        word = "no worse"
    else:
        word = "inconclusive"
    text = {"better": f"{candidate} is better than {reference} on {label} {ci}",
            "worse": f"{candidate} is worse than {reference} on {label} {ci}",
            "no worse": f"{candidate} is no worse than {reference} on {label} {ci}",
            "inconclusive": f"inconclusive on {label}: the CI reaches a regression beyond "
                            f"the tolerance {ci}"}[word]
    return Verdict(word, text)
