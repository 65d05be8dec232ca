"""LLM backends without a model: the OpenAI-compatible client over httpx.MockTransport, the
endpoint table, the recorded backend over the demo call, and the scripted fake."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.scripted_llm import Reply, ScriptedLLM, tool_call
from voicereplay.errors import ConfigError, StageAuthError, StageError
from voicereplay.models import Call, ToolCall, Turn
from voicereplay.providers.vapi_payload import parse_call
from voicereplay.simulate.backends import llama_cpp
from voicereplay.simulate.backends.llama_cpp import LlamaCppLLM
from voicereplay.simulate.backends.openai_compat import OpenAICompatibleLLM
from voicereplay.simulate.backends.recorded import RecordedLLM, recorded_steps
from voicereplay.simulate.llm_endpoints import resolve_llm
from voicereplay.simulate.stages import LLMS, ChatRequest, ChatResult
from voicereplay.snapshot import ModelConfig

BASE = "http://llm.test/v1"
KEY = "sk-test-SECRET-0123456789"
TOOLS = [{"type": "function", "function": {"name": "check_status", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}}}}]


def sse(*chunks: Any, done: bool = True) -> list[bytes]:
    events = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
    return events + ([b"data: [DONE]\n\n"] if done else [])


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          usage: dict[str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"object": "chat.completion.chunk", "choices": []}
    if delta is not None or finish is not None:
        body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    if usage is not None:
        body["usage"] = usage
    return body


def streamed(events: list[bytes], pause: float = 0.0) -> httpx.Response:
    def body() -> Iterator[bytes]:
        for number, event in enumerate(events):
            if number and pause:
                time.sleep(pause)
            yield event

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def client(handler: Callable[[httpx.Request], httpx.Response], **options: Any
           ) -> OpenAICompatibleLLM:
    options = {"api_key": KEY, "model": "gpt-4o-mini", "backoff": 0.0, **options}
    return OpenAICompatibleLLM(BASE, transport=httpx.MockTransport(handler), **options)


def ask(text: str = "Where is my order?", **options: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **options)


# ---- OpenAICompatibleLLM -------------------------------------------------------------------

def test_streamed_text_arrives_in_pieces_with_usage_and_the_request_is_openai_shaped() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return streamed(sse(
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Your order "}),
            chunk({"content": "ships today."}),
            chunk({}, finish="stop"),
            chunk(usage={"prompt_tokens": 12, "completion_tokens": 4}),
        ), pause=0.05)

    result = client(handler).complete(ask(temperature=0.3, max_tokens=50, seed=7, tools=TOOLS,
                                          tool_choice="auto"))

    assert result.text == "Your order ships today."
    assert (result.finish_reason, result.prompt_tokens, result.completion_tokens) == ("stop", 12, 4)
    assert 0 < result.ttft < result.latency
    assert result.latency - result.ttft >= 0.1  # the later chunks came after the first
    request = seen[0]
    assert request.url == f"{BASE}/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = json.loads(request.content)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == "gpt-4o-mini"
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.3, 50, 7)
    assert body["tools"] == TOOLS and body["tool_choice"] == "auto"


def test_no_tools_means_no_tool_fields_and_the_request_model_wins() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return streamed(sse(chunk({"content": "hi"}, finish="stop")))

    client(handler).complete(ask(model="llama-3.1-8b", tool_choice="auto"))
    assert "tools" not in bodies[0] and "tool_choice" not in bodies[0]
    assert "seed" not in bodies[0] and bodies[0]["model"] == "llama-3.1-8b"


def test_tool_call_deltas_split_across_chunks_are_assembled_by_index() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return streamed(sse(
            chunk({"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": "call_a", "type": "function",
                 "function": {"name": "check_status", "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"order'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '_id": "44'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '17"}'}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                                   "function": {"name": "issue_refund", "arguments": "{oops"}}]}),
            chunk({}, finish="tool_calls"),
        ))

    result = client(handler).complete(ask(tools=TOOLS))

    assert result.text == "" and result.finish_reason == "tool_calls"
    first, second = result.tool_calls
    assert first == ToolCall(id="call_a", name="check_status", arguments={"order_id": "4417"})
    assert (second.id, second.name, second.arguments) == ("call_b", "issue_refund", {})
    assert second.raw_arguments == "{oops"  # invalid JSON is kept as sent


def test_a_server_that_ignores_stream_answers_one_json_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "One moment.",
                "tool_calls": [{"id": "c1", "type": "function", "function": {
                    "name": "check_status", "arguments": '{"order_id": "4417"}'}}]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 9},
        })

    result = client(handler).complete(ask(tools=TOOLS))

    assert result.text == "One moment."
    assert result.tool_calls == [ToolCall(id="c1", name="check_status",
                                          arguments={"order_id": "4417"})]
    assert (result.prompt_tokens, result.completion_tokens) == (30, 9)


def test_401_is_not_retried_names_the_url_and_never_shows_the_key() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401, json={"error": {"message": f"Incorrect API key: {KEY}"}})

    with pytest.raises(StageAuthError) as info:
        client(handler, key_env="OPENAI_API_KEY").complete(ask())

    message = str(info.value)
    assert info.value.exit_code == 3  # as a provider's AuthError
    assert len(calls) == 1 and not info.value.retryable
    assert info.value.stage == "openai-compatible"
    assert BASE in message and "OPENAI_API_KEY" in message and "401" in message
    assert KEY not in message and KEY[-8:] not in message


def test_404_names_the_model_and_the_base_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"message": "model not found"}})

    with pytest.raises(StageError) as info:
        client(handler).complete(ask())
    assert "'gpt-4o-mini'" in str(info.value) and BASE in str(info.value)
    assert not info.value.retryable


def test_429_is_retried_then_succeeds() -> None:
    answers = iter([httpx.Response(429, json={"error": {"message": "slow down"}}),
                    httpx.Response(503, text="overloaded"),
                    streamed(sse(chunk({"content": "ok"}, finish="stop")))])
    result = client(lambda request: next(answers)).complete(ask())
    assert result.text == "ok"


def test_5xx_after_every_retry_is_a_retryable_stage_error_with_the_servers_words() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(500, json={"error": {"message": "engine crashed"}})

    with pytest.raises(StageError, match="engine crashed") as info:
        client(handler, max_retries=1).complete(ask())
    assert len(calls) == 2 and info.value.retryable


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectError])
def test_timeouts_and_connection_errors_are_retryable(error: type[httpx.TransportError]) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise error("boom", request=request)

    with pytest.raises(StageError) as info:
        client(handler).complete(ask())
    assert info.value.retryable and len(calls) == 3  # the first try and two retries
    assert BASE in str(info.value)


def test_a_timeout_then_an_answer_succeeds() -> None:
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return streamed(sse(chunk({"content": "back"}, finish="stop")))

    assert client(handler).complete(ask()).text == "back"


@pytest.mark.parametrize("events", [
    [b"data: {not json\n\n"],
    [b"data: {\"choices\": 7}\n\n"],
    [b"this is not an event\n\n"],
    [b"data: {\"error\": {\"message\": \"context too long\"}}\n\n"],
])
def test_malformed_streams_are_clear_and_not_retried(events: list[bytes]) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return streamed(events)

    with pytest.raises(StageError) as info:
        client(handler).complete(ask())
    assert not info.value.retryable and len(calls) == 1
    assert BASE in str(info.value)


def test_a_stream_that_stops_before_the_reply_finished_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return streamed(sse(chunk({"content": "Your order"}), done=False))

    with pytest.raises(StageError, match="stream ended before the reply finished") as info:
        client(handler).complete(ask())
    assert not info.value.retryable and len(calls) == 1
    # a finish_reason without [DONE] is a complete reply
    ok = client(lambda r: streamed(sse(chunk({"content": "Hi"}, finish="stop"), done=False)))
    assert ok.complete(ask()).text == "Hi"


def test_a_body_that_is_neither_json_nor_sse_is_a_clear_error() -> None:
    with pytest.raises(StageError, match="neither server-sent events nor JSON"):
        client(lambda request: httpx.Response(200, text="<html>gateway</html>")).complete(ask())
    with pytest.raises(StageError, match="JSON but no chat completion"):
        client(lambda request: httpx.Response(200, json={"ok": True})).complete(ask())


def test_an_error_event_that_echoes_the_key_is_redacted() -> None:
    event = {"error": {"message": f"key {KEY} has no access to this model"}}
    with pytest.raises(StageError, match="has no access") as info:
        client(lambda request: streamed(sse(event))).complete(ask())
    assert KEY not in str(info.value) and "***" in str(info.value)


def test_the_registry_builds_it_and_repr_hides_the_key() -> None:
    llm = LLMS.create("openai-compatible", base_url=f"{BASE}/chat/completions/", api_key=KEY)
    assert isinstance(llm, OpenAICompatibleLLM) and llm.base_url == BASE
    assert KEY not in repr(llm)


def test_missing_local_model_packages_say_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp → ImportError
    llm = LlamaCppLLM(__file__, n_ctx=123)  # any existing file; nothing is loaded yet
    with pytest.raises(ConfigError, match=r"pip install 'voicereplay\[models\]'"):
        llm.complete(ask())
    monkeypatch.setattr(llama_cpp.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install 'voicereplay\[models\]'"):
        LlamaCppLLM()
    with pytest.raises(ConfigError, match="does not exist"):
        LlamaCppLLM("/nowhere/model.gguf")


# ---- resolve_llm -------------------------------------------------------------------------

OPENAI = ModelConfig(provider="openai", name="gpt-4o-mini", seed=3)


def test_a_known_provider_uses_its_url_and_its_key() -> None:
    name, options = resolve_llm(OPENAI, env={"OPENAI_API_KEY": "k1"})
    assert name == "openai-compatible"
    assert options == {"base_url": "https://api.openai.com/v1", "api_key": "k1",
                       "model": "gpt-4o-mini", "key_env": "OPENAI_API_KEY"}
    _, groq = resolve_llm(ModelConfig(provider="groq", name="llama-3.1-8b-instant"),
                          env={"GROQ_API_KEY": "g"})
    assert groq["base_url"] == "https://api.groq.com/openai/v1" and groq["api_key"] == "g"
    with pytest.raises(ConfigError, match="names no model; pass --model NAME"):
        resolve_llm(ModelConfig(provider="groq"), env={"GROQ_API_KEY": "g"})
    _, together = resolve_llm(ModelConfig(provider="together-ai", name="m"), api_key="explicit",
                              env={})
    assert together["base_url"] == "https://api.together.xyz/v1"
    assert together["api_key"] == "explicit"


def test_a_missing_key_says_what_the_snapshot_names_and_what_to_pass() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_llm(OPENAI, env={})
    assert str(info.value) == (
        "the snapshot's model is openai/gpt-4o-mini but OPENAI_API_KEY is not set; set it, or "
        "pass --llm-base-url URL (any OpenAI-compatible server) or --model local to use the "
        "embedded SmolLM2")


@pytest.mark.parametrize("provider", ["anthropic", "google", "mistral", None, "acme-llm"])
def test_providers_without_an_openai_endpoint_get_the_same_advice(provider: str | None) -> None:
    model = ModelConfig(provider=provider, name="some-model")
    with pytest.raises(ConfigError) as info:
        resolve_llm(model, env={"OPENAI_API_KEY": "k"})
    message = str(info.value)
    assert "some-model" in message and "--llm-base-url URL" in message
    assert "--model local" in message
    if provider:
        assert f"{provider}/some-model" in message


def test_a_base_url_override_never_receives_a_providers_key() -> None:
    env = {"OPENAI_API_KEY": "k1"}
    name, options = resolve_llm(OPENAI, base_url="http://127.0.0.1:8080/v1", env=env)
    assert name == "openai-compatible"
    assert options["base_url"] == "http://127.0.0.1:8080/v1" and options["api_key"] is None
    assert options["model"] == "gpt-4o-mini"
    _, own = resolve_llm(OPENAI, base_url="https://api.openai.com/v1/", env=env)
    assert own["api_key"] == "k1"
    _, given = resolve_llm(OPENAI, base_url="http://x/v1", api_key="mine", model_name="qwen",
                           env=env)
    assert (given["api_key"], given["model"]) == ("mine", "qwen")


def test_azure_needs_a_resource_url_and_sends_its_key_as_api_key() -> None:
    azure = ModelConfig(provider="azure-openai", name="gpt-4o")
    with pytest.raises(ConfigError, match="--llm-base-url https://RESOURCE.openai.azure.com"):
        resolve_llm(azure, env={"AZURE_OPENAI_API_KEY": "az"})
    url = "https://acme.openai.azure.com/openai/v1"
    _, options = resolve_llm(azure, base_url=url, env={"AZURE_OPENAI_API_KEY": "az"})
    assert options["headers"] == {"api-key": "az"} and "api_key" not in options
    with pytest.raises(ConfigError, match="AZURE_OPENAI_API_KEY is not set"):
        resolve_llm(azure, base_url=url, env={})


def test_custom_llm_uses_its_own_http_url_but_not_a_retell_websocket() -> None:
    vapi = ModelConfig(provider="custom-llm", name="https://llm.acme.com/v1")
    assert resolve_llm(vapi, env={})[1]["base_url"] == "https://llm.acme.com/v1"
    retell = ModelConfig(provider="custom-llm", name="wss://llm.acme.com/ws")
    with pytest.raises(ConfigError, match="websocket"):
        resolve_llm(retell, env={})
    _, options = resolve_llm(retell, base_url="http://127.0.0.1:9/v1", env={})
    assert options["base_url"] == "http://127.0.0.1:9/v1" and options["model"] is None


def test_local_gguf_and_recorded_choices() -> None:
    assert resolve_llm(OPENAI, model_name="local", env={}) == (
        "llama-cpp", {"model_path": None, "seed": 3})
    assert resolve_llm(OPENAI, backend="llama-cpp", env={})[0] == "llama-cpp"
    assert resolve_llm(OPENAI, model_name="/models/qwen.Q4.GGUF", env={}) == (
        "llama-cpp", {"model_path": "/models/qwen.Q4.GGUF", "seed": 3})
    assert resolve_llm(OPENAI, backend="recorded", env={}) == ("recorded", {})


# ---- RecordedLLM ---------------------------------------------------------------------------

@pytest.fixture
def demo_call(fixtures_dir: Path) -> Call:
    payload = json.loads((fixtures_dir / "demo" / "demo-refund.json").read_text())
    return parse_call(payload, source="demo-refund.json")


def test_recorded_steps_of_the_demo_call_put_the_refund_where_it_happened(demo_call: Call) -> None:
    steps = recorded_steps(demo_call, skip_first_message=True)
    agent_texts = [t.text for t in demo_call.turns if t.role == "agent"]

    assert [s.text for s in steps] == [*agent_texts[1:3], "", *agent_texts[3:]]
    refund = steps[2]
    assert [c.name for c in refund.tool_calls] == ["issue_refund"]
    assert refund.tool_calls[0].arguments == {"order_id": "4417", "reason": "customer inquiry"}
    assert refund.finish_reason == "tool_calls"
    assert all(not s.tool_calls for i, s in enumerate(steps) if i != 2)
    kept = recorded_steps(demo_call, skip_first_message=False)
    assert kept[0].text == agent_texts[0] and len(kept) == len(steps) + 1


def test_recorded_llm_replays_the_steps_in_order_then_stops(demo_call: Call) -> None:
    steps = recorded_steps(demo_call, skip_first_message=True)
    llm = LLMS.create("recorded", steps=steps)
    results = [llm.complete(ask()) for _ in range(len(steps) + 1)]

    assert [r.text for r in results[:-1]] == [s.text for s in steps]
    assert results[2].tool_calls[0].name == "issue_refund"
    assert results[-1] == ChatResult(text="", finish_reason="stop", ttft=results[-1].ttft,
                                     latency=results[-1].latency)


def test_text_said_with_tool_calls_is_one_step_and_parallel_calls_merge() -> None:
    def calls(*names: str) -> Turn:
        return Turn(role="tool_call", tool_calls=[ToolCall(id=n, name=n) for n in names])

    call = Call(provider="vapi", call_id="c", turns=[
        Turn(role="user", text="Hello?"),  # the caller spoke first: no first message to skip
        Turn(role="agent", text="Hi! Let me look that up."), calls("a"), calls("b", "c"),
        Turn(role="tool_result"), calls("d"), Turn(role="tool_result"),
        Turn(role="agent", text="Done."),
    ])
    steps = recorded_steps(call, skip_first_message=True)
    assert [(s.text, [c.name for c in s.tool_calls]) for s in steps] == [
        ("Hi! Let me look that up.", ["a", "b", "c"]), ("", ["d"]), ("Done.", [])]
    replayed = RecordedLLM(steps).complete(ask())
    assert replayed.text == "Hi! Let me look that up." and len(replayed.tool_calls) == 3


# ---- ScriptedLLM -------------------------------------------------------------------------

def test_scripted_llm_answers_by_keyword_retries_failures_and_reports_fake_latency() -> None:
    llm = ScriptedLLM({
        "4417": Reply(text="Checking.", tool_calls=[tool_call("check_status", order_id="4417")]),
        0: "Thanks for calling!",
    }, default="Sorry?", ttft=0.4, duration=0.6, failures=2)

    first = llm.complete(ask("hello"))
    assert first.text == "Thanks for calling!" and llm.attempts == 3  # two failures, retried
    assert (first.ttft, first.latency) == (0.4, 1.0)
    second = llm.complete(ask("it's 4417"))
    assert second.text == "Checking." and second.tool_calls[0].arguments == {"order_id": "4417"}
    assert llm.complete(ask("mumble")).text == "Sorry?"
    assert len(llm.requests) == 3


def test_replay_seed_reaches_the_tts_backends_that_take_one() -> None:
    from voicereplay.pipeline.replaying import _seeded
    from voicereplay.simulate.stages import TTS

    assert _seeded(TTS.factory("piper"), 3) == {"seed": 3}
    assert _seeded(TTS.factory("piper-caller"), 3) == {"seed": 3}
    assert TTS.create("piper-caller", **_seeded(TTS.factory("piper-caller"), 3)).seed == 3
    assert _seeded(TTS.factory("openai-speech"), 3) == {}
    assert _seeded(TTS.factory("piper"), None) == {}


def test_a_429_retry_after_is_honoured_by_the_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("voicereplay.simulate.stages.time.sleep", slept.append)
    answers = iter([httpx.Response(429, headers={"Retry-After": "4"}, json={}),
                    httpx.Response(503, text="overloaded"),
                    streamed(sse(chunk({"content": "ok"}, finish="stop")))])
    result = client(lambda request: next(answers), backoff=0.0).complete(ask())
    assert result.text == "ok"
    assert slept == [4.0, 0.0]  # the server's wait, then the (zero) backoff
