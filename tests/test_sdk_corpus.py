"""Payloads generated from the official SDKs' own types: each imports or is one clear error.

polyfactory builds random instances of the SDK's pydantic models (every one valid for the SDK);
our parsers must turn each into a Call/AgentSnapshot or a PayloadError naming the field, never
crash, and never hang. Random values are often nonsense (negative timestamps, a transcript line
with no speaker), so refusing some is right; what may not happen is anything but PayloadError.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from polyfactory.factories.pydantic_factory import ModelFactory

from voicereplay.errors import PayloadError
from voicereplay.models import Call
from voicereplay.providers import retell_payload, vapi_payload
from voicereplay.snapshot import AgentSnapshot


def _corpus(model: Any, count: int, seed: int) -> list[Any]:
    factory = ModelFactory.create_factory(
        model, __allow_none_optionals__=True, __max_collection_length__=3)
    factory.seed_random(seed)
    # through JSON as a provider would send it; untyped "object" fields become {}
    dump = (lambda m: m.dict(by_alias=True, exclude_none=True)) if model.__module__.startswith(
        "vapi.") else (lambda m: m.model_dump(exclude_none=True))
    return [json.loads(json.dumps(dump(factory.build()), default=lambda _: {}))
            for _ in range(count)]


def _outcomes(parse: Any, payloads: list[Any]) -> list[str]:
    outcomes = []
    for index, payload in enumerate(payloads):
        try:
            result = parse(payload, index)
        except PayloadError as exc:
            assert str(exc).startswith(f"gen{index}"), exc  # names the payload it came from
            outcomes.append("refused")
        else:
            assert isinstance(result, Call | AgentSnapshot)
            outcomes.append("imported")
    return outcomes


@pytest.mark.parametrize("kind", ["PhoneCallResponse", "WebCallResponse"])
def test_generated_retell_calls_import_or_are_refused_clearly(kind: str) -> None:
    import retell.types

    payloads = _corpus(getattr(retell.types, kind), 60, seed=8)
    outcomes = _outcomes(lambda p, i: retell_payload.parse_call(p, source=f"gen{i}"), payloads)
    assert outcomes.count("imported") > len(payloads) // 2


def test_generated_retell_agents_and_llms_make_snapshots() -> None:
    from retell.types import AgentResponse, LlmResponse

    call = retell_payload.parse_call(
        {"call_id": "c", "agent_id": "a", "call_status": "ended", "call_type": "web_call"})
    pairs = list(zip(_corpus(AgentResponse, 30, seed=3), _corpus(LlmResponse, 30, seed=4),
                     strict=True))

    def snapshot(pair: tuple[Any, Any], index: int) -> AgentSnapshot:
        try:
            return retell_payload.build_snapshot(call, *pair)
        except PayloadError as exc:
            raise PayloadError(f"gen{index}: {exc}") from exc

    outcomes = _outcomes(snapshot, pairs)
    assert outcomes.count("imported") > len(pairs) // 2


def test_generated_vapi_calls_import_or_are_refused_clearly() -> None:
    from vapi.types.call import Call as VapiCall

    payloads = _corpus(VapiCall, 3, seed=1)  # each takes seconds to build: the SDK is vast
    _outcomes(lambda p, i: vapi_payload.parse_call(p, source=f"gen{i}"), payloads)
