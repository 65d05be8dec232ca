"""Typed reads from a Vapi payload: the field reader, the timestamp parser, the flat call object.

Vapi payloads drift: timestamps arrive as ISO strings, epoch-millisecond numbers or numeric
strings; fields come and go between API versions. :class:`Fields` reads one field at a time and
turns a wrong type into a :class:`~voicereplay.errors.PayloadError` that names the field's path
(``artifact.messages[3].time``) and the payload's source, so a malformed payload never leaks a
``KeyError``/``TypeError`` and never yields a half-built call. ``None`` always means "absent".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from voicereplay.errors import PayloadError

__all__ = [
    "REPORT",
    "CallObject",
    "Fields",
    "call_object",
    "join",
    "parse_timestamp",
    "to_epoch_ms",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# A number below this is epoch seconds, not milliseconds (1e11 ms is March 1973).
_SECONDS_BELOW = 1e11


def parse_timestamp(value: Any) -> datetime:
    """An instant from an ISO-8601 string, epoch milliseconds (number or numeric string).

    Numbers below 1e11 are read as epoch seconds. Naive ISO strings are taken as UTC. Raises
    ``ValueError`` for anything else, including instants before 1970 or after 2200.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        when = _from_number(float(value))
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            when = _from_iso(text)
        else:
            when = _from_number(number)
    else:
        raise ValueError(f"a {type(value).__name__} is not a timestamp")
    if not _EPOCH <= when < _LATEST:
        raise ValueError("the timestamp is not between 1970 and 2200")
    return when


def to_epoch_ms(when: datetime) -> float:
    return (when - _EPOCH) / timedelta(milliseconds=1)


def _from_number(number: float) -> datetime:
    if not math.isfinite(number) or number < 0:
        raise ValueError("not a finite, positive epoch time")
    ms = number * 1000 if number < _SECONDS_BELOW else number
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise ValueError("the epoch time is out of range") from None


def _from_iso(text: str) -> datetime:
    if not text or not text[0].isdigit():
        raise ValueError("not an ISO-8601 date")
    when = datetime.fromisoformat(text)  # ValueError for garbage; 3.11 reads a trailing "Z"
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def describe(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "text", bool: "a boolean"}
    kind = next((name for t, name in kinds.items() if isinstance(value, t)), None)
    if kind is None:
        kind = "a number" if isinstance(value, int | float) else type(value).__name__
    shown = repr(value)
    return f"{kind} ({shown[:40]}{'…' if len(shown) > 40 else ''})"


class Fields:
    """Read fields of one payload; ``what`` (e.g. ``"Vapi call 1f2e…"``) starts every message."""

    def __init__(self, source: str | None, what: str = "Vapi payload") -> None:
        self.source = source
        self.what = what

    def fail(self, path: str, problem: str) -> NoReturn:
        raise PayloadError(f"{self.what}: {path} {problem}", source=self.source)

    def _wrong(self, path: str, expected: str, value: Any) -> NoReturn:
        self.fail(path, f"should be {expected}, got {describe(value)}")

    # -- containers -------------------------------------------------------------------------
    def as_mapping(self, value: Any, path: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if isinstance(value, Mapping):
            return dict(value)
        self._wrong(path, "an object", value)

    def mapping(self, obj: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
        return self.as_mapping(obj.get(key), join(where, key))

    def sequence(self, obj: Mapping[str, Any], key: str, where: str) -> list[Any] | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, list | tuple):
            return list(value)
        self._wrong(join(where, key), "a list", value)

    def item(self, value: Any, path: str) -> dict[str, Any]:
        """A list entry that must be an object."""
        if isinstance(value, Mapping):
            return dict(value)
        self._wrong(path, "an object", value)

    # -- scalars ----------------------------------------------------------------------------
    def text(self, obj: Mapping[str, Any], key: str, where: str) -> str | None:
        value = obj.get(key)
        if value is None or isinstance(value, str):
            return value
        self._wrong(join(where, key), "text", value)

    def ident(self, obj: Mapping[str, Any], key: str, where: str) -> str | None:
        """An id or version: text or an integer, returned as text; empty text is absent."""
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        self._wrong(join(where, key), "an id (text)", value)

    def number(self, obj: Mapping[str, Any], key: str, where: str) -> float | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
        self._wrong(join(where, key), "a finite number", value)

    def integer(self, obj: Mapping[str, Any], key: str, where: str) -> int | None:
        number = self.number(obj, key, where)
        if number is None:
            return None
        if number.is_integer():
            return int(number)
        self._wrong(join(where, key), "a whole number", obj.get(key))

    def boolean(self, obj: Mapping[str, Any], key: str, where: str) -> bool | None:
        value = obj.get(key)
        if value is None or isinstance(value, bool):
            return value
        self._wrong(join(where, key), "true or false", value)

    def strings(self, obj: Mapping[str, Any], key: str, where: str) -> list[str]:
        items = self.sequence(obj, key, where) or []
        for index, value in enumerate(items):
            if not isinstance(value, str):
                self._wrong(f"{join(where, key)}[{index}]", "text", value)
        return items

    def when(self, obj: Mapping[str, Any], key: str, where: str) -> datetime | None:
        value = obj.get(key)
        if value is None or value == "":
            return None
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            self.fail(
                join(where, key),
                f"is not a timestamp ({exc}); expected an ISO-8601 date or epoch milliseconds, "
                f"got {describe(value)}",
            )

    def epoch_ms(self, obj: Mapping[str, Any], key: str, where: str) -> float | None:
        when = self.when(obj, key, where)
        return None if when is None else to_epoch_ms(when)


REPORT = "end-of-call-report"


@dataclass
class CallObject:
    """A call's fields, flat. ``path(key)`` is where a field sits in the original payload and
    ``where(key)`` the object holding it, for error messages (``message.call.id``)."""

    data: dict[str, Any]
    prefix: str = ""
    origins: dict[str, str] = field(default_factory=dict)
    report: bool = False

    def path(self, key: str) -> str:
        return self.origins.get(key, self.prefix) + key

    def where(self, key: str) -> str:
        return self.path(key).rpartition(".")[0]


def call_object(payload: Any, r: Fields) -> CallObject:
    """The flat call object of a GET /call body or of an end-of-call-report webhook body.

    For a report, the report's own fields (artifact, analysis, startedAt, endedAt, costs, …)
    are laid over ``message.call``, which is the call as it was created and stale by design.
    """
    if not isinstance(payload, Mapping):
        r.fail("(top level)", f"should be a JSON object, got {describe(payload)}")
    message = payload.get("message")
    if message is None:
        return CallObject(dict(payload))
    body = r.item(message, "message")
    kind = r.text(body, "type", "message")
    if kind != REPORT:
        r.fail("message.type", f"is {kind!r}; only an {REPORT} webhook holds a finished call")
    stale = r.mapping(body, "call", "message")
    if stale is None:
        r.fail("message.call", "is missing; the report does not say which call it is")
    data = dict(stale)
    origins = {key: "message.call." for key in (*stale, "id")}
    for key, value in body.items():
        if key not in ("type", "call", "id") and value is not None:
            data[key] = value
            origins[key] = "message."
    data["status"] = "ended"  # message.call is the call as created (queued/ringing)
    return CallObject(data, prefix="message.", origins=origins, report=True)
