"""The flat call object of a Vapi payload, read through :class:`~.fields.Obj`.

A ``GET /call`` body is the call itself. An end-of-call-report webhook body
``{"message": {"type": "end-of-call-report", "call": {…stale…}, "artifact": …}}`` holds it in
two places: :func:`call_object` lays the report's own fields over its stale ``message.call`` so
the parsers read one flat object whose error messages still name where each field really sits
(``message.call.id``, ``message.artifact``).
"""

from __future__ import annotations

from typing import Any

from voicereplay.providers.fields import Obj

__all__ = ["REPORT", "call_object"]

REPORT = "end-of-call-report"


def call_object(payload: Any, source: str | None, what: str) -> Obj:
    """The flat call object of a GET /call body or of an end-of-call-report webhook body.

    For a report, the report's own fields (artifact, analysis, startedAt, endedAt, costs, …)
    are laid over ``message.call``, which is the call as it was created and stale by design.
    """
    root = Obj.of(payload, "", source, what=what)
    message = root.obj("message")
    if message is None:
        return root
    kind = message.string("type")
    if kind != REPORT:
        message.fail("type", f"is {kind!r}; only an {REPORT} webhook holds a finished call")
    stale = message.obj("call")
    if stale is None:
        message.fail("call", "is missing; the report does not say which call it is")
    data = dict(stale.data)
    origins = {key: stale.path for key in (*stale.data, "id")}
    for key, value in message.data.items():
        if key not in ("type", "call", "id") and value is not None:
            data[key] = value
            origins.pop(key, None)
    data["status"] = "ended"  # message.call is the call as created (queued/ringing)
    return Obj(data, message.path, source, what, origins=origins)
