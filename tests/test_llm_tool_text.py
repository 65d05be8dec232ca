"""Tool calls written as text, in both LLM backends, without loading a model.

The OpenAI-compatible client over ``httpx.MockTransport`` (streamed SSE and one JSON body) and
over real HTTP against the scripted fake server, whose small "model" writes its calls into
``content``; an LLM server's 401/403 as an error that exits 3 with the key masked, also through
the replay engine; and the in-process backend's prompt plumbing — messages rendered by a
Qwen-style chat template (past arguments as objects, never encoded twice), the grammar that
forces a call, and a call cut off by ``max_tokens``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.chat_templates import QWEN_STYLE
from tests.fakes.openai_chat import chat_app
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fakes.server import serve
from tests.test_replay_engine import demo, replay  # noqa: F401  (demo is a fixture)
from voicereplay.errors import StageAuthError
from voicereplay.models import Call
from voicereplay.simulate.backends import llama_cpp
from voicereplay.simulate.backends.openai_compat import OpenAICompatibleLLM
from voicereplay.simulate.stages import ChatRequest
from voicereplay.snapshot import AgentSnapshot

BASE = "http://llm.test/v1"
KEY = "sk-test-SECRET-0123456789"
TOOLS = [{"type": "function", "function": {
    "name": "check_status", "description": "Look up an order's shipping status.",
    "parameters": {"type": "object", "required": ["order_id"], "properties": {
        "order_id": {"type": "string"}}}}}]
QWEN_CALL = ('<tool_call>\n{"name": "check_status", "arguments": {"order_id": "4417"}}\n'
             '</tool_call>')


def sse(*pieces: str, finish: str = "stop") -> httpx.Response:
    chunks = [{"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
              for p in pieces]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def client(answer: httpx.Response) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(BASE, api_key=KEY, model="small", backoff=0.0,
                               transport=httpx.MockTransport(lambda request: answer))


def ask(**options: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": "Where is order 4417?"}],
                       **options)


# ---- OpenAI-compatible servers whose model writes the call as text ----------------------------

def test_a_streamed_qwen_call_in_content_becomes_a_tool_call_and_is_not_said() -> None:
    pieces = ["Let me check.", "\n<tool_", "call>\n{\"name\": \"check_status\", ",
              "\"arguments\": {\"order_id\": 4417}}\n</tool_call>"]
    result = client(sse(*pieces)).complete(ask(tools=TOOLS))

    assert result.text == "Let me check."
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("check_status", {"order_id": "4417"})]  # 4417 converted to the schema's string
    assert result.finish_reason == "tool_calls"


def test_a_whole_json_answer_with_a_fenced_call_becomes_a_tool_call() -> None:
    content = ('Sure, checking now.\n```json\n{"name": "check_status", "arguments": '
               '{"order_id": "4417"}}\n```')
    answer = httpx.Response(200, json={"choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"content": content}}]})
    result = client(answer).complete(ask(tools=TOOLS))
    assert result.text == "Sure, checking now."
    assert [c.name for c in result.tool_calls] == ["check_status"]


def test_text_calls_are_only_read_when_tools_are_offered() -> None:
    assert client(sse(QWEN_CALL)).complete(ask()).text == QWEN_CALL.strip()
    none = client(sse(QWEN_CALL)).complete(ask(tools=TOOLS, tool_choice="none"))
    assert none.text == QWEN_CALL.strip() and not none.tool_calls


def test_unfitting_arguments_keep_the_call_and_are_logged(caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    bad = '<tool_call>{"name": "check_status", "arguments": {"order": "4417"}}</tool_call>'
    with caplog.at_level(logging.WARNING):
        result = client(sse(bad)).complete(ask(tools=TOOLS))
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("check_status", {"order": "4417"})]
    assert "'order_id' is a required property" in caplog.text and KEY not in caplog.text


def test_over_real_http_a_small_model_writing_calls_as_text_calls_the_tool() -> None:
    bodies: list[dict[str, Any]] = []
    llm = ScriptedLLM({"4417": "One moment. " + QWEN_CALL}, default="Hello!")
    with serve(chat_app(llm, bodies)) as server:
        remote = OpenAICompatibleLLM(f"{server.url}/v1", model="qwen2.5:0.5b", backoff=0.0)
        try:
            result = remote.complete(ask(tools=TOOLS))
            plain = remote.complete(ChatRequest(messages=[{"role": "user", "content": "hi"}],
                                                tools=TOOLS))
        finally:
            remote.close()

    assert result.text == "One moment."
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("check_status", {"order_id": "4417"})]
    assert result.finish_reason == "tool_calls"
    assert (plain.text, plain.tool_calls, plain.finish_reason) == ("Hello!", [], "stop")
    assert bodies[0]["tools"] == TOOLS


# ---- an LLM server that refuses the key ----------------------------------------------------

@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_an_auth_error_that_exits_3_without_the_key(status: int) -> None:
    answer = httpx.Response(status, json={"error": {"message": f"bad key {KEY}"}})
    with pytest.raises(StageAuthError) as info:
        client(answer).complete(ask())
    assert info.value.exit_code == 3 and str(status) in str(info.value)
    assert KEY not in str(info.value) and "the API key was rejected" in str(info.value)


def test_through_the_replay_engine_a_refused_key_still_exits_3(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:  # noqa: F811
    call, snapshot = demo
    answer = httpx.Response(401, json={"error": {"message": f"Incorrect API key {KEY}"}})
    with pytest.raises(StageAuthError) as info:
        replay(call, snapshot, tmp_path / "out", llm=client(answer))
    assert info.value.exit_code == 3
    assert "caller turn" in str(info.value) and KEY not in str(info.value)


# ---- the in-process backend's plumbing (no model loaded) -----------------------------------

HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are Sam."},
    {"role": "user", "content": "Where is order 4417?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
     "function": {"name": "check_status", "arguments": '{"order_id": "4417"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
]


def test_a_tools_aware_template_gets_past_arguments_as_objects_not_encoded_twice() -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    messages = llama_cpp._messages(HISTORY, tools_aware=True)
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == {"order_id": "4417"}
    assert messages[2]["content"] == ""  # a template may concatenate it
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "name": "check_status",
                           "content": '{"status": "shipped"}'}
    prompt = Jinja2ChatFormatter(QWEN_STYLE, eos_token="<|im_end|>", bos_token="")(
        messages=messages, tools=TOOLS).prompt

    assert '{"name": "check_status", "arguments": {"order_id": "4417"}}' in prompt
    assert '\\"order_id\\"' not in prompt  # a JSON string would have come out encoded twice
    assert '"name": "check_status", "description"' in prompt  # the tools reach the model
    assert "<tool_response>\n{\"status\": \"shipped\"}" in prompt


def test_a_template_without_tools_gets_results_as_bracketed_user_messages() -> None:
    messages = llama_cpp._messages(HISTORY, tools_aware=False)
    assert messages == [
        {"role": "system", "content": "You are Sam."},
        {"role": "user", "content": "Where is order 4417?"},
        {"role": "user", "content": '[check_status returned: {"status": "shipped"}]'},
    ]


def test_a_forced_call_follows_a_grammar_with_free_text_bounded() -> None:
    schema = {"type": "object", "properties": {
        "reason": {"type": "string"}, "code": {"type": "string", "enum": ["a", "b"]},
        "notes": {"type": "array", "items": {"type": "string"}}}}
    bounded = llama_cpp._bounded(schema)
    assert bounded["properties"]["reason"]["maxLength"] == 120
    assert bounded["properties"]["notes"]["items"]["maxLength"] == 120
    assert "maxLength" not in bounded["properties"]["code"]
    assert "maxLength" not in schema["properties"]["reason"]  # the tool itself is unchanged
    grammar = llama_cpp._call_grammar(TOOLS)._grammar
    assert '"\\"check_status\\""' in grammar and "order-id" in grammar

    forced = {"type": "function", "function": {"name": "check_status"}}
    assert llama_cpp._forced(forced, TOOLS) == TOOLS
    assert llama_cpp._forced("required", TOOLS) == TOOLS
    assert llama_cpp._forced("auto", TOOLS) == [] and llama_cpp._forced(forced, []) == []
    with pytest.raises(Exception, match=r"names 'refund', which is not among .*check_status"):
        llama_cpp._forced({"type": "function", "function": {"name": "refund"}}, TOOLS)


def test_a_forced_call_cut_off_by_max_tokens_keeps_its_name_and_partial_arguments() -> None:
    call = llama_cpp._unfinished_call('{ "name" : "check_status", "arguments" : {"order_id": "44',
                                      TOOLS)
    assert (call.name, call.arguments, call.raw_arguments) == (
        "check_status", {}, '{"order_id": "44')


def test_the_template_is_read_from_the_gguf_metadata() -> None:
    class Loaded:
        metadata = {"tokenizer.chat_template": QWEN_STYLE}

    assert llama_cpp._template(Loaded()) == QWEN_STYLE
    llm = llama_cpp.LlamaCppLLM(__file__)  # any existing file; load() is replaced below
    llm.load = Loaded  # type: ignore[method-assign]
    assert llm.sees_tools is True
    assert llama_cpp._template(object()) == ""
