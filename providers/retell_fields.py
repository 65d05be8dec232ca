"""Typed reads from Retell JSON, so a wrong type becomes a PayloadError and not a crash.

Retell payloads drift and arrive truncated. The Retell parsers read every field through
:class:`Obj`. When a field has the wrong type, the error names the field's path (for example
``call.transcript_object[3].words[0].start``) and the payload's ``source``. ``None`` and a
missing key mean the same thing. Numbers may arrive as numeric strings, but booleans are not
numbers and neither are NaN or infinity. :func:`call_body` finds the call inside a webhook body.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from voicereplay.errors import PayloadError

__all__ = ["Obj", "call_body", "describe"]


def call_body(payload: Mapping[str, Any]) -> tuple[Any, str]:
    """The call object inside a webhook body (and ``"call"``/``"data"``), else the payload."""
    if "call_id" not in payload and "event" in payload:
        for key in ("call", "data"):
            if payload.get(key) is not None:
                return payload[key], key
    return payload, ""


def describe(value: Any) -> str:
    """A short description of a value for error messages (the type and a short repr)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '…' if len(text) > 40 else text}"


@dataclass(frozen=True)
class Obj:
    """One JSON object at ``path`` inside the payload from ``source``."""

    data: Mapping[str, Any]
    path: str = ""
    source: str | None = None

    @classmethod
    def of(cls, value: Any, path: str, source: str | None) -> Obj:
        if not isinstance(value, Mapping):
            raise PayloadError(
                f"{path or 'payload'}: expected a JSON object, got {describe(value)}", source=source
            )
        return cls(value, path, source)

    # -- errors -----------------------------------------------------------------------------
    def where(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> PayloadError:
        return PayloadError(f"{self.where(key)}: {message}", source=self.source)

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise self.error(key, "is missing")
        return value

    # -- scalars ----------------------------------------------------------------------------
    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self._get(key, required)
        if value is None or isinstance(value, str):
            return value
        raise self.error(key, f"expected a string, got {describe(value)}")

    def text(self, key: str, *, required: bool = False) -> str | None:
        """A string, or an integer turned into one (ids and versions arrive as either)."""
        value = self._get(key, required)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise self.error(key, f"expected a string or an integer, got {describe(value)}")

    def number(self, key: str, *, required: bool = False) -> float | None:
        value = self._get(key, required)
        if value is None:
            return None
        number = _to_number(value)
        if number is None:
            raise self.error(key, f"expected a number, got {describe(value)}")
        return number

    def flag(self, key: str) -> bool | None:
        value = self._get(key, False)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise self.error(key, f"expected true or false, got {describe(value)}")

    def epoch_ms(self, key: str) -> datetime | None:
        """An epoch-milliseconds timestamp as an aware UTC datetime."""
        ms = self.number(key)
        if ms is None:
            return None
        if ms < 0:
            raise self.error(key, f"is not an epoch-milliseconds timestamp ({ms:g} is negative)")
        try:
            return datetime.fromtimestamp(ms / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise self.error(
                key, f"is not an epoch-milliseconds timestamp ({ms:g} is out of range)"
            ) from None

    # -- containers -------------------------------------------------------------------------
    def obj(self, key: str, *, required: bool = False) -> Obj | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected an object, got {describe(value)}")
        return Obj(value, self.where(key), self.source)

    def mapping(self, key: str) -> dict[str, Any]:
        """The object at ``key`` as a plain dict; ``{}`` when it is missing."""
        found = self.obj(key)
        return dict(found.data) if found is not None else {}

    def array(self, key: str, *, required: bool = False) -> list[Any] | None:
        value = self._get(key, required)
        if value is None or isinstance(value, list):
            return value
        raise self.error(key, f"expected a list, got {describe(value)}")

    def objects(self, key: str) -> list[Obj]:
        """The list at ``key`` whose every item must be an object; ``[]`` when it is missing."""
        items = self.array(key) or []
        where = self.where(key)
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise PayloadError(
                    f"{where}[{i}]: expected an object, got {describe(item)}", source=self.source
                )
            out.append(Obj(item, f"{where}[{i}]", self.source))
        return out

    def numbers(self, key: str) -> list[float]:
        """The list of numbers at ``key``; ``[]`` when it is missing."""
        items = self.array(key) or []
        out = []
        for i, item in enumerate(items):
            number = _to_number(item)
            if number is None:
                raise PayloadError(
                    f"{self.where(key)}[{i}]: expected a number, got {describe(item)}",
                    source=self.source,
                )
            out.append(number)
        return out


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, int | float | str):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
