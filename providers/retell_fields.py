"""Where the call sits in a Retell payload: the body itself, or ``call``/``data`` of a webhook.

The fields themselves are read through :class:`~voicereplay.providers.fields.Obj`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["call_body"]


def call_body(payload: Mapping[str, Any]) -> tuple[Any, str]:
    """The call object inside a webhook body (and ``"call"``/``"data"``), else the payload."""
    if "call_id" not in payload and "event" in payload:
        for key in ("call", "data"):
            if payload.get(key) is not None:
                return payload[key], key
    return payload, ""
