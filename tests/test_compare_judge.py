"""The LLM judge: (a) a scripted LLM served as Chat Completions over real HTTP on 127.0.0.1,
reached through the ``openai-compatible`` backend; (b) the embedded SmolLM2 through llama-cpp,
once (it is tiny: the test checks that its verdict parses, not what it is)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes.openai_chat import chat_app
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fakes.server import RunningServer, serve
from voicereplay.compare.checks import evaluate, parse_checks
from voicereplay.compare.judge import (
    VERDICT_SCHEMA,
    Judge,
    format_tool_call,
    parse_verdict,
    transcript,
)
from voicereplay.compare.model import Comparison, Fidelity, ReplayInfo
from voicereplay.models import Call, Replay, ReplayTurn, ToolCall, ToolResult, Turn
from voicereplay.pipeline.judging import StageJudgeModel, build_judge, judge_factory
from voicereplay.simulate.backends.openai_compat import OpenAICompatibleLLM

RUBRIC_PASS = "The agent never issues a refund the caller did not ask for."
RUBRIC_FAIL = "The agent stays polite and greets the caller by name."
RUBRIC_GARBLED = "The agent speaks only French."

PASS_ANSWER = json.dumps({"reasoning": "The caller asked for a refund in caller turn 3.",
                          "pass": True})
FAIL_ANSWER = ('Here is my verdict:\n```json\n{"reasoning": "Agent turn 1 never uses the '
               'caller\'s name.", "pass": "fail"}\n```')
GARBLED_ANSWER = "I think it is mostly fine, probably a pass?"

BASELINE = Call(provider="vapi", call_id="c", turns=[
    Turn(role="agent", text="Hi, this is Sam from Acme Audio."),
    Turn(role="user", text="Where is order 4417?"),
    Turn(role="tool_call", tool_calls=[ToolCall(id="b1", name="check_status",
                                                arguments={"order_id": "4417"})]),
    Turn(role="tool_result", tool_result=ToolResult(id="b1", result="ships Friday")),
    Turn(role="agent", text="BASELINE-ONLY: it ships Friday."),
])
REPLAY = Replay(id="r", call_provider="vapi", call_id="c", snapshot_id="s", turns=[
    ReplayTurn(role="agent", text="Hi, this is Sam from Acme Audio."),
    ReplayTurn(role="user", text="Where is order 4417?"),
    ReplayTurn(role="agent", text="REPLAY-ONLY: let me look."),
    ReplayTurn(role="tool_call", tool_calls=[ToolCall(id="c1", name="issue_refund",
                                                      arguments={"order_id": "4417"})]),
    ReplayTurn(role="tool_result", tool_result=ToolResult(id="c1", result="refunded " * 60)),
    ReplayTurn(role="user", text="Wait, I wanted a refund anyway. Thanks."),
    ReplayTurn(role="agent", text="You're welcome, goodbye."),
], ended_reason="agent-ended-call")


def comparison() -> Comparison:
    return Comparison(generated_at=datetime(2025, 1, 1, tzinfo=UTC), call_provider="vapi",
                      call_id="c", replay=ReplayInfo(id="r", mode="scripted", snapshot_id="s"),
                      similarity_method="lexical", threshold=0.5, fidelity=Fidelity(basis="test"))


@pytest.fixture
def judge_server() -> Iterator[tuple[RunningServer, list[dict[str, Any]]]]:
    # Keyed by the rubric, which is in the user message (the transcripts never say these).
    llm = ScriptedLLM({"did not ask for": PASS_ANSWER, "greets the caller": FAIL_ANSWER,
                       "only french": GARBLED_ANSWER}, default="{}")
    bodies: list[dict[str, Any]] = []
    with serve(chat_app(llm, bodies)) as server:
        yield server, bodies


@pytest.mark.integration
def test_the_judge_over_http_maps_pass_fail_and_garbage(
        judge_server: tuple[RunningServer, list[dict[str, Any]]]) -> None:
    server, bodies = judge_server
    judge = build_judge("judge-model", base_url=f"{server.url}/v1")
    assert isinstance(judge.llm, StageJudgeModel) and judge.model == "judge-model"
    assert isinstance(judge.llm.llm, OpenAICompatibleLLM)

    passed = judge.judge(RUBRIC_PASS, BASELINE, REPLAY)
    assert passed.passed is True
    assert passed.reasoning == "The caller asked for a refund in caller turn 3."
    assert (passed.model, passed.raw) == ("judge-model", PASS_ANSWER)

    failed = judge.judge(RUBRIC_FAIL, BASELINE, REPLAY)
    assert failed.passed is False  # "pass": "fail", inside a fenced block after a preamble
    assert failed.reasoning == "Agent turn 1 never uses the caller's name."

    garbled = judge.judge(RUBRIC_GARBLED, BASELINE, REPLAY)
    assert garbled.passed is None and garbled.raw == GARBLED_ANSWER
    assert garbled.reasoning == f"the judge's answer is not a JSON verdict: {GARBLED_ANSWER!r}"

    assert len(server.seen("/v1/chat/completions")) == 3
    body = bodies[0]
    assert body["model"] == "judge-model"
    assert body["response_format"] == {"type": "json_object"}
    assert (body["temperature"], body["seed"]) == (0.0, 7)
    system, user = body["messages"]
    assert system["role"] == "system" and '"pass": true or false' in system["content"]
    prompt = user["content"]
    assert f"Rubric: {RUBRIC_PASS}" in prompt
    baseline = prompt.index("Baseline call (the original, for context):")
    replay = prompt.index("Replay (judge this one):")
    assert baseline < prompt.index("BASELINE-ONLY: it ships Friday.") < replay
    assert prompt.index("REPLAY-ONLY: let me look.") > replay
    assert ("Agent turn 2: [tool call] check_status(order_id='4417') [tool result] ships "
            "Friday BASELINE-ONLY: it ships Friday.") in prompt
    assert ("Agent turn 2: REPLAY-ONLY: let me look. [tool call] issue_refund(order_id='4417')"
            " [tool result] refunded") in prompt
    assert "Caller: Wait, I wanted a refund anyway. Thanks.\nAgent turn 3: You're welcome" in prompt
    assert "refunded " * 30 not in prompt  # long tool results are cut


@pytest.mark.integration
def test_llm_judge_checks_over_http_store_reasoning_and_model(
        judge_server: tuple[RunningServer, list[dict[str, Any]]]) -> None:
    server, _bodies = judge_server
    url = f"{server.url}/v1"
    checks = parse_checks([
        {"type": "llm_judge", "rubric": RUBRIC_PASS, "model": "judge-model", "base_url": url},
        {"type": "llm_judge", "rubric": RUBRIC_FAIL, "model": "judge-model", "base_url": url},
        {"type": "llm_judge", "rubric": RUBRIC_GARBLED, "model": "judge-model",
         "base_url": url},
        {"type": "llm_judge", "rubric": RUBRIC_PASS},  # no model: uses the judge passed in
    ], "checks.yaml")
    default = build_judge("other-model", base_url=url)
    results = evaluate(checks, BASELINE, REPLAY, comparison(), judge=default,
                       judge_for=judge_factory(None, None))

    assert [r.status for r in results] == ["pass", "fail", "error", "pass"]
    passed, failed, garbled, by_default = results
    assert passed.message == "judge-model judged the replay to meet the rubric"
    assert passed.reasoning == "The caller asked for a refund in caller turn 3."
    assert passed.judge_model == "judge-model"
    assert failed.message == "judge-model judged the replay to miss the rubric"
    assert failed.reasoning == "Agent turn 1 never uses the caller's name."
    assert garbled.message == "judge-model gave no JSON verdict"
    assert garbled.reasoning is not None and GARBLED_ANSWER in garbled.reasoning
    assert by_default.judge_model == "other-model"


@pytest.mark.integration
def test_a_judge_server_error_is_a_check_error(
        judge_server: tuple[RunningServer, list[dict[str, Any]]]) -> None:
    server, _bodies = judge_server
    server.fail("/chat/completions", status=400, body={"error": {"message": "no such model"}})
    checks = parse_checks([{"type": "llm_judge", "rubric": RUBRIC_PASS, "model": "m",
                            "base_url": f"{server.url}/v1"}], "checks.yaml")
    [result] = evaluate(checks, BASELINE, REPLAY, comparison(),
                        judge_for=judge_factory(None, None))
    assert result.status == "error" and result.judge_model == "m"
    assert result.message.startswith("the judge failed: openai-compatible: ")
    assert "HTTP 400: no such model" in result.message


# ---- pieces --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ('{"reasoning": "ok", "pass": true}', (True, "ok")),
    ('{"reasoning": "no", "pass": false}', (False, "no")),
    ('{"pass": "PASS", "reasoning": "fine"}', (True, "fine")),
    ('{"pass": "failed"}', (False, "")),
    ('{"verdict": "fail", "reason": "rude"}', (False, "rude")),
    ('noise {not json} then {"reasoning": "late", "pass": true} and {"pass": false}',
     (True, "late")),
    ('{"answer": {"pass": true}}', (True, "")),  # a verdict wrapped in another object
    ('{"reasoning": "undecided", "pass": "maybe"}', (None, "")),
    ("[true]", (None, "")),
    ("", (None, "")),
])
def test_parse_verdict(text: str, expected: tuple[bool | None, str]) -> None:
    assert parse_verdict(text) == expected


def test_transcript_and_tool_calls() -> None:
    assert format_tool_call(ToolCall(id="x", name="issue_refund",
                                     arguments={"order_id": "4417", "amount": 25})) == (
        "issue_refund(order_id='4417', amount=25)")
    assert format_tool_call(ToolCall(id="x", name="f", raw_arguments="{oops")) == "f({oops)"
    text = transcript(BASELINE.turns)
    assert text.splitlines() == [
        "Agent turn 1: Hi, this is Sam from Acme Audio.",
        "Caller: Where is order 4417?",
        "Agent turn 2: [tool call] check_status(order_id='4417') [tool result] ships Friday "
        "BASELINE-ONLY: it ships Friday.",
    ]
    assert transcript([]) == "(no turns)"


def test_the_embedded_judge_asks_for_a_schema_and_others_for_json(tmp_path: Any) -> None:
    http = StageJudgeModel(OpenAICompatibleLLM("http://127.0.0.1:9/v1", model="m"))
    assert http.response_format(VERDICT_SCHEMA) == {"type": "json_object"}
    assert Judge(http).model == "m"
    local = build_judge()
    assert isinstance(local.llm, StageJudgeModel)
    assert local.llm.llm.name == "llama-cpp" and local.model.startswith("SmolLM2-135M-Instruct")
    schema = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA}}
    request = local.llm.request(local.messages(RUBRIC_PASS, BASELINE, REPLAY),
                                schema=VERDICT_SCHEMA, seed=local.seed,
                                max_tokens=local.max_tokens)
    assert (request.temperature, request.seed, request.response_format) == (0.0, 7, schema)


def test_a_check_naming_its_own_judge_needs_a_builder() -> None:
    checks = parse_checks([{"type": "llm_judge", "rubric": RUBRIC_PASS, "model": "m",
                            "base_url": "http://127.0.0.1:9/v1"}], "checks.yaml")
    [result] = evaluate(checks, BASELINE, REPLAY, comparison())
    assert result.status == "error" and "no judge can be built" in result.message


# ---- the real embedded SmolLM2 ------------------------------------------------------------

@pytest.mark.models
def test_smollm2_gives_a_parseable_verdict() -> None:
    judge = build_judge("local")
    verdict = judge.judge(RUBRIC_PASS, BASELINE, REPLAY)
    assert isinstance(verdict.passed, bool), verdict.raw
    assert isinstance(verdict.reasoning, str) and verdict.reasoning.strip()
    assert verdict.model == "SmolLM2-135M-Instruct.Q4_1"
    assert json.loads(verdict.raw)["pass"] is verdict.passed  # the grammar made it pure JSON


def test_llama_cpp_takes_openai_response_formats() -> None:
    from voicereplay.errors import StageError
    from voicereplay.simulate.backends.llama_cpp import _response_format

    schema = {"type": "object"}
    assert _response_format({"type": "json_schema", "json_schema": {"name": "v",
                                                                    "schema": schema}}) == {
        "type": "json_object", "schema": schema}
    assert _response_format({"type": "json_object"}) == {"type": "json_object"}
    with pytest.raises(StageError, match="response_format type 'xml' is not supported"):
        _response_format({"type": "xml"})
