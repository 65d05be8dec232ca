"""Declarative checks: loading them from YAML (with the errors a person reads) and evaluating
every type against a small hand-made baseline call and replay."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from voicereplay.compare.checks import (
    AgentSays,
    ArgumentMatch,
    LlmJudge,
    ToolCalled,
    evaluate,
    load_checks,
    parse_checks,
)
from voicereplay.compare.model import (
    AlignedTurn,
    CheckResult,
    Comparison,
    Divergence,
    Fidelity,
    LatencyStats,
    LatencyTurn,
    ReplayInfo,
    SideMetrics,
)
from voicereplay.errors import ConfigError
from voicereplay.models import Call, Replay, ReplayTurn, ToolCall, ToolResult, Turn

# Agent turns of the replay: 1 greeting, 2 asks for the number, 3 check_status + answer,
# 4 issue_refund + confirmation, 5 goodbye with end_call.
REPLAY_TURNS = [
    ReplayTurn(role="agent", text="Hi, this is Sam from Acme Audio. How can I help?"),
    ReplayTurn(role="user", text="Where is my order?"),
    ReplayTurn(role="agent", text="Sure, what is your   Order\nNumber?"),
    ReplayTurn(role="user", text="It's 4417."),
    ReplayTurn(role="tool_call", tool_calls=[ToolCall(
        id="c1", name="check_status",
        arguments={"order_id": "4417", "reason": "caller asks WHERE it is", "urgent": False})]),
    ReplayTurn(role="tool_result", tool_result=ToolResult(id="c1", name="check_status",
                                                          result="ships Friday")),
    ReplayTurn(role="agent", text="Your order ships Friday."),
    ReplayTurn(role="user", text="Can I get my money back instead?"),
    ReplayTurn(role="tool_call", tool_calls=[ToolCall(
        id="c2", name="issue_refund", arguments={"order_id": 4417, "amount": 25.0})]),
    ReplayTurn(role="tool_result", tool_result=ToolResult(id="c2", result="refunded")),
    ReplayTurn(role="agent", text="Done, you have been refunded."),
    ReplayTurn(role="user", text="Thanks, bye."),
    ReplayTurn(role="agent", text="Goodbye!",
               tool_calls=[ToolCall(id="c3", name="end_call", raw_arguments="{oops")]),
]
BASELINE_TURNS = [
    Turn(role="agent", text="Hi, this is Sam from Acme Audio. How can I help?"),
    Turn(role="user", text="Where is my order?"),
    Turn(role="agent", text="Sure, what is your order number?"),
    Turn(role="user", text="It's 4417."),
    Turn(role="tool_call", tool_calls=[ToolCall(id="b1", name="check_status",
                                                arguments={"order_id": "4417"})]),
    Turn(role="agent", text="Your order ships Friday."),
]


def make_call() -> Call:
    return Call(provider="vapi", call_id="c", turns=BASELINE_TURNS)


def make_replay(**changes: Any) -> Replay:
    fields: dict[str, Any] = {"id": "r", "call_provider": "vapi", "call_id": "c",
                              "snapshot_id": "s", "turns": REPLAY_TURNS,
                              "ended_reason": "agent-ended-call"}
    return Replay(**{**fields, **changes})


def make_comparison(**changes: Any) -> Comparison:
    fields: dict[str, Any] = {
        "generated_at": datetime(2025, 1, 1, tzinfo=UTC),
        "call_provider": "vapi",
        "call_id": "c",
        "replay": ReplayInfo(id="r", mode="scripted", snapshot_id="s"),
        "similarity_method": "lexical",
        "threshold": 0.5,
        "fidelity": Fidelity(basis="test"),
        "similarity": 0.72,
        "alignment": [
            AlignedTurn(kind="agent", number=2, status="matched", similarity=0.9,
                        replay_text="Sure, what is your order number?"),
            AlignedTurn(kind="agent", number=4, status="matched", similarity=0.31,
                        replay_text="Done, you have been refunded."),
        ],
        "divergence": Divergence(turn=4, reason="tool-call", detail="→ issue_refund",
                                 threshold=0.5),
        "replay_metrics": SideMetrics(latency=LatencyStats(count=4, p50=0.8, p90=1.2, max=1.4)),
        "latency": [LatencyTurn(turn=2, replay=0.7), LatencyTurn(turn=3, replay=1.4),
                    LatencyTurn(turn=4, replay=None)],
    }
    return Comparison(**{**fields, **changes})


def run(yaml_checks: list[dict[str, Any]], *, replay: Replay | None = None,
        comparison: Comparison | None = None, **options: Any) -> list[CheckResult]:
    checks = parse_checks(yaml_checks, "checks.yaml")
    return evaluate(checks, make_call(), replay or make_replay(),
                    comparison or make_comparison(), **options)


def one(check: dict[str, Any], **options: Any) -> CheckResult:
    [result] = run([check], **options)
    return result


def evidence(result: CheckResult) -> list[tuple[int | None, str]]:
    return [(e.turn, e.text) for e in result.evidence]


# ---- tool_called / tool_not_called ---------------------------------------------------------

def test_tool_called_passes_with_the_call_as_evidence() -> None:
    result = one({"type": "tool_called", "tool": "check_status"})
    assert (result.status, result.type) == ("pass", "tool_called")
    assert result.name == "check_status is called"
    assert result.message == "check_status was called in agent turn 3"
    assert evidence(result) == [
        (3, "check_status(order_id='4417', reason='caller asks WHERE it is', urgent=False)")]


def test_tool_called_fails_when_never_called_and_shows_the_tools_that_were() -> None:
    result = one({"type": "tool_called", "tool": "transfer_call"})
    assert result.status == "fail"
    assert result.message == "transfer_call was never called (other tools were)"
    assert [turn for turn, _ in evidence(result)] == [3, 4, 5]
    assert evidence(result)[1] == (4, "issue_refund(order_id=4417, amount=25.0)")
    assert evidence(result)[2] == (5, "end_call({oops)")  # arguments that were not JSON


def test_tool_called_in_a_turn() -> None:
    assert one({"type": "tool_called", "tool": "check_status", "turn": 3}).status == "pass"
    wrong = one({"type": "tool_called", "tool": "check_status", "turn": 4})
    assert wrong.status == "fail"
    assert wrong.message == "check_status was never called in agent turn 4 (other tools were)"
    assert evidence(wrong) == [(4, "issue_refund(order_id=4417, amount=25.0)")]
    beyond = one({"type": "tool_called", "tool": "check_status", "turn": 9})
    assert beyond.status == "fail"
    assert beyond.message == ("check_status was never called in agent turn 9 (the replay has "
                              "only 5 agent turns)")


@pytest.mark.parametrize(("arguments", "status"), [
    ({"order_id": "4417"}, "pass"),
    ({"order_id": 4417}, "pass"),  # scalars compare as text
    ({"order_id": "4418"}, "fail"),
    ({"order_id": {"equals": "4417"}}, "pass"),
    ({"urgent": False}, "pass"),
    ({"urgent": "false"}, "pass"),
    ({"urgent": True}, "fail"),
    ({"reason": {"regex": "status|where"}}, "pass"),  # case-insensitive
    ({"reason": {"regex": "^where"}}, "fail"),
    ({"reason": {"regex": "(?-i:where)"}}, "fail"),  # case-sensitive on request
    ({"reason": {"contains": "asks where"}}, "pass"),
    ({"reason": {"contains": "refund"}}, "fail"),
    ({"reason": {"present": True}}, "pass"),
    ({"amount": {"present": True}}, "fail"),
    ({"amount": {"present": False}}, "pass"),
    ({"reason": {"present": False}}, "fail"),
    ({"order_id": "4417", "reason": {"regex": "where"}, "urgent": False}, "pass"),  # all
    ({"order_id": "4417", "reason": {"regex": "never"}}, "fail"),  # one misses: fail
])
def test_argument_matchers(arguments: dict[str, Any], status: str) -> None:
    result = one({"type": "tool_called", "tool": "check_status", "arguments": arguments})
    assert result.status == status, result.message
    if status == "fail":
        assert result.message.startswith("check_status was called but not with matching "
                                         "arguments: agent turn 3: ")
        assert evidence(result)[0][0] == 3


def test_an_argument_mismatch_says_what_was_there() -> None:
    result = one({"type": "tool_called", "tool": "issue_refund",
                  "arguments": {"order_id": "4418", "reason": {"present": True},
                                "amount": {"regex": r"^25(\.0)?$"}}})
    assert result.status == "fail"
    assert result.message == ("issue_refund was called but not with matching arguments: agent "
                              "turn 4: order_id is 4417, expected order_id='4418'; reason is "
                              "missing")
    assert result.name == ("issue_refund is called with order_id='4418', reason present, "
                           r"amount~/^25(\.0)?$/")


def test_arguments_that_were_not_json_match_nothing() -> None:
    result = one({"type": "tool_called", "tool": "end_call",
                  "arguments": {"reason": {"present": False}}})
    assert result.status == "fail"
    assert "its arguments are not JSON: '{oops'" in result.message
    assert one({"type": "tool_called", "tool": "end_call"}).status == "pass"


def test_tool_not_called() -> None:
    passed = one({"type": "tool_not_called", "tool": "transfer_call"})
    assert (passed.status, passed.message, passed.evidence) == (
        "pass", "transfer_call was not called", [])
    failed = one({"type": "tool_not_called", "tool": "issue_refund", "name": "no refunds"})
    assert (failed.status, failed.name) == ("fail", "no refunds")
    assert failed.message == ("issue_refund was called in agent turn 4: "
                              "issue_refund(order_id=4417, amount=25.0)")
    assert evidence(failed) == [(4, "issue_refund(order_id=4417, amount=25.0)")]


def test_tool_not_called_scoped_by_turn_and_arguments() -> None:
    assert one({"type": "tool_not_called", "tool": "issue_refund", "turn": 3}).status == "pass"
    assert one({"type": "tool_not_called", "tool": "issue_refund", "turn": 4}).status == "fail"
    other_order = one({"type": "tool_not_called", "tool": "issue_refund",
                       "arguments": {"order_id": "9999"}})
    assert (other_order.status, other_order.message) == (
        "pass", "issue_refund was not called with those arguments")
    same_order = one({"type": "tool_not_called", "tool": "issue_refund",
                      "arguments": {"order_id": "4417", "amount": {"regex": "^25"}}})
    assert same_order.status == "fail" and evidence(same_order)[0][0] == 4


# ---- agent_says / agent_does_not_say ------------------------------------------------------

def test_agent_says_a_phrase_ignoring_case_and_whitespace() -> None:
    result = one({"type": "agent_says", "phrase": "order   number"})
    assert result.status == "pass"
    assert result.message == "the agent said 'order   number' in agent turn 2"
    assert evidence(result) == [(2, "Sure, what is your Order Number?")]


def test_agent_says_fails_with_what_was_said_in_the_turn() -> None:
    never = one({"type": "agent_says", "phrase": "anything else"})
    assert (never.status, never.message, never.evidence) == (
        "fail", "the agent never said 'anything else'", [])
    in_turn = one({"type": "agent_says", "phrase": "ships friday", "turn": 2})
    assert in_turn.status == "fail"
    assert in_turn.message == "the agent did not say 'ships friday' in agent turn 2"
    assert evidence(in_turn) == [(2, "Sure, what is your Order Number?")]
    assert one({"type": "agent_says", "phrase": "ships friday", "turn": 3}).status == "pass"


def test_agent_says_a_regex() -> None:
    result = one({"type": "agent_says", "regex": r"ships (mon|fri)day"})
    assert (result.status, evidence(result)) == ("pass", [(3, "Your order ships Friday.")])
    assert result.name == "agent says /ships (mon|fri)day/"


def test_long_replies_are_cut_around_the_match() -> None:
    long = "Let me see. " * 40 + "Your refund is on its way." + " Anything else?" * 20
    replay = make_replay(turns=[ReplayTurn(role="agent", text=long)])
    [result] = run([{"type": "agent_says", "phrase": "refund is on its way"}], replay=replay)
    [(turn, text)] = evidence(result)
    assert turn == 1 and "Your refund is on its way." in text
    assert text.startswith("…") and text.endswith("…") and len(text) <= 202


def test_agent_does_not_say() -> None:
    passed = one({"type": "agent_does_not_say", "phrase": "store credit"})
    assert (passed.status, passed.message) == ("pass", "the agent did not say 'store credit'")
    failed = one({"type": "agent_does_not_say", "regex": "refund(ed)?"})
    assert failed.status == "fail"
    assert failed.message == "the agent said /refund(ed)?/ in agent turn 4"
    assert evidence(failed) == [(4, "Done, you have been refunded.")]
    scoped = one({"type": "agent_does_not_say", "regex": "refund(ed)?", "turn": 3})
    assert (scoped.status, scoped.message) == (
        "pass", "the agent did not say /refund(ed)?/ in agent turn 3")


# ---- metrics, ending, divergence, similarity ------------------------------------------------

def test_latency_p90_under() -> None:
    passed = one({"type": "latency_p90_under", "seconds": 1.5})
    assert passed.status == "pass"
    assert passed.message == "p90 response latency 1.20 s < 1.5 s (over 4 turns)"
    assert evidence(passed) == [(3, "slowest response 1.40 s")]
    failed = one({"type": "latency_p90_under", "seconds": 1})
    assert failed.status == "fail"
    assert failed.message == "p90 response latency 1.20 s >= 1 s (over 4 turns)"
    assert evidence(failed) == [(3, "slowest response 1.40 s")]


def test_latency_without_latencies_fails_clearly() -> None:
    [result] = run([{"type": "latency_p90_under", "seconds": 1.5}],
                   comparison=make_comparison(replay_metrics=SideMetrics(), latency=[]))
    assert result.status == "fail"
    assert result.message == ("no response latencies were measured in the replay, so its p90 "
                              "cannot be under 1.5 s")


def test_agent_ends_call() -> None:
    passed = one({"type": "agent_ends_call"})
    assert (passed.status, passed.message) == ("pass", "the agent ended the call")
    assert evidence(passed) == [(5, "Goodbye!")]
    [failed] = run([{"type": "agent_ends_call"}],
                   replay=make_replay(ended_reason="customer-ended-call"))
    assert failed.status == "fail"
    assert failed.message == "the call ended with 'customer-ended-call', not by the agent"
    assert evidence(failed) == [(5, "Goodbye!")]
    [unknown] = run([{"type": "agent_ends_call"}], replay=make_replay(ended_reason=None))
    assert (unknown.status, unknown.message) == (
        "fail", "the replay records no reason the call ended")


def test_no_divergence_before() -> None:
    at = one({"type": "no_divergence_before", "turn": 4})
    assert (at.status, at.message) == ("pass", "the replay first diverged at agent turn 4 "
                                               "(tool-call)")
    assert evidence(at) == [(4, "→ issue_refund")]
    before = one({"type": "no_divergence_before", "turn": 5})
    assert before.status == "fail"
    assert before.message == ("the replay diverged at agent turn 4, before turn 5 (tool-call: "
                              "→ issue_refund)")
    assert evidence(before) == [(4, "→ issue_refund")]
    [never] = run([{"type": "no_divergence_before", "turn": 2}],
                  comparison=make_comparison(divergence=None))
    assert (never.status, never.message) == ("pass",
                                             "the replay never diverged from the baseline")


def test_similarity_at_least() -> None:
    passed = one({"type": "similarity_at_least", "value": 0.6})
    assert (passed.status, passed.message) == ("pass", "similarity 0.72 >= 0.6 (lexical)")
    assert evidence(passed) == [(4, "least similar turn (0.31): Done, you have been refunded.")]
    failed = one({"type": "similarity_at_least", "value": 0.8})
    assert (failed.status, failed.message) == ("fail", "similarity 0.72 < 0.8 (lexical)")
    assert evidence(failed)[0][0] == 4
    [unknown] = run([{"type": "similarity_at_least", "value": 0.5}],
                    comparison=make_comparison(similarity=None, alignment=[]))
    assert unknown.status == "fail" and "no similarity was measured" in unknown.message


# ---- llm_judge without a model, and robustness ---------------------------------------------

def test_llm_judge_without_a_judge_is_an_error_that_says_how_to_add_one() -> None:
    result = one({"type": "llm_judge", "rubric": "The agent is polite."})
    assert (result.status, result.name) == ("error", "LLM judge: The agent is polite.")
    assert "add 'model: local'" in result.message and "base_url" in result.message
    assert result.reasoning is None and result.judge_model is None


def test_llm_judge_with_a_model_that_cannot_judge_is_an_error() -> None:
    from voicereplay.pipeline.judging import judge_factory

    def one(check: dict[str, Any]) -> CheckResult:
        [result] = run([check], judge_for=judge_factory(None, None))
        return result

    recorded = one({"type": "llm_judge", "rubric": "Polite.", "model": "recorded"})
    assert recorded.status == "error"
    assert recorded.message.startswith("the judge model cannot be used: the recorded model "
                                       "cannot judge")
    missing = one({"type": "llm_judge", "rubric": "Polite.", "model": "/nowhere/judge.gguf"})
    assert missing.status == "error" and "/nowhere/judge.gguf does not exist" in missing.message


def test_a_check_that_cannot_be_evaluated_is_an_error_not_an_exception() -> None:
    class Broken(AgentSays):
        def pattern(self) -> Any:
            raise RuntimeError("boom")

    check = Broken(phrase="hi")
    [result] = evaluate([check], make_call(), make_replay(), make_comparison())
    assert (result.status, result.message) == ("error",
                                               "could not be evaluated: RuntimeError: boom")


def test_every_result_follows_its_check_in_order() -> None:
    results = run([
        {"type": "tool_called", "tool": "check_status", "name": "looks it up"},
        {"type": "tool_not_called", "tool": "issue_refund"},
        {"type": "agent_says", "phrase": "order number"},
        {"type": "agent_does_not_say", "regex": "refund"},
        {"type": "latency_p90_under", "seconds": 1.5},
        {"type": "agent_ends_call"},
        {"type": "no_divergence_before", "turn": 4},
        {"type": "similarity_at_least", "value": 0.6},
        {"type": "llm_judge", "rubric": "Polite."},
    ])
    assert [(r.type, r.status) for r in results] == [
        ("tool_called", "pass"), ("tool_not_called", "fail"), ("agent_says", "pass"),
        ("agent_does_not_say", "fail"), ("latency_p90_under", "pass"),
        ("agent_ends_call", "pass"), ("no_divergence_before", "pass"),
        ("similarity_at_least", "pass"), ("llm_judge", "error")]
    assert results[0].name == "looks it up"


# ---- loading -------------------------------------------------------------------------------

FULL = """\
checks:
  - type: tool_called          # tool must be called
    tool: check_status
    turn: 4
    arguments:
      order_id: "4417"
      reason: {regex: "status|where"}
  - type: tool_not_called
    tool: issue_refund
  - type: agent_says
    phrase: "order number"
  - type: agent_does_not_say
    regex: "refund(ed)?"
  - type: latency_p90_under
    seconds: 1.5
  - type: agent_ends_call
  - type: no_divergence_before
    turn: 4
  - type: similarity_at_least
    value: 0.6
  - type: llm_judge
    name: no surprise refunds
    rubric: "The agent never issues a refund the caller did not ask for."
    model: local
