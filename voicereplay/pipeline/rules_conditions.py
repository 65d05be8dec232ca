"""The conditions of a flag rule evaluated on one call, each with its reason in plain words.

:func:`evaluate_when` runs every condition a rule's :class:`~.rules_schema.When` gives, in
order, and says for each whether it held and why (``duration 12 s is under 30 s``,
``no success evaluation yet``); the meaning of each condition is documented in
:mod:`voicereplay.pipeline.rules`. Vapi's structured outputs and scorecards are not part of
the normalized :class:`~voicereplay.models.Call`, so they are read from ``call.raw``
(``artifact.structuredOutputs`` / ``artifact.scorecards``, of a GET /call body or an
end-of-call report).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from voicereplay.errors import PayloadError
from voicereplay.models import Call
from voicereplay.pipeline.rules_schema import Range, When
from voicereplay.providers.vapi_fields import call_object

__all__ = ["Condition", "evaluate_when", "sample_point"]

_MISSING = object()


@dataclass(frozen=True)
class Condition:
    """One condition of a rule, evaluated on one call."""

    name: str
    held: bool
    reason: str


def evaluate_when(when: When, call: Call, *, flagged: bool, rule_name: str
                  ) -> tuple[Condition, ...]:
    """Every condition ``when`` gives, evaluated on ``call`` (``rule_name`` seeds ``sample``)."""
    return tuple(Condition(name, *_CHECKS[name](when, call, flagged, rule_name))
                 for name in when.given())


def sample_point(rule_name: str, provider: str, call_id: str) -> float:
    """Where a call falls in [0, 1) for a rule's ``sample``: the same for every delivery."""
    digest = hashlib.sha256(f"{rule_name}\n{provider}\n{call_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


Check = Callable[[When, Call, bool, str], tuple[bool, str]]


def _provider(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    held = call.provider in (when.provider or [])
    return held, f"provider is {call.provider}" + ("" if held else _not_one_of(
        [str(p) for p in when.provider or []]))


def _success(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    actual = call.analysis.success
    if actual is None:
        return False, "no success evaluation yet"
    word = "true" if actual else "false"
    held = actual == when.success
    return held, f"success evaluation is {word}" + ("" if held else
                                                    f", not {str(when.success).lower()}")


def _structured_data(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    return _fields("structured data", call.analysis.structured_data, when.structured_data or {})


def _metadata(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    return _fields("metadata", call.metadata, when.metadata or {})


def _fields(what: str, data: Mapping[str, Any], wanted: Mapping[str, Any],
            lookup: Callable[[Mapping[str, Any], str], Any] | None = None) -> tuple[bool, str]:
    """Each wanted key's value in ``data`` (by ``lookup``: a dotted path by default)."""
    if not data:
        return False, f"no {what}"
    said = []
    for key, expected in wanted.items():
        actual = (lookup or _dig)(data, key)
        if actual is _MISSING:
            return False, f"no {key!r} in {what}"
        if not _same(expected, actual):
            return False, f"{what} {key} is {_show(actual)}, not {_show(expected)}"
        said.append(f"{key} is {_show(actual)}")
    return True, f"{what}: " + ", ".join(said)


def _structured_outputs(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    return _fields("structured outputs", _artifact(call, "structuredOutputs"),
                   when.structured_outputs or {}, lookup=_output_value)


def _scorecards(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    cards = _artifact(call, "scorecards")
    if not cards:
        return False, "no scorecards"
    said = []
    for key, bounds in (when.scorecards or {}).items():
        card = _by_name_or_id(cards, key)
        score = None if card is None else card.get("scoreNormalized", card.get("score"))
        if not isinstance(score, int | float) or isinstance(score, bool):
            return False, f"no score for scorecard {key!r}"
        held, text = _in_range(f"scorecard {key} scored", float(score), bounds, "")
        if not held:
            return False, text
        said.append(text)
    return True, "; ".join(said)


def _sentiment(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    actual = call.analysis.sentiment
    if not actual:
        return False, "no sentiment"
    held = actual.casefold() in {s.casefold() for s in when.sentiment or []}
    return held, f"sentiment is {actual}" + ("" if held else _not_one_of(when.sentiment))


def _ended_reason(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    actual = call.ended_reason
    if not actual:
        return False, "no ended reason"
    held = any(fnmatch.fnmatchcase(actual.casefold(), p.casefold())
               for p in when.ended_reason or [])
    return held, f"ended reason {actual!r}" + (" matches" if held else
                                              " is not one of: " + ", ".join(
                                                  when.ended_reason or []))


def _duration(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    if call.duration is None or when.duration is None:
        return False, "no duration"
    return _in_range("duration", call.duration, when.duration, " s")


def _cost(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    if call.cost.total_usd is None or when.cost is None:
        return False, "no cost"
    return _in_range("cost", call.cost.total_usd, when.cost, " USD")


def _agent(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    if not call.agent_id:
        return False, "no agent id"
    held = call.agent_id in (when.agent or [])
    return held, f"agent is {call.agent_id}" + ("" if held else _not_one_of(when.agent))


def _tags(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    tags = call.metadata.get("tags")
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not tags:
        return False, "no tags in metadata"
    have = [str(t) for t in tags]
    hit = [t for t in when.tags or [] if t in have]
    if hit:
        return True, f"tagged {', '.join(hit)}"
    return False, f"tags {', '.join(have)} include none of: {', '.join(when.tags or [])}"


_PHONE_NOISE = re.compile(r"[\s().-]")


def _customer_number(when: When, call: Call, _f: bool, _n: str) -> tuple[bool, str]:
    number = call.customer_number
    if not number:
        return False, "no customer number"
    held = _PHONE_NOISE.sub("", number) in {_PHONE_NOISE.sub("", n)
                                            for n in when.customer_number or []}
    return held, f"customer number is {number}" + (
        "" if held else _not_one_of(when.customer_number))


def _flagged(when: When, call: Call, flagged: bool, _n: str) -> tuple[bool, str]:
    return flagged == when.flagged, "the call is flagged" if flagged else "the call is not flagged"


def _sample(when: When, call: Call, _f: bool, name: str) -> tuple[bool, str]:
    rate = when.sample or 0.0
    point = sample_point(name, call.provider, call.call_id)
    if point < rate:
        return True, f"sampled in ({point:.4f} < {rate:g})"
    return False, f"sampled out ({point:.4f} ≥ {rate:g})"


_CHECKS: dict[str, Check] = {
    "provider": _provider, "success": _success, "structured_data": _structured_data,
    "structured_outputs": _structured_outputs, "scorecards": _scorecards,
    "sentiment": _sentiment, "ended_reason": _ended_reason, "duration": _duration,
    "cost": _cost, "agent": _agent, "metadata": _metadata, "tags": _tags,
    "customer_number": _customer_number, "flagged": _flagged, "sample": _sample,
}


# -- helpers ---------------------------------------------------------------------------------
def _in_range(what: str, value: float, bounds: Range, unit: str) -> tuple[bool, str]:
    shown = f"{what} {value:g}{unit}"
    if bounds.min is not None and value < bounds.min:
        return False, f"{shown} is under {bounds.min:g}{unit}"
    if bounds.max is not None and value > bounds.max:
        return False, f"{shown} is over {bounds.max:g}{unit}"
    if bounds.min is not None and bounds.max is not None:
        return True, f"{shown} is within {bounds.min:g}–{bounds.max:g}{unit}"
    if bounds.min is not None:
        return True, f"{shown} is at least {bounds.min:g}{unit}"
    return True, f"{shown} is at most {bounds.max:g}{unit}"


def _not_one_of(options: list[str] | None) -> str:
    return ", not one of: " + ", ".join(options or [])


def _dig(data: Any, dotted: str) -> Any:
    """``data[dotted]``, else the dotted path walked through nested mappings."""
    if isinstance(data, Mapping) and dotted in data:
        return data[dotted]
    node = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{float(value):g}" if float(value).is_integer() else repr(float(value))
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("true", "false"):
            return text.lower()
        try:
            return _scalar(float(text)) if text else text
        except ValueError:
            return text
    return None


def _same(expected: Any, actual: Any) -> bool:
    """A rule's value against the call's: a list means any of (unless the call's value is a
    list too); scalars compare as text."""
    if isinstance(expected, list) and not isinstance(actual, list):
        return any(_same(e, actual) for e in expected)
    left, right = _scalar(expected), _scalar(actual)
    if left is not None and right is not None:
        return left == right
    return bool(expected == actual)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _artifact(call: Call, key: str) -> Mapping[str, Any]:
    """``artifact.<key>`` of a Vapi call's payload (GET /call body or end-of-call-report)."""
    if call.provider != "vapi":
        return {}
    try:
        artifact = call_object(call.raw, None, "Vapi call").data.get("artifact")
    except PayloadError:
        return {}
    value = artifact.get(key) if isinstance(artifact, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _by_name_or_id(items: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    if isinstance(items.get(key), Mapping):
        return items[key]
    return next((v for v in items.values()
                 if isinstance(v, Mapping) and v.get("name") == key), None)


def _output_value(outputs: Mapping[str, Any], key: str) -> Any:
    """A structured output's result by name or id, or a dotted path into it: the longest
    prefix of ``key`` that names an output wins."""
    parts = key.split(".")
    for cut in range(len(parts), 0, -1):
        output = _by_name_or_id(outputs, ".".join(parts[:cut]))
        if output is None or "result" not in output:
            continue
        rest = ".".join(parts[cut:])
        return output["result"] if not rest else _dig(output["result"], rest)
    return _MISSING
