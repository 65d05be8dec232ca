"""Typed reads from provider JSON, so a wrong type becomes a PayloadError and never a crash.

Vapi and Retell payloads drift between API versions and arrive truncated. Their parsers read
every field through :class:`Obj`, one JSON object that knows where it sits in the payload
(``artifact.messages[3]``) and which payload it came from (its ``source``). A field of the wrong
type raises a :class:`~voicereplay.errors.PayloadError` that names the field's full path and the
source, for example ``calls/x.json: Vapi call c-1: artifact.messages[3].time is not a timestamp
…``; a missing key and ``None`` mean the same thing ("absent").

The rules are the same for every provider:

* numbers are finite and never booleans; a *lenient* reader (Retell's) also takes numeric
  text (``"12.5"``) and ``"true"``/``"false"`` as booleans;
* ids and versions are text or integers, returned as text;
* timestamps are ISO-8601 text, epoch milliseconds or numeric text, read by
  :func:`parse_timestamp`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from pydantic import ValidationError

from voicereplay.errors import PayloadError

__all__ = ["MAX_DEPTH", "Obj", "check_depth", "describe", "parse_timestamp", "to_epoch_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# A number below this is epoch seconds, not milliseconds (1e11 ms is March 1973).
_SECONDS_BELOW = 1e11
_TOP = "(top level)"
# Real payloads nest about 10 deep; past this, storing or copying them recurses too deep.
MAX_DEPTH = 64


def check_depth(value: Any, *, source: str | None = None, limit: int = MAX_DEPTH) -> None:
    """Raise a PayloadError if ``value`` nests objects/lists more than ``limit`` deep.

    Walks without recursion, so a payload nested thousands deep is reported, not a crash.
    """
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(value, 0, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, Mapping):
            children: Any = ((str(k), v) for k, v in item.items())
        elif isinstance(item, list | tuple):
            children = ((f"[{i}]", v) for i, v in enumerate(item))
        else:
            continue
        if depth >= limit:
            shown = ".".join(path[:6]).replace(".[", "[")
            raise PayloadError(
                f"nests more than {limit} levels deep (at {shown or _TOP}"
                f"{'…' if len(path) > 6 else ''}); no call payload does, so it is not read",
                source=source,
            )
        stack.extend((child, depth + 1, (*path, key)) for key, child in children)


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


def describe(value: Any) -> str:
    """A short description of a value for error messages: its JSON kind and a short repr."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int | float):
        kind = "a number"
    elif isinstance(value, str):
        kind = "text"
    elif isinstance(value, Mapping):
        kind = "an object"
    elif isinstance(value, list | tuple):
        kind = "a list"
    else:
        kind = type(value).__name__
    shown = repr(value)
    return f"{kind} ({shown[:40]}{'…' if len(shown) > 40 else ''})"


