"""The shared retry policy: backoff, jitter, Retry-After, and when to give up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voicereplay.retry import RetryPolicy, parse_retry_after


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=3.0, jitter=0.0)
    assert [policy.delay(a) for a in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(10_000) == 3.0  # a huge attempt number does not overflow


def test_jitter_takes_a_random_share_off_the_backoff() -> None:
    draws = iter([0.0, 1.0, 0.5])
    policy = RetryPolicy(backoff=2.0, jitter=0.5, random=lambda: next(draws))
    assert [policy.delay(0), policy.delay(0), policy.delay(0)] == [2.0, 1.0, 1.5]


def test_retry_after_wins_over_backoff_up_to_its_cap() -> None:
    policy = RetryPolicy(backoff=1.0, max_retry_after=30.0, random=lambda: 0.9)
    assert policy.delay(3, retry_after=7.0) == 7.0
    assert policy.delay(0, retry_after=0.0) == 0.0
    assert policy.delay(0, retry_after=3600.0) == 30.0
    assert policy.delay(0, retry_after=-5.0) == 0.0


def test_gives_up_after_the_last_attempt() -> None:
    policy = RetryPolicy(attempts=3)
    assert [policy.gives_up(a) for a in range(3)] == [False, False, True]
    assert RetryPolicy(attempts=1).gives_up(0)


@pytest.mark.parametrize("bad", [{"attempts": 0}, {"backoff": -1.0}, {"jitter": 1.5}])
def test_nonsense_policies_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Fri, 02 Jan 2026 03:04:35 GMT", now=lambda: now) == 30.0
    assert parse_retry_after("Fri, 02 Jan 2026 03:00:00 GMT", now=lambda: now) == 0.0
    for junk in (None, "", "soon", "nan", "inf", "Fri, 99 Foo"):
        assert parse_retry_after(junk) is None
