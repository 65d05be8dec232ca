"""The calls list's search and filters, as one model the page and its links share.

:class:`CallFilters` holds what a person typed (text, as in the query string) and turns it into
the store's filters (``store.calls.list``/``count``: search, provider, agent, dates, analysis,
ended reason, has replays, flagged).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel

from voicereplay.errors import ConfigError
from voicereplay.store import Store
from voicereplay.store.calls import CallSummary

__all__ = ["PAGE_SIZE", "CallFilters", "CallPage", "list_calls", "relative_age"]

PAGE_SIZE = 50

class CallFilters(BaseModel):
    """The calls list's query string: all text, empty for "any"."""

    q: str = ""
    provider: str = ""
    agent_id: str = ""
    since: str = ""
    until: str = ""
    success: str = ""  # "", "yes" (succeeded) or "no" (failed analysis)
    ended_reason: str = ""
    has_replays: str = ""  # "", "yes" or "no"
    flagged: str = ""  # "", "yes"
    page: int = 1

    def values(self) -> dict[str, Any]:
        """Every filter set, typed (dates as UTC datetimes, yes/no as booleans)."""
        typed: dict[str, Any] = {}
        for name in ("q", "provider", "agent_id", "ended_reason"):
            value = getattr(self, name).strip()
            if value:
                typed[name] = value
        if self.since.strip():
            typed["since"] = _date(self.since, "since")
        if self.until.strip():
            typed["until"] = _date(self.until, "until", end=True)
        for name in ("success", "has_replays", "flagged"):
            value = getattr(self, name).strip().lower()
            if value:
                if value not in ("yes", "no"):
                    raise ConfigError(f"{name}: {value!r}: use yes or no")
                typed[name] = value == "yes"
        return typed

    def query(self, **changes: Any) -> str:
        """This query string with ``changes`` (a page link), without the empty fields."""
        data = {**self.model_dump(), **changes}
        return urlencode({k: v for k, v in data.items()
                          if v not in ("", None) and not (k == "page" and v == 1)})


_AGE = re.compile(r"^(\d+)([mhdw])$")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def relative_age(text: str, *, now: datetime | None = None) -> datetime | None:
    """``30m``, ``24h``, ``7d``, ``2w`` ago (None: ``text`` is not an age)."""
    match = _AGE.match(text.strip())
    if match is None:
        return None
    span = timedelta(**{_AGE_UNITS[match.group(2)]: int(match.group(1))})
    return (now or datetime.now(UTC)) - span


def _date(text: str, field: str, *, end: bool = False) -> datetime:
    """``YYYY-MM-DD`` (a whole day, UTC; ``until`` includes it), an ISO date-time, or an age
    (``7d``: seven days ago)."""
    text = text.strip()
    ago = relative_age(text)
    if ago is not None:
        return ago
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            moment = datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{field}: {text!r} is not a date (YYYY-MM-DD) or an age (24h, 7d)"
                          ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class CallPage(BaseModel):
    calls: list[CallSummary]
    total: int
    page: int
    pages: int


def list_calls(store: Store, filters: CallFilters, *, page_size: int = PAGE_SIZE) -> CallPage:
    """One page of stored calls matching ``filters``, newest first."""
    wanted = filters.values()
    total = store.calls.count(**wanted)
    pages = max(1, -(-total // page_size))
    page = min(max(1, filters.page), pages)
    calls = store.calls.list(**wanted, limit=page_size, offset=(page - 1) * page_size)
    return CallPage(calls=calls, total=total, page=page, pages=pages)
