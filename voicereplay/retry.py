"""The one retry policy: how long to wait before the next try of a failed request.

Shared by the provider HTTP client (:mod:`voicereplay.providers.http`) and the STT/LLM/TTS
stages (:mod:`voicereplay.simulate.stages`), so every retried call backs off the same way:

    policy = RetryPolicy(attempts=5)
    for attempt in range(policy.attempts):
        ...                                      # try; on a retryable failure:
        if policy.gives_up(attempt): raise ...
        policy.sleep(policy.delay(attempt, parse_retry_after(header)))

The delay doubles from ``backoff`` up to ``max_backoff``, less a random part (``jitter``) so
clients that failed together do not retry together. A server's ``Retry-After`` (seconds or an
HTTP date) wins over the backoff, up to ``max_retry_after``. ``random`` and ``sleep`` are
injectable, so tests are deterministic and never wait.
"""

from __future__ import annotations

import email.utils
import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries in all, the first included
    backoff: float = 0.5  # seconds before the second try
    max_backoff: float = 10.0  # the longest backoff, seconds
    jitter: float = 0.5  # the share of each backoff that is random (0: none, 1: all)
    max_retry_after: float = 60.0  # the longest wait a server's Retry-After may ask for
    random: Callable[[], float] = field(default=_random.random, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("retry waits cannot be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a share between 0 and 1")

    def gives_up(self, attempt: int) -> bool:
        """Whether try number ``attempt`` (counted from 0) was the last one."""
        return attempt + 1 >= self.attempts

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try ``attempt`` (from 0), honouring ``retry_after``."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_retry_after)
        base = min(self.max_backoff, self.backoff * (2 ** min(attempt, 62)))
        return base * (1 - self.jitter * self.random())


def parse_retry_after(
    value: str | None, *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds from a ``Retry-After`` header: delta seconds or an HTTP date; None if neither."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT; a malformed one may lack the zone
        return None
    return max(0.0, when.timestamp() - now())
