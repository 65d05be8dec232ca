"""Property tests: a mangled Retell payload parses to a valid Call or raises PayloadError.

Each example takes a valid call, webhook body, agent or Retell LLM and applies a few random
mutations at random places: replace a value with junk of any JSON type, delete a key, truncate
a list or a string, or wrap the whole thing. Nothing may escape but PayloadError: no KeyError,
TypeError or pydantic ValidationError.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.retell_samples import sample_agent, sample_call, sample_llm
from voicereplay.errors import PayloadError
from voicereplay.models import Call
from voicereplay.providers.retell import parse_webhook
from voicereplay.providers.retell_payload import build_snapshot, parse_call
from voicereplay.snapshot import AgentSnapshot

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "1717000000000", "nan", "-1", "1e400", "{", "{\"a\": 1}", "[]",
                     "agent", "user", "tool_call_invocation", "web_call", "inbound", "true"]),
)
_junk = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value``, including the root."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_paths(item, (*prefix, i)))
    return out


def _at(root: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        root = root[step]
    return root


@st.composite
def _mutated(draw: st.DrawFn, base: Any) -> Any:
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "truncate", "wrap"]))
        if not path:  # the root itself
            if action == "replace":
                doc = draw(_junk)
            elif action == "wrap":
                key = draw(st.sampled_from(["call", "data"]))
                doc = {"event": draw(st.text(max_size=8)), key: doc}
            continue
        parent, key = _at(doc, path[:-1]), path[-1]
        value = parent[key]
        if action == "replace":
            parent[key] = draw(_junk)
        elif action == "delete":
            del parent[key]
        elif action == "truncate" and isinstance(value, list | str):
            parent[key] = value[: draw(st.integers(min_value=0, max_value=max(0, len(value) - 1)))]
        elif action == "wrap":
            parent[key] = [value]
    return doc


def _check_call(payload: Any) -> None:
    try:
        call = parse_call(payload, source="mutated.json")
    except PayloadError as exc:
        assert str(exc).startswith("mutated.json: ")
        return
    assert isinstance(call, Call)
    Call.model_validate(call.model_dump())  # a whole, valid call
    json.dumps(call.model_dump(mode="json"))


@SETTINGS
@given(_mutated(sample_call()))
def test_mutated_get_call_body(payload: Any) -> None:
    _check_call(payload)


@SETTINGS
@given(_mutated({"event": "call_analyzed", "call": sample_call()}))
def test_mutated_webhook_body(payload: Any) -> None:
    _check_call(payload)
    try:
        parse_webhook(json.dumps(payload, allow_nan=True).encode())
    except PayloadError:
        pass


@SETTINGS
@given(st.text(max_size=200))
def test_truncated_json_text_of_a_webhook(cut: str) -> None:
    text = json.dumps({"event": "call_ended", "call": sample_call()})
    for body in (text[: len(cut)], cut):
        try:
            parse_webhook(body)
        except PayloadError:
            pass


_CALL = parse_call(sample_call())


@SETTINGS
@given(_mutated(sample_agent()), _mutated(sample_llm()), st.booleans(), st.booleans())
def test_mutated_agent_and_llm(agent: Any, llm: Any, with_agent: bool, with_llm: bool) -> None:
    try:
        snapshot = build_snapshot(_CALL, agent if with_agent else None, llm if with_llm else None)
    except PayloadError as exc:
        assert "call_sample1" in str(exc)
        return
    assert isinstance(snapshot, AgentSnapshot)
    assert snapshot.source.call_id == "call_sample1"
    snapshot.canonical_json()
