"""Property tests: a mutated Vapi payload parses to a valid Call or raises PayloadError, never
anything else (no KeyError/TypeError/ValidationError leaking out, no half-built call)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes import vapi_samples as samples
from voicereplay.errors import PayloadError
from voicereplay.models import Call
from voicereplay.providers.vapi import parse_webhook
from voicereplay.providers.vapi_payload import build_snapshot, embedded_assistant, parse_call
from voicereplay.snapshot import AgentSnapshot

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _bases() -> list[dict[str, Any]]:
    bases: list[dict[str, Any]] = [samples.call(), samples.report()]
    bases.append(samples.call(assistant=samples.assistant(), assistantId=None))
    for name in ("vapi-2024-report.json", "vapi-squad.json", "vapi-2025-booking.json"):
        path = FIXTURES / "vapi" / name
        if path.exists():
            bases.append(json.loads(path.read_text()))
    return bases


BASES = _bases()

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "true", "2025-06-10T09:07:00Z", "1749546420000", "not-a-date",
                     "{\"a\": 1}", "{\"a\":", "bot", "user", "tool_calls", "function_call",
                     "tool_call_result", "system", "assistant", "end-of-call-report",
                     "2025-13-45", "1e400", "NaN", "-1"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.extend(_paths(value, (*prefix, index)))
    return out


def _mutate(data: st.DataObject, payload: Any) -> Any:
    paths = _paths(payload)
    path = data.draw(st.sampled_from(paths), label="path")
    op = data.draw(st.sampled_from(["drop", "replace", "truncate", "wrap"]), label="op")
    if not path:
        return data.draw(json_values) if op == "replace" else payload
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    value = parent[key]
    if op == "drop":
        del parent[key]
    elif op == "replace":
        parent[key] = data.draw(json_values, label="value")
    elif op == "truncate" and isinstance(value, list | str):
        parent[key] = value[: data.draw(st.integers(0, max(0, len(value) - 1)), label="cut")]
    elif op == "wrap":
        parent[key] = [value] if not isinstance(value, list) else {"items": value}
    return payload


def _check_call(payload: Any) -> Call | None:
    try:
        call = parse_call(payload, source="mutated.json")
    except PayloadError as exc:
        assert str(exc).startswith("mutated.json: ")
        return None
    assert isinstance(call, Call) and call.provider == "vapi" and call.call_id
    json.loads(call.model_dump_json())  # every value serializes
    for turn in call.turns:
        if turn.start is not None and turn.end is not None:
            assert turn.end >= turn.start >= 0
    return call


def _check_snapshot(call: Call) -> None:
    try:
        snap = build_snapshot(call, embedded_assistant(call.raw) or samples.assistant())
    except PayloadError:
        return
    assert isinstance(snap, AgentSnapshot)
    assert snap.id  # canonical JSON works


@SETTINGS
@given(data=st.data(), base=st.sampled_from(range(len(BASES))),
       count=st.integers(min_value=1, max_value=5))
def test_mutated_payloads_parse_or_raise_payload_error(
    data: st.DataObject, base: int, count: int
) -> None:
    payload = copy.deepcopy(BASES[base])
    for _ in range(count):
        payload = _mutate(data, payload)
    call = _check_call(payload)
    if call is not None:
        _check_snapshot(call)


@SETTINGS
@given(data=st.data(), count=st.integers(min_value=1, max_value=4))
def test_mutated_assistants_snapshot_or_raise_payload_error(
    data: st.DataObject, count: int
) -> None:
    assistant: Any = samples.assistant()
    for _ in range(count):
        assistant = _mutate(data, assistant)
    call = parse_call(samples.call())
    try:
        snap = build_snapshot(call, assistant)
    except PayloadError:
        return
    assert isinstance(snap, AgentSnapshot) and snap.id


@SETTINGS
@given(value=json_values)
def test_random_json_parses_or_raises_payload_error(value: Any) -> None:
    _check_call(value)
    _check_call({"message": value})
    _check_call({"message": {"type": "end-of-call-report", "call": value}})
    _check_call({"id": "x", "orgId": "o", "artifact": {"messages": [value]}})


@SETTINGS
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_truncated_webhook_bodies_are_payload_errors(cut: int) -> None:
    text = json.dumps(samples.report()).encode()
    body = text[: cut % len(text)]
    try:
        parse_webhook(body)
    except PayloadError:
        return
    raise AssertionError("a truncated body parsed")  # pragma: no cover
