"""voicereplay.turns: the one definition of "agent turn N", shared by replay and comparison."""

from __future__ import annotations

import json
from pathlib import Path

from voicereplay.models import Call, ToolCall, ToolResult, Turn
from voicereplay.providers.vapi_payload import build_snapshot, parse_call
from voicereplay.simulate.backends.recorded import recorded_steps
from voicereplay.simulate.modes.turn import reply_units
from voicereplay.turns import AgentReply, CallerTurn, agent_replies, caller_turns, reply_to, units

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"

TURNS = [
    Turn(role="system", text="You are a helpful agent."),
    Turn(role="agent", text="Hi, how can I help?"),  # 1: the opening, reply 1
    Turn(role="user", text="Where is my order?"),  # 2
    Turn(role="tool_call", tool_calls=[ToolCall(id="a", name="check_status")]),  # 3
    Turn(role="tool_result", tool_result=ToolResult(id="a", name="check_status", result="ok")),
    Turn(role="agent", text="It ships Friday."),  # 5
    Turn(role="agent", text="Anything else?"),  # 6
    Turn(role="user", text="No."),  # 7
    Turn(role="user", text="Bye."),  # 8: spoken again before the agent answered
    Turn(role="agent", text="Goodbye."),  # 9
    Turn(role="user", text="Thanks!"),  # 10: the caller speaks last and hangs up
]


def test_units_number_replies_and_caller_turns_in_order() -> None:
    found = units(TURNS)
    assert [type(u).__name__ for u in found] == [
        "AgentReply", "CallerTurn", "AgentReply", "CallerTurn", "CallerTurn", "AgentReply",
        "CallerTurn"]
    replies = agent_replies(TURNS)
    assert [(r.number, r.indices, r.spoken, r.after_caller) for r in replies] == [
        (1, [1], [1], None), (2, [3, 4, 5, 6], [5, 6], 2), (3, [9], [9], 8)]
    assert replies[1].text(TURNS) == "It ships Friday. Anything else?"
    assert replies[1].tools(TURNS) == ["check_status"]
    assert replies[1].of_role(TURNS, "tool_call", "tool_result") == [3, 4]
    assert [(c.number, c.index) for c in caller_turns(TURNS)] == [(1, 2), (2, 7), (3, 8), (4, 10)]
    assert isinstance(found[1], CallerTurn) and isinstance(found[0], AgentReply)


def test_reply_to_finds_the_reply_answering_a_caller_turn() -> None:
    opening = reply_to(TURNS, None)
    assert opening is not None and opening.number == 1
    answer = reply_to(TURNS, 2)
    assert answer is not None and answer.number == 2
    assert reply_to(TURNS, 7) is None  # the caller spoke again before an answer
    assert reply_to(TURNS, 10) is None  # the caller hung up: no reply
    assert reply_to([Turn(role="user", text="Hello?")], None) is None  # caller spoke first


def demo() -> Call:
    return parse_call(json.loads((DEMO / "demo-refund.json").read_text()))


def test_the_recorded_llm_and_turn_mode_count_replies_as_the_comparison_does() -> None:
    call = demo()
    snapshot = build_snapshot(call, json.loads((DEMO / "demo-refund.assistant.json").read_text()))
    replies = agent_replies(call.turns)
    answering = [r for r in replies if r.after_caller is not None]
    # one recorded step per spoken reply turn after the first message (tools ride on them)
    steps = recorded_steps(call, skip_first_message=True)
    spoken = [t for r in answering for t in r.spoken]
    assert [s.text for s in steps if s.text] == [call.turns[i].text for i in spoken]
    assert [c.name for s in steps for c in s.tool_calls] == [
        n for r in answering for n in r.tools(call.turns)]
    # turn mode asks every spoken turn of every reply that answers a caller turn
    assert [u.agent for u in reply_units(call, snapshot)] == spoken
