"""The official SDKs are the schema authority: fixtures and fake API answers parse with them.

``vapi-server-sdk`` (Fern) and ``retell-sdk`` (Stainless) ship pydantic models for every
response. Every fixture file and every answer of the fake Vapi and Retell APIs that stands for a
current response must validate with the SDK's own model. The fixtures that keep an older real
shape on purpose are listed in ``LEGACY`` with the reason, and must still *fail* the current
model (so the list stays honest) while our parser reads them.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from tests.fakes import retell_samples, vapi_samples
from tests.fakes.retell_api import make_retell_app
from tests.fakes.server import RunningServer, serve
from tests.fakes.vapi_api import FakeVapiData, make_vapi_app
from voicereplay.providers.files import FilesProvider

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@functools.cache
def _model(name: str) -> Callable[[Any], object]:
    """The SDK model ``name`` as a validator, imported on first use (Vapi's take ~6 s each)."""
    if name.startswith("vapi."):
        from vapi.core.pydantic_utilities import parse_obj_as

        module, _, attr = name.rpartition(".")
        model = getattr(importlib.import_module(module), attr)
        # the Vapi SDK aliases fields by annotation, which parse_obj_as applies
        return lambda body: parse_obj_as(model, body)
    module, _, attr = name.rpartition(".")
    return pydantic.TypeAdapter(getattr(importlib.import_module(module), attr)).validate_python


def sdk(name: str) -> Callable[[Any], object]:
    def check(body: Any) -> object:
        return _model(name)(body)

    check.__name__ = name.rsplit(".", 1)[1]
    return check


VAPI_CALL = sdk("vapi.types.call.Call")
VAPI_ASSISTANT = sdk("vapi.types.assistant.Assistant")
VAPI_REPORT = sdk("vapi.types.server_message_end_of_call_report.ServerMessageEndOfCallReport")
VAPI_TOOL = sdk("vapi.tools.types.get_tools_response.GetToolsResponse")
RETELL_CALL = sdk("retell.types.call_response.CallResponse")
RETELL_AGENT = sdk("retell.types.agent_response.AgentResponse")
RETELL_LLM = sdk("retell.types.llm_response.LlmResponse")
RETELL_LIST_V3 = sdk("retell.types.call_list_response.CallListResponse")


def _vapi_webhook(body: Any) -> object:
    """A Vapi server message ``{"message": {…}}`` holding an end-of-call-report."""
    assert set(body) == {"message"}
    return VAPI_REPORT(body["message"])


def _retell_webhook(body: Any) -> object:
    """A Retell webhook body: the SDK has no model for the envelope, its ``call`` is a call."""
    assert set(body) == {"event", "call"} and isinstance(body["event"], str)
    return RETELL_CALL(body["call"])


def _retell_retrieved(body: Any) -> object:
    """The file behind ``knowledge_base_retrieved_contents_url``: Retell publishes no model for
    it, so this checks the layout voicereplay reads (``providers/retell_knowledge.py``)."""
    assert isinstance(body, list) and body
    for entry in body:
        assert isinstance(entry["response_id"], int) and entry["retrieved_contents"]
        assert all(isinstance(c["content"], str) for c in entry["retrieved_contents"])
    return body


# Each fixture file, and the SDK model its shape claims to be.
CURRENT: dict[str, Callable[[Any], object]] = {
    "demo/demo-refund.json": VAPI_CALL,
    "demo/demo-refund.assistant.json": VAPI_ASSISTANT,
    "vapi/vapi-2025-booking.json": VAPI_CALL,
    "vapi/vapi-squad.json": VAPI_CALL,
    "retell/retell-support.json": RETELL_CALL,
    "retell/retell-support.agent.json": RETELL_AGENT,
    "retell/retell-support.llm.json": RETELL_LLM,
    "retell/retell-webhook-call-analyzed.json": _retell_webhook,
    "retell/retell-webhook-call-analyzed.agent.json": RETELL_AGENT,
    "retell/retell-webhook-call-analyzed.llm.json": RETELL_LLM,
    "knowledge/vapi-knowledge.json": VAPI_CALL,
    "knowledge/retell-knowledge.json": RETELL_CALL,
    "knowledge/retell-knowledge.agent.json": RETELL_AGENT,
    "knowledge/retell-knowledge.llm.json": RETELL_LLM,
    "knowledge/retell-knowledge.knowledge.json": _retell_retrieved,
}
# Fixtures that keep a real older shape on purpose, the reason, and the current model they fail.
LEGACY: dict[str, tuple[str, Callable[[Any], object]]] = {
    "vapi/vapi-2024-report.json": (
        "a 2024 end-of-call-report as real 2024 payloads had it: message.timestamp as an ISO "
        "string, message durations in seconds, a legacy function_call message, "
        "message.assistant with model.functions/serverUrl/responseDelaySeconds",
        _vapi_webhook,
    ),
}


def _fixture_files() -> list[str]:
    return sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*.json"))


def test_every_fixture_is_either_current_or_listed_as_legacy() -> None:
    assert _fixture_files() == sorted([*CURRENT, *LEGACY])


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_fixture_parses_with_the_official_sdk(name: str) -> None:
    CURRENT[name](json.loads((FIXTURES / name).read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_legacy_fixture_is_older_than_the_sdk_but_we_read_it(name: str) -> None:
    reason, current = LEGACY[name]
    body = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    with pytest.raises(pydantic.ValidationError):
        current(body)
    assert reason
    loaded = {file.path.name: result for file, result in FilesProvider(
        (FIXTURES / name).parent).iter_loaded()}
    assert not isinstance(loaded[Path(name).name], Exception)


@pytest.mark.parametrize(("sample", "check"), [
    (vapi_samples.call, VAPI_CALL),
    (vapi_samples.assistant, VAPI_ASSISTANT),
    (vapi_samples.report, _vapi_webhook),
    (retell_samples.sample_call, RETELL_CALL),
    (retell_samples.sample_agent, RETELL_AGENT),
    (retell_samples.sample_llm, RETELL_LLM),
], ids=lambda value: value.__name__)
def test_fake_samples_parse_with_the_official_sdk(
    sample: Callable[[], Any], check: Callable[[Any], object]
) -> None:
    check(sample())


# -- what the fake APIs answer over HTTP ------------------------------------------------------
TOOL = {
    "id": "tool-refund", "orgId": "o", "type": "function",
    "createdAt": vapi_samples.iso(vapi_samples.T0), "updatedAt": vapi_samples.iso(vapi_samples.T0),
    "function": {"name": "issue_refund", "parameters": {"type": "object", "properties": {}}},
    "server": {"url": "https://tools.example.com/refund"},
}


@pytest.fixture
def fake_vapi() -> Iterator[RunningServer]:
    data = FakeVapiData()
    data.add_call(vapi_samples.call(), assistant=vapi_samples.assistant())
    data.tools[TOOL["id"]] = TOOL
    with serve(make_vapi_app([FIXTURES / "demo", FIXTURES / "vapi"], data=data)) as server:
        yield server


@pytest.fixture
def fake_retell() -> Iterator[RunningServer]:
    app = make_retell_app([FIXTURES / "retell"])
    app.add_call(retell_samples.sample_call(), agent=retell_samples.sample_agent(),
                 llm=retell_samples.sample_llm())
    with serve(app) as server:
        yield server


@pytest.mark.integration
def test_every_fake_vapi_answer_parses_with_the_sdk(fake_vapi: RunningServer) -> None:
    with httpx.Client(base_url=fake_vapi.url,
                      headers={"Authorization": "Bearer test-vapi-key"}) as client:
        listed = client.get("/call", params={"limit": 100}).json()
        assert len(listed) == 4  # three fixture calls (not the 2024 webhook body) + a sample
        pydantic.TypeAdapter(list[Any]).validate_python(listed)
        for call in listed:
            VAPI_CALL(call)
            VAPI_CALL(client.get(f"/call/{call['id']}").json())
            if call.get("assistantId"):
                VAPI_ASSISTANT(client.get(f"/assistant/{call['assistantId']}").json())
        VAPI_TOOL(client.get(f"/tool/{TOOL['id']}").json())


@pytest.mark.integration
def test_every_fake_retell_answer_parses_with_the_sdk(fake_retell: RunningServer) -> None:
    with httpx.Client(base_url=fake_retell.url,
                      headers={"Authorization": "Bearer test-retell-key"}) as client:
        page = client.post("/v3/list-calls", json={"limit": 2, "include_total": True}).json()
        RETELL_LIST_V3(page)
        ids = [item["call_id"] for item in page["items"]]
        while page["has_more"]:
            page = client.post("/v3/list-calls",
                               json={"limit": 2, "pagination_key": page["pagination_key"]}).json()
            RETELL_LIST_V3(page)
            ids += [item["call_id"] for item in page["items"]]
        assert len(ids) == 3
        for call_id in ids:
            call = client.get(f"/v2/get-call/{call_id}").json()
            RETELL_CALL(call)
            agent = client.get(f"/get-agent/{call['agent_id']}",
                               params={"version": call["agent_version"]}).json()
            RETELL_AGENT(agent)
            engine = agent["response_engine"]
            RETELL_LLM(client.get(f"/get-retell-llm/{engine['llm_id']}",
                                  params={"version": engine["version"]}).json())
        # /v2/list-calls is gone from the SDK; each item it gives is still a current call
        for item in client.post("/v2/list-calls", json={"limit": 10}).json():
            RETELL_CALL(item)