"""


def test_load_the_documented_file(tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(FULL)
    checks = load_checks(path)
    assert [c.type for c in checks] == [
        "tool_called", "tool_not_called", "agent_says", "agent_does_not_say",
        "latency_p90_under", "agent_ends_call", "no_divergence_before", "similarity_at_least",
        "llm_judge"]
    first = checks[0]
    assert isinstance(first, ToolCalled) and first.turn == 4
    assert first.arguments == {"order_id": ArgumentMatch(equals="4417"),
                               "reason": ArgumentMatch(regex="status|where")}
    judge = checks[-1]
    assert isinstance(judge, LlmJudge)
    assert (judge.name, judge.model, judge.base_url) == ("no surprise refunds", "local", None)


def test_a_bare_list_and_an_empty_checks_list(tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text("- type: agent_ends_call\n- {type: tool_called, tool: x, name: calls x}\n")
    checks = load_checks(path)
    assert [(c.type, c.name) for c in checks] == [("agent_ends_call", None),
                                                   ("tool_called", "calls x")]
    path.write_text("checks: []\n")
    assert load_checks(path) == []


@pytest.mark.parametrize(("text", "message"), [
    ("- type: agent_ends_call\n- {type: tool_called, tol: check_status}\n",
     "check 2 (tool_called): unknown field 'tol'; fields are tool, turn, arguments, name; "
     "missing field 'tool'"),
    ("- {type: tool_calld, tool: x}\n",
     "check 1: unknown type 'tool_calld'; valid types are tool_called, tool_not_called, "
     "agent_says, agent_does_not_say, latency_p90_under, agent_ends_call, "
     "no_divergence_before, similarity_at_least, llm_judge"),
    ("- {tool: x}\n",
     "check 1: missing 'type'; valid types are tool_called, tool_not_called, agent_says, "
     "agent_does_not_say, latency_p90_under, agent_ends_call, no_divergence_before, "
     "similarity_at_least, llm_judge"),
    ("- agent_ends_call\n",
     "check 1: expected a mapping with a 'type', got a string"),
    ("checks:\n  - {type: agent_does_not_say, regex: 'refund('}\n",
     "check 1 (agent_does_not_say): regex: invalid regular expression 'refund(': missing ), "
     "unterminated subpattern at position 6"),
    ("- {type: tool_called, tool: x, arguments: {reason: {regex: '[a-'}}}\n",
     "check 1 (tool_called): arguments.reason: invalid regular expression '[a-': unterminated "
     "character set at position 0"),
    ("- {type: latency_p90_under, seconds: fast}\n",
     "check 1 (latency_p90_under): seconds: Input should be a valid number (got 'fast')"),
    ("- {type: latency_p90_under, seconds: 0}\n",
     "check 1 (latency_p90_under): seconds: Input should be greater than 0 (got 0)"),
    ("- {type: tool_called, tool: x, turn: four}\n",
     "check 1 (tool_called): turn: Input should be a valid integer (got 'four')"),
    ("- {type: tool_called, tool: x, turn: 0}\n",
     "check 1 (tool_called): turn: Input should be greater than or equal to 1 (got 0)"),
    ("- {type: tool_called, tool: 42}\n",
     "check 1 (tool_called): tool: Input should be a valid string (got 42)"),
    ("- {type: similarity_at_least, value: 1.5}\n",
     "check 1 (similarity_at_least): value: Input should be less than or equal to 1 (got 1.5)"),
    ("- {type: no_divergence_before}\n",
     "check 1 (no_divergence_before): missing field 'turn'"),
    ("- {type: tool_called, tool: x, arguments: {a: {regx: b}}}\n",
     "check 1 (tool_called): arguments.a: unknown key 'regx'; use one of equals, regex, "
     "contains, present"),
    ("- {type: tool_called, tool: x, arguments: {a: {regex: b, contains: c}}}\n",
     "check 1 (tool_called): arguments.a: give exactly one of equals, regex, contains, "
     "present (or a plain value to compare with)"),
    ("- {type: tool_called, tool: x, arguments: [a]}\n",
     "check 1 (tool_called): arguments: Input should be a valid dictionary (got ['a'])"),
    ("- {type: agent_says}\n",
     "check 1 (agent_says): give either phrase or regex (one of them)"),
    ("- {type: agent_says, phrase: hi, regex: hi}\n",
     "check 1 (agent_says): give either phrase or regex (one of them)"),
    ("- {type: agent_says, phrase: '  '}\n", "check 1 (agent_says): phrase is empty"),
    ("- {type: llm_judge, rubric: ''}\n",
     "check 1 (llm_judge): rubric: String should have at least 1 character (got '')"),
    ("- {type: agent_ends_call, name: [x]}\n",
     "check 1 (agent_ends_call): name: Input should be a valid string (got ['x'])"),
    ("checks: {type: agent_ends_call}\n",
     "expected a list of checks (or a mapping with a 'checks' list), got a mapping"),
    ("check:\n  - type: agent_ends_call\n",
     "unknown top-level key 'check'; the file holds 'checks' (a list) or is the list itself"),
    ("", "expected a list of checks (or a mapping with a 'checks' list), got nothing"),
    ("checks:\n  - type: [agent_ends_call\n",
     "not valid YAML: expected ',' or ']', but got '<stream end>' at line 3, column 1"),
])
def test_loading_errors_name_the_file_the_check_and_the_field(
        tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_checks(path)
    assert str(caught.value) == f"{path}: {message}"
    assert "\n" not in str(caught.value)


def test_an_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read the checks file: No such"):
        load_checks(missing)


def test_parse_checks_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^inline: check 1 \(agent_ends_call\): unknown "
                                          r"field 'turn'; fields are name$"):
        parse_checks([{"type": "agent_ends_call", "turn": 2}], "inline")


def test_checks_stored_in_a_replay_read_back_the_same() -> None:
    from voicereplay.checks import ToolCalled
    from voicereplay.models import Replay

    checks = parse_checks([
        {"type": "tool_called", "tool": "x", "arguments": {"a": "1", "n": None,
                                                            "b": {"regex": "z"}}},
        {"type": "llm_judge", "rubric": "polite", "api_key": "sk-never-stored"},
    ], "checks.yaml") + [ToolCalled(tool="y")]
    replay = Replay(id="r", call_provider="vapi", call_id="c", snapshot_id="s", checks=checks)
    text = replay.model_dump_json()
    assert "sk-never-stored" not in text and '"n":{"equals":null}' in text
    again = Replay.model_validate_json(text).checks
    assert again[0] == checks[0] and again[2] == checks[2]
    assert again[1].model_dump() == {"type": "llm_judge", "rubric": "polite"}


# ---- the baseline side -------------------------------------------------------------------

def test_one_sided_checks_are_judged_on_the_baseline_call_too() -> None:
    from voicereplay.compare.checks import evaluate_baseline

    checks = parse_checks([
        {"type": "tool_not_called", "tool": "issue_refund"},  # production: passes
        {"type": "tool_called", "tool": "check_status", "turn": 3},  # passes
        {"type": "agent_says", "phrase": "refunded"},  # production never said it
        {"type": "latency_p90_under", "seconds": 1.0},
        {"type": "no_divergence_before", "turn": 3},  # compares the sides: left out
        {"type": "agent_ends_call"},  # the replay's own ending: left out
    ], "checks.yaml")
    comparison = make_comparison(
        baseline_metrics=SideMetrics(latency=LatencyStats(count=2, p50=0.6, p90=0.9)),
        latency=[LatencyTurn(turn=2, baseline=0.5, replay=0.7),
                 LatencyTurn(turn=3, baseline=0.9, replay=1.4)])
    results = evaluate_baseline(checks, make_call(), comparison)
    assert [(r.type, r.status) for r in results] == [
        ("tool_not_called", "pass"), ("tool_called", "pass"), ("agent_says", "fail"),
        ("latency_p90_under", "pass")]
    assert results[3].message == "p90 response latency 0.90 s < 1 s (over 2 turns)"
    assert evidence(results[3]) == [(3, "slowest response 0.90 s")]
    # The replay side of the same checks, for contrast: it called issue_refund and said it.
    replay_side = evaluate(checks[:4], make_call(), make_replay(), comparison)
    assert [r.status for r in replay_side] == ["fail", "pass", "pass", "fail"]
