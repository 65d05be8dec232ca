"""Knowledge-base context served to the replayed agent at the same turn, in every mode.

The demo call (fixtures/demo) with knowledge-base contexts added on its agent turns 3 (the
reply to caller turn 1) and 9 (the reply to caller turn 3, after the tool call), replayed with
the fake stages of tests/test_replay_engine.py and a :class:`ScriptedLLM` that records every
chat request it gets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.scripted_llm import Reply, ScriptedLLM, tool_call
from tests.test_replay_engine import DEMO, RECORDINGS, FakeSTT, ToneTTS
from tests.web_demo import FAKES
from voicereplay import pipeline
from voicereplay.config import Settings
from voicereplay.models import Call, KnowledgeContext, KnowledgeDocument, Replay
from voicereplay.pipeline import CallRef, ReplayRequest
from voicereplay.providers.vapi_payload import build_snapshot, parse_call
from voicereplay.simulate.replay import ReplayEngine
from voicereplay.simulate.stages import ChatRequest
from voicereplay.simulate.tools import ToolServer
from voicereplay.snapshot import AgentSnapshot
from voicereplay.store import Store

RETURNS = "Headphones can be returned within 30 days with the original receipt."
SHIPPING = "Orders ship in 2 business days; tracking is emailed when they leave."
REFUND = {"order_id": "4417", "reason": "customer inquiry"}


@pytest.fixture(scope="module")
def demo() -> tuple[Call, AgentSnapshot]:
    call = parse_call(json.loads((DEMO / "demo-refund.json").read_text()))
    assistant = json.loads((DEMO / "demo-refund.assistant.json").read_text())
    return call, build_snapshot(call, assistant)


def with_knowledge(call: Call, *contexts: KnowledgeContext) -> Call:
    return call.model_copy(update={"knowledge": list(contexts)})


def vapi_context(turn: int, text: str) -> KnowledgeContext:
    return KnowledgeContext(turn=turn, source="vapi-message", text=text, query="order status")


def retell_context(turn: int, text: str) -> KnowledgeContext:
    return KnowledgeContext(turn=turn, source="retell-url",
                            documents=[KnowledgeDocument(content=text, score=0.8)])


def run(call: Call, snapshot: AgentSnapshot, tmp_path: Path, llm: ScriptedLLM,
        mode: str = "scripted") -> Replay:
    engine = ReplayEngine(FakeSTT(call), llm, ToneTTS(), ToneTTS())
    return engine.run(call, snapshot, RECORDINGS, mode=mode, seed=1, tools=ToolServer(call),
                      out_dir=tmp_path)


def holding(request: ChatRequest, text: str) -> list[dict[str, Any]]:
    return [m for m in request.messages if text in str(m.get("content") or "")]


def script() -> ScriptedLLM:
    """Request 2 answers "Jordan Miles." with the refund tool, as the baseline did."""
    return ScriptedLLM({2: Reply(tool_calls=[tool_call("issue_refund", **REFUND)])},
                       default="Okay.", ttft=0.1, duration=0.1)


def test_a_vapi_context_joins_the_history_before_its_reply_and_stays_once(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo
    llm = script()
    replay = run(with_knowledge(call, vapi_context(3, RETURNS)), snapshot, tmp_path, llm)

    # request 0 answers caller turn 1 ("Hi, I ordered…"): the reply the context informed
    first = llm.requests[0]
    assert [m["role"] for m in first.messages[-2:]] == ["user", "system"]
    assert first.messages[-1]["content"] == RETURNS  # Vapi's own text, as the model saw it
    assert "headphones" in first.messages[-2]["content"].lower()
    # every later request has it once, where it was served: history, never re-added
    for request in llm.requests[1:]:
        assert len(holding(request, RETURNS)) == 1
    # the replay records what it served, on the first turn of that reply
    served = [(i, t) for i, t in enumerate(replay.turns) if t.knowledge]
    assert len(served) == 1
    index, turn = served[0]
    assert turn.role == "agent" and turn.baseline_turn == 3
    assert turn.knowledge[0].text == RETURNS
    assert replay.turns[index - 1].role == "user"


def test_a_retell_context_is_in_its_reply_only(demo: tuple[Call, AgentSnapshot],
                                               tmp_path: Path) -> None:
    call, snapshot = demo
    llm = script()
    replay = run(with_knowledge(call, retell_context(9, SHIPPING)), snapshot, tmp_path, llm)

    # requests 2 and 3 are the reply to caller turn 3 ("Jordan Miles."): the tool round and
    # the text after the tool result; both have the context, right after the caller's words
    for request in llm.requests[2:4]:
        [message] = holding(request, SHIPPING)
        assert message["role"] == "system"
        assert message["content"].startswith("Knowledge base results:")
        at = request.messages.index(message)
        assert request.messages[at - 1] == {"role": "user", "content": "Jordan Miles."}
    assert llm.requests[3].messages[-1]["role"] == "tool"
    assert len(llm.requests) > 4
    for request in llm.requests[:2] + llm.requests[4:]:  # not before, and not carried on
        assert not holding(request, SHIPPING)
    [turn] = [t for t in replay.turns if t.knowledge]
    assert turn.role == "tool_call" and turn.knowledge[0].source == "retell-url"


def test_a_call_without_knowledge_replays_unchanged(demo: tuple[Call, AgentSnapshot],
                                                    tmp_path: Path) -> None:
    call, snapshot = demo
    plain, with_kb = script(), script()
    run(call, snapshot, tmp_path / "plain", plain)
    run(with_knowledge(call, KnowledgeContext(turn=None, source="retell-url", text=RETURNS)),
        snapshot, tmp_path / "unplaced", with_kb)  # a context with no turn is never served
    assert [r.messages for r in plain.requests] == [r.messages for r in with_kb.requests]
    assert all(not holding(r, RETURNS) for r in with_kb.requests)


def test_turn_mode_serves_the_turns_context_and_keeps_earlier_vapi_ones(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo
    llm = ScriptedLLM(default="Okay.", ttft=0.1, duration=0.1)
    kb_call = with_knowledge(call, vapi_context(3, RETURNS), retell_context(5, SHIPPING))
    replay = run(kb_call, snapshot, tmp_path, llm, mode="turn")

    by_turn = {len([m for m in r.messages if m["role"] == "user"]): r for r in llm.requests}
    # agent turn 3 answers caller turn 1: its context is the last message it is asked on
    assert by_turn[1].messages[-1] == {"role": "system", "content": RETURNS}
    # agent turn 5: the Vapi context of turn 3 is history, once, before the baseline's reply
    roles = [m["role"] for m in by_turn[2].messages]
    kept = next(i for i, m in enumerate(by_turn[2].messages) if m["content"] == RETURNS)
    assert roles[kept + 1] == "assistant" and len(holding(by_turn[2], RETURNS)) == 1
    assert by_turn[2].messages[-1]["content"].endswith(SHIPPING)
    # later turns: the Vapi context stays, the Retell one does not
    for count in (3, 4, 5):
        assert len(holding(by_turn[count], RETURNS)) == 1
        assert not holding(by_turn[count], SHIPPING)
    served = {t.baseline_turn: [k.source for k in t.knowledge] for t in replay.turns
              if t.knowledge}
    assert served == {3: ["vapi-message"], 5: ["retell-url"]}


def test_turn_mode_does_not_repeat_a_tool_result_the_history_holds(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    """A ``vapi-tool`` context is the result of a tool call the baseline made: once that call
    is in the history (a later reply), the context is not added again."""
    call, snapshot = demo
    tool = KnowledgeContext(turn=9, source="vapi-tool", text='{"status":"refunded"}',
                            tool_call_id=call.turns[8].tool_result.id)  # type: ignore[union-attr]
    llm = ScriptedLLM(default="Okay.", ttft=0.1, duration=0.1)
    run(with_knowledge(call, tool), snapshot, tmp_path, llm, mode="turn")
    by_turn = {len([m for m in r.messages if m["role"] == "user"]): r for r in llm.requests}
    # turn 9 is asked without its leading tool turns: the context is served instead
    assert by_turn[3].messages[-1]["content"].startswith("Knowledge base results")
    # turn 11: the history has the tool result itself, and no second copy
    assert not [m for m in by_turn[4].messages if m["role"] == "system"
                and "Knowledge base" in str(m["content"])]


def test_the_bundled_vapi_knowledge_call_replays_with_what_its_agent_retrieved(
        tmp_path: Path) -> None:
    """fixtures/knowledge/vapi-knowledge.json through the pipeline with the fake backends: the
    knowledge-base message and the ``store-docs`` result reach the replayed LLM at their
    replies, and the replay says so."""
    settings = Settings.for_home(tmp_path / "home")
    store = Store.from_settings(settings)
    folder = DEMO.parent / "knowledge"
    request = ReplayRequest(call=CallRef(call_id="8a626c8c-dff0-53d9-823e-cb2351ec20ef",
                                         directory=folder), **FAKES)
    [result] = pipeline.run_call(store, request, settings=settings)
    served = [t for t in result.replay.turns if t.knowledge]
    assert [(t.role, [k.source for k in t.knowledge]) for t in served] == [
        ("agent", ["vapi-message"]), ("agent", ["vapi-tool"])]
    first, second = served
    assert first.llm_request is not None and second.llm_request is not None
    messages = first.llm_request["messages"]
    assert messages[-1]["role"] == "system" and messages[-1]["content"].startswith(
        "Returns: unused gear can be returned within 30 days")
    assert messages[-2]["role"] == "user"
    later = second.llm_request["messages"]
    assert later[-1]["content"].startswith(
        "Knowledge base results for 'refund processing time':\nRefunds go back")
    assert sum("Returns: unused gear" in str(m["content"]) for m in later) == 1


def test_a_saved_scenario_keeps_the_knowledge_and_its_replay_is_served_it(
        tmp_path: Path) -> None:
    """`voicereplay save` writes the call's contexts into the scenario (their turns mapped to
    the scenario's), and replaying the scenario serves them at the same replies."""
    from voicereplay.pipeline import run_scenario, save_scenario
    from voicereplay.scenario import load_scenario

    settings = Settings.for_home(tmp_path / "home")
    store = Store.from_settings(settings)
    request = ReplayRequest(call=CallRef(call_id="8a626c8c-dff0-53d9-823e-cb2351ec20ef",
                                         directory=DEMO.parent / "knowledge"), **FAKES)
    [result] = pipeline.run_call(store, request, settings=settings)
    saved = save_scenario(store, result.replay.id, tmp_path / "scenarios")
    scenario = load_scenario(saved.path)
    assert [k.source for k in scenario.knowledge] == ["vapi-message", "vapi-tool"]
    for context in scenario.knowledge:  # each points at the agent turn it informed
        assert context.turn is not None and scenario.turns[context.turn].agent
    assert "knowledge:" in saved.path.read_text(encoding="utf-8")
    [again] = run_scenario(store, scenario, request={k: v for k, v in FAKES.items()},
                           settings=settings)
    served = [[k.source for k in t.knowledge] for t in again.replay.turns if t.knowledge]
    assert served == [["vapi-message"], ["vapi-tool"]]