@dataclass(frozen=True)
class Obj:
    """One JSON object at ``path`` inside the payload from ``source``.

    ``what`` (e.g. ``"Vapi call 1f2e…"``) starts every message when set. ``lenient`` lets
    numbers and booleans arrive as text. ``origins`` serves a flattened object whose fields
    come from several places: it maps a key to the path of the object that really holds it.
    Objects read from this one share its source, ``what`` and ``lenient``.
    """

    data: Mapping[str, Any]
    path: str = ""
    source: str | None = None
    what: str = ""
    lenient: bool = False
    origins: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, value: Any, path: str = "", source: str | None = None, *, what: str = "",
        lenient: bool = False,
    ) -> Obj:
        """``value`` as an object at ``path``; anything but a JSON object is a PayloadError."""
        return cls({}, path, source, what, lenient).child(value, path)

    def child(self, value: Any, path: str) -> Obj:
        """``value``, found at ``path`` of the same payload, as an object."""
        if not isinstance(value, Mapping):
            self._at(path)._wrong(None, "an object", value)
        return Obj(value, path, self.source, self.what, self.lenient)

    def _at(self, path: str) -> Obj:
        """An empty object at ``path`` of the same payload."""
        return Obj({}, path, self.source, self.what, self.lenient)

    # -- errors -----------------------------------------------------------------------------
    def where(self, key: str | int | None = None) -> str:
        """The path of ``key`` (an index for a list) in the payload; None: this object."""
        if key is None:
            return self.path or _TOP
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        parent = self.origins.get(key, self.path)
        return f"{parent}.{key}" if parent else key

    def fail(self, key: str | int | None, problem: str) -> NoReturn:
        """Raise a PayloadError saying that the field at ``key`` ``problem`` (``is missing``)."""
        raise self._error(f"{self.where(key)} {problem}")

    def invalid(self, exc: ValidationError) -> NoReturn:
        """Raise for a value our checks let through but the model refused."""
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or _TOP
        raise self._error(f"{where} is not valid: {err['msg']}") from exc

    def _error(self, message: str) -> PayloadError:
        return PayloadError(f"{self.what}: {message}" if self.what else message, source=self.source)

    def _wrong(self, key: str | int | None, expected: str, value: Any) -> NoReturn:
        self.fail(key, f"should be {expected}, got {describe(value)}")

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            self.fail(key, "is missing")
        return value

    # -- scalars ----------------------------------------------------------------------------
    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self._get(key, required)
        if value is None or isinstance(value, str):
            return value
        self._wrong(key, "text", value)

    def ident(self, key: str, *, required: bool = False) -> str | None:
        """An id or version: text or an integer, returned as text; empty text is absent."""
        value = self._get(key, required)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if value is not None and not isinstance(value, str):
            self._wrong(key, "an id (text or a whole number)", value)
        text = value.strip() if value else None
        if not text and required:
            self.fail(key, "is missing")
        return text or None

    def number(self, key: str, *, required: bool = False) -> float | None:
        value = self._get(key, required)
        if value is None:
            return None
        number = self._number(value)
        if number is None:
            self._wrong(key, "a finite number", value)
        return number

    def integer(self, key: str) -> int | None:
        number = self.number(key)
        if number is not None and not number.is_integer():
            self._wrong(key, "a whole number", self.data.get(key))
        return None if number is None else int(number)

    def flag(self, key: str) -> bool | None:
        value = self._get(key, False)
        if value is None or isinstance(value, bool):
            return value
        word = value.strip().lower() if isinstance(value, str) and self.lenient else None
        if word in ("true", "false"):
            return word == "true"
        self._wrong(key, "true or false", value)

    def when(self, key: str) -> datetime | None:
        """A timestamp (see :func:`parse_timestamp`) as an aware UTC datetime."""
        value = self._get(key, False)
        if value is None or value == "":
            return None
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            self.fail(
                key,
                f"is not a timestamp ({exc}); expected an ISO-8601 date or epoch milliseconds, "
                f"got {describe(value)}",
            )

    def epoch_ms(self, key: str) -> float | None:
        """A timestamp as epoch milliseconds."""
        when = self.when(key)
        return None if when is None else to_epoch_ms(when)

    def arguments(self, key: str) -> tuple[dict[str, Any], str | None]:
        """Tool-call arguments as ``(arguments, raw_arguments)`` from a JSON string or an
        object; text that is not a JSON object is kept in ``raw_arguments``."""
        value = self.data.get(key)
        if value is None:
            return {}, None
        if isinstance(value, Mapping):
            return dict(value), None
        if not isinstance(value, str):
            self._wrong(key, "a JSON string or an object", value)
        if not value.strip():
            return {}, None
        try:
            parsed = json.loads(value)
            check_depth(parsed)
        except (ValueError, RecursionError, PayloadError):  # too deep: kept as text
            return {}, value
        return (parsed, None) if isinstance(parsed, dict) else ({}, value)

    def _number(self, value: Any) -> float | None:
        """``value`` as a finite number (numeric text too when lenient), else None."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        if isinstance(value, str) and not self.lenient:
            return None
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (ValueError, OverflowError):
            return None
        return number if math.isfinite(number) else None

    # -- containers -------------------------------------------------------------------------
    def obj(self, key: str, *, required: bool = False) -> Obj | None:
        value = self._get(key, required)
        return None if value is None else self.child(value, self.where(key))

    def section(self, key: str) -> Obj:
        """The object at ``key``; an empty one when it is missing."""
        found = self.obj(key)
        return found if found is not None else self._at(self.where(key))

    def mapping(self, key: str) -> dict[str, Any]:
        """The object at ``key`` as a plain dict; ``{}`` when it is missing."""
        return dict(self.section(key).data)

    def array(self, key: str, *, required: bool = False) -> list[Any] | None:
        value = self._get(key, required)
        if value is None or isinstance(value, list | tuple):
            return None if value is None else list(value)
        self._wrong(key, "a list", value)

    def objects(self, key: str) -> list[Obj]:
        """The list at ``key`` whose every item must be an object; ``[]`` when it is missing."""
        where = self.where(key)
        return [self.child(item, f"{where}[{i}]") for i, item in enumerate(self.array(key) or [])]

    def numbers(self, key: str) -> list[float]:
        """The list of numbers at ``key``; ``[]`` when it is missing."""
        return [self._item(key, i, item, self._number(item), "a finite number")
                for i, item in enumerate(self.array(key) or [])]

    def strings(self, key: str) -> list[str]:
        """The list of texts at ``key``; ``[]`` when it is missing."""
        return [self._item(key, i, item, item if isinstance(item, str) else None, "text")
                for i, item in enumerate(self.array(key) or [])]

    def _item(self, key: str, index: int, value: Any, read: Any, expected: str) -> Any:
        if read is None:
            self._at(self.where(key))._wrong(index, expected, value)
        return read
