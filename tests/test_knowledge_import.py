"""Knowledge-base context captured into the call: Vapi messages and query-tool results, Retell's
retrieved-contents file fetched on import over real HTTP (a fake Retell API on 127.0.0.1)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import retell_samples, vapi_samples
from tests.fakes.retell_api import FakeRetellAPI, make_retell_app
from tests.fakes.server import RunningServer, serve
from voicereplay import knowledge
from voicereplay.config import Settings
from voicereplay.models import Call
from voicereplay.pipeline import import_calls
from voicereplay.providers.files import FilesProvider
from voicereplay.providers.retell import RetellProvider
from voicereplay.providers.retell_knowledge import parse_retrieved
from voicereplay.providers.retell_payload import parse_call as parse_retell
from voicereplay.providers.vapi_payload import build_snapshot
from voicereplay.providers.vapi_payload import parse_call as parse_vapi
from voicereplay.providers.webhook import WebhookSource
from voicereplay.store import Store

KNOWLEDGE = Path(__file__).resolve().parent.parent / "fixtures" / "knowledge"
VAPI_KB_CALL = "8a626c8c-dff0-53d9-823e-cb2351ec20ef"  # fixtures/knowledge/vapi-knowledge.json
RETELL_KB_CALL = "call_b6e5933b6101c8a760c7a6c46acc"  # fixtures/knowledge/retell-knowledge.json
T0 = vapi_samples.T0
POLICY = "Orders ship within 2 business days. Tracking is emailed when the parcel leaves."
KB_MESSAGE = {
    "role": "knowledge-base", "message": POLICY, "query": "when does my order ship",
    "time": T0 + 6300, "secondsFromStart": 6.3,
    "documents": [{"content": POLICY, "similarity": 0.87, "uuid": "doc-shipping-1"}],
}
QUERY_TOOL = {"type": "query", "function": {"name": "store-docs"},
              "knowledgeBases": [{"provider": "google", "name": "store-docs",
                                  "description": "Shipping and returns", "fileIds": ["f-1"]}]}


def vapi_call(*extra: dict[str, Any]) -> dict[str, Any]:
    body = vapi_samples.call()
    body["artifact"]["messages"] = [*body["artifact"]["messages"], *extra]
    body["messages"] = copy.deepcopy(body["artifact"]["messages"])
    return body


# -- Vapi -------------------------------------------------------------------------------------
def test_a_knowledge_base_message_belongs_to_the_next_agent_turn_and_adds_no_turn() -> None:
    plain = parse_vapi(vapi_call())
    call = parse_vapi(vapi_call(KB_MESSAGE))
    assert [t.model_dump() for t in call.turns] == [t.model_dump() for t in plain.turns]
    [context] = call.knowledge
    assert context.source == "vapi-message" and context.query == "when does my order ship"
    # after the caller's question (4.0 s) and before the tool call (6.8 s): the agent turn
    # that followed is "It shipped yesterday."
    assert call.turns[context.turn or 0].role == "agent"
    assert call.turns[context.turn or 0].text == "It shipped yesterday."
    assert context.at == pytest.approx(6.3)
    assert context.content == POLICY
    assert [(d.content, d.score, d.id) for d in context.documents] == [
        (POLICY, 0.87, "doc-shipping-1")]
    assert plain.knowledge == []


def test_a_knowledge_base_message_with_only_documents_and_one_without_content() -> None:
    documents_only = {k: v for k, v in KB_MESSAGE.items() if k != "message"}
    empty = {"role": "knowledge-base", "message": "", "time": T0 + 6400}
    call = parse_vapi(vapi_call(documents_only, empty))
    [context] = call.knowledge  # the empty one holds nothing to serve
    assert context.text == "" and context.content == POLICY
    assert knowledge.message(context)["content"] == (
        "Knowledge base results for 'when does my order ship':\n" + POLICY)


def test_query_tool_results_of_an_inline_assistant_are_knowledge() -> None:
    body = vapi_call(
        {"role": "tool_calls", "message": "", "time": T0 + 9500, "secondsFromStart": 9.5,
         "toolCalls": [{"id": "call_kb", "type": "function",
                        "function": {"name": "store-docs",
                                     "arguments": json.dumps({"query": "return window"})}}]},
        {"role": "tool_call_result", "toolCallId": "call_kb", "name": "store-docs",
         "result": "Returns are accepted within 30 days.", "time": T0 + 9800},
        {"role": "bot", "message": "You have 30 days to return it.", "time": T0 + 10000,
         "endTime": T0 + 10400})
    body["assistant"] = {**vapi_samples.assistant(), "id": "a-sam"}
    body["assistant"]["model"]["tools"] = [*body["assistant"]["model"].get("tools", []),
                                           QUERY_TOOL]
    call = parse_vapi(body)
    [context] = call.knowledge
    assert (context.source, context.query, context.text, context.tool_call_id) == (
        "vapi-tool", "return window", "Returns are accepted within 30 days.", "call_kb")
    assert call.turns[context.turn or 0].text == "You have 30 days to return it."
    # check_status (a function tool) is not knowledge
    assert all(k.tool_call_id != "call_1" for k in call.knowledge)


def test_query_tools_known_only_from_the_fetched_assistant_are_added_once() -> None:
    body = vapi_call(
        {"role": "tool_calls", "message": "", "time": T0 + 9500,
         "toolCalls": [{"id": "call_kb", "type": "function",
                        "function": {"name": "store-docs", "arguments": "{}"}}]},
        {"role": "tool_call_result", "toolCallId": "call_kb", "name": "store-docs",
         "result": "Returns: 30 days.", "time": T0 + 9800},
        {"role": "bot", "message": "Thirty days.", "time": T0 + 10000, "endTime": T0 + 10400})
    call = parse_vapi(body)
    assert call.knowledge == []  # GET /call has only the assistant id
    assistant = vapi_samples.assistant()
    assistant["model"]["tools"] = [*assistant["model"].get("tools", []), QUERY_TOOL]
    names = knowledge.tool_names(build_snapshot(call, assistant))
    assert names == {"store-docs"}
    once = knowledge.from_tool_results(call, names)
    twice = knowledge.from_tool_results(once, names)
    assert len(once.knowledge) == 1 and twice.knowledge == once.knowledge
    assert once.knowledge[0].query is None and once.knowledge[0].content == "Returns: 30 days."


def test_a_stored_call_without_the_new_fields_still_loads() -> None:
    data = parse_vapi(vapi_call()).model_dump(mode="json")
    del data["knowledge"], data["warnings"]
    call = Call.model_validate(data)
    assert call.knowledge == [] and call.warnings == []


# -- Retell: the retrieved-contents file ---------------------------------------------------------
def retell_body(*, response_ids: bool = True) -> dict[str, Any]:
    body = retell_samples.sample_call("call_kb1")
    if response_ids:
        for entry, response in ((body["transcript_object"][2], 1),
                                (body["transcript_object"][5], 3)):
            entry["metadata"] = {"response_id": response}
    body["knowledge_base_retrieved_contents_url"] = (
        "https://dxc03zgurdly9.cloudfront.net/call_kb1/kb_retrieved_contents.txt")
    return body


RETRIEVED = [
    {"response_id": 1, "retrieved_contents": [
        {"content": "Appointments can be moved up to 24 hours ahead.", "score": 0.91}]},
    {"response_id": 3, "query": "goodbye", "retrieved_contents": ["Closing: thank the patient."]},
]


def test_retrieved_contents_are_matched_by_response_id() -> None:
    call = parse_retell(retell_body())
    contexts, note = parse_retrieved(json.dumps(RETRIEVED), call)
    assert note is None
    assert [(call.turns[c.turn or 0].text, c.source) for c in contexts] == [
        ("Let me check.", "retell-url"), ("Done. Goodbye!", "retell-url")]
    assert contexts[0].documents[0].score == 0.91 and contexts[1].query == "goodbye"


def test_retrieved_contents_without_response_ids_are_attached_in_order_and_say_so() -> None:
    call = parse_retell(retell_body(response_ids=False))
    three = [*RETRIEVED, {"response_id": 7, "contents": "More."}]
    contexts, note = parse_retrieved(json.dumps(three), call)
    assert [c.turn for c in contexts] == [2, 10, None]  # the agent's answers to the caller
    assert note is not None and "in order" in note and "1 left without a turn" in note
    by_id = json.dumps({"1": ["Moved up to 24 h ahead."]})  # a response id → contents map
    [mapped], none = parse_retrieved(by_id, parse_retell(retell_body()))
    assert mapped.turn == 2 and none is None


def test_a_retrieved_contents_file_that_is_not_json_is_kept_unplaced() -> None:
    call = parse_retell(retell_body())
    [context], note = parse_retrieved("response 1: moved up to 24 h ahead", call)
    assert context.turn is None and context.text.startswith("response 1")
    assert note is not None and "not served" in note
    assert parse_retrieved("  ", call) == ([], None)


# -- Retell: fetched on import over HTTP ---------------------------------------------------------
@pytest.fixture
def retell_api() -> Iterator[tuple[FakeRetellAPI, RunningServer]]:
    app = FakeRetellAPI()
    with serve(app) as server:
        yield app, server


def test_import_fetches_the_retrieved_contents_without_the_api_key(
        retell_api: tuple[FakeRetellAPI, RunningServer]) -> None:
    app, server = retell_api
    app.add_call(retell_body(), agent=retell_samples.sample_agent(),
                 llm=retell_samples.sample_llm(), knowledge=json.dumps(RETRIEVED).encode())
    store = Store.from_settings(Settings.from_env())
    with RetellProvider("test-retell-key", server.url) as provider:
        [outcome] = import_calls(store, provider, ["call_kb1"], recordings=False)
    assert outcome.ok and outcome.warnings == []
    stored = store.get_call("call_kb1", "retell")
    assert [(k.turn, k.documents[0].content) for k in stored.knowledge] == [
        (2, "Appointments can be moved up to 24 hours ahead."),
        (10, "Closing: thank the patient.")]
    fetched = [r for r in server.requests if r.path == "/knowledge/call_kb1"]
    assert len(fetched) == 1 and "authorization" not in fetched[0].headers


def test_an_expired_retrieved_contents_url_is_a_warning_not_a_failure(
        retell_api: tuple[FakeRetellAPI, RunningServer]) -> None:
    app, server = retell_api
    app.add_call(retell_body(), agent=retell_samples.sample_agent(),
                 llm=retell_samples.sample_llm())  # no file: the URL answers 404
    store = Store.from_settings(Settings.from_env())
    with RetellProvider("test-retell-key", server.url, max_retries=0) as provider:
        [outcome] = import_calls(store, provider, ["call_kb1"], recordings=False)
    assert outcome.status == "created"
    stored = store.get_call("call_kb1", "retell")
    assert stored.knowledge == []
    [warning] = stored.warnings
    assert "HTTP 404" in warning and "expired" in warning and warning in outcome.warnings


# -- the bundled knowledge fixtures ---------------------------------------------------------------
def _summary(call: Call) -> list[tuple[str, str, str | None, str]]:
    return [(k.source, call.turns[k.turn].text[:24] if k.turn is not None else "-", k.query,
             k.content[:32]) for k in call.knowledge]


def test_the_knowledge_fixtures_import_with_a_context_per_informed_turn() -> None:
    store = Store.from_settings(Settings.from_env())
    with FilesProvider(KNOWLEDGE) as source:
        outcomes = import_calls(store, source, recordings=False)
    assert [(o.status, o.warnings) for o in outcomes] == [("created", [])] * 2
    assert _summary(store.get_call(VAPI_KB_CALL)) == [
        ("vapi-message", "Yes, you can. Used tents", "return a used tent after three weeks",
         "Returns: unused gear can be retu"),
        ("vapi-tool", "Once the tent reaches ou", "refund processing time",
         "Refunds go back to the original "),
    ]
    retell = store.get_call(RETELL_KB_CALL, "retell")
    assert _summary(retell) == [
        ("retell-url", "We do. Saturday walk-ins", None, "Saturday walk-in hours are 9 AM "),
        ("retell-url", "Yes, please bring proof ", None, "New patients must bring proof of"),
    ]
    assert [d.score for d in retell.knowledge[0].documents] == [0.91, 0.74]


def test_the_retell_fixture_over_http_gets_what_the_exported_folder_has() -> None:
    with FilesProvider(KNOWLEDGE) as files:
        exported = files.fetch_knowledge(files.get_call(RETELL_KB_CALL))
    with serve(make_retell_app([KNOWLEDGE])) as server, \
            RetellProvider("test-retell-key", server.url) as provider:
        store = Store.from_settings(Settings.from_env())
        [outcome] = import_calls(store, provider, [RETELL_KB_CALL], recordings=False)
    assert outcome.ok and outcome.warnings == []
    fetched = store.get_call(RETELL_KB_CALL, "retell")
    assert fetched.knowledge == exported.knowledge and len(fetched.knowledge) == 2


def test_a_retell_webhook_call_gets_its_contents_without_a_key(
        retell_api: tuple[FakeRetellAPI, RunningServer]) -> None:
    app, server = retell_api
    app.add_call(retell_body(), knowledge=json.dumps(RETRIEVED).encode())
    served = RetellProvider("test-retell-key", server.url).http.get_json(
        "/v2/get-call/call_kb1", what="the call")  # the URL as the fake API rewrote it
    call = parse_retell({"event": "call_analyzed", "call": served})
    with WebhookSource(call, RetellProvider(None, server.url)) as source:
        fetched = source.fetch_knowledge(call)
    assert [k.turn for k in fetched.knowledge] == [2, 10] and fetched.warnings == []


def test_a_reimport_after_the_url_expired_keeps_the_contents_it_had(
        retell_api: tuple[FakeRetellAPI, RunningServer]) -> None:
    app, server = retell_api
    app.add_call(retell_body(), agent=retell_samples.sample_agent(),
                 llm=retell_samples.sample_llm(), knowledge=json.dumps(RETRIEVED).encode())
    store = Store.from_settings(Settings.from_env())
    with RetellProvider("test-retell-key", server.url, max_retries=0) as provider:
        import_calls(store, provider, ["call_kb1"], recordings=False)
        first = store.get_call("call_kb1", "retell").knowledge
        del app.knowledge["call_kb1"]  # a day later: the URL answers 404
        [outcome] = import_calls(store, provider, ["call_kb1"], recordings=False)
    stored = store.get_call("call_kb1", "retell")
    assert len(first) == 2 and stored.knowledge == first
    assert "HTTP 404" in stored.warnings[0] and "kept the 2" in stored.warnings[1]
    assert outcome.ok and outcome.warnings == stored.warnings
