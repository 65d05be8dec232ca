"""Turn and adaptive replay modes over the real demo call, with fake stages (and one real run).

The fakes are those of tests/test_replay_engine.py (a duration-matching STT, a tone TTS); the
agent and the simulated caller are :class:`tests.fakes.scripted_llm.ScriptedLLM` s.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.fakes.scripted_llm import Reply, ScriptedLLM, tool_call
from tests.test_replay_engine import DEMO, RECORDINGS, FakeSTT, ToneTTS, rms
from voicereplay.audio import load_channels
from voicereplay.models import Call
from voicereplay.providers.vapi_payload import build_snapshot, parse_call
from voicereplay.simulate.conversation import Step
from voicereplay.simulate.modes.adaptive import caller_prompt, departure
from voicereplay.simulate.replay import ReplayEngine
from voicereplay.simulate.tools import ToolServer
from voicereplay.snapshot import AgentSnapshot

REFUND = {"order_id": "4417", "reason": "customer inquiry"}


@pytest.fixture(scope="module")
def demo() -> tuple[Call, AgentSnapshot]:
    call = parse_call(json.loads((DEMO / "demo-refund.json").read_text()))
    assistant = json.loads((DEMO / "demo-refund.assistant.json").read_text())
    return call, build_snapshot(call, assistant)


class HearingSTT(FakeSTT):
    """FakeSTT that also hears the simulated caller's lines (tone TTS: len(text) * 0.06 s)."""

    def __init__(self, call: Call, lines: list[str]) -> None:
        super().__init__(call)
        self.table.extend((len(line) * 0.06, line) for line in lines)


# -- turn mode --------------------------------------------------------------------------------
def test_turn_mode_asks_every_reply_on_the_original_history(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo
    llm = ScriptedLLM({2: Reply(tool_calls=[tool_call("issue_refund", **REFUND)]),
                       3: "Your refund is done."}, default="Okay, got it.", ttft=0.2,
                      duration=0.2)
    engine = ReplayEngine(FakeSTT(call), llm, ToneTTS())
    result = engine.run(call, snapshot, RECORDINGS, mode="turn", seed=3,
                        tools=ToolServer(call), out_dir=tmp_path)

    answering = [3, 5, 9, 11, 13]  # every agent turn after the first message
    asked = [r for r in llm.requests if r.messages[-1]["role"] == "user"]
    assert len(asked) == len(answering) and len(llm.requests) == len(answering) + 1
    for request, k in zip(asked, answering, strict=True):
        previous_user = max(i for i in range(k) if call.turns[i].role == "user")
        assert request.messages[-1]["content"] == call.turns[previous_user].text
        assert request.messages[0] == {"role": "system", "content": snapshot.system_prompt}
        assert [t["function"]["name"] for t in request.tools] == [
            "check_status", "issue_refund", "endCall"]
        assert request.seed == 3

    # turn 4 (baseline turn 9): the first three exchanges, ending with "Jordan Miles."
    fourth = asked[2]
    assert [(m["role"], m["content"]) for m in fourth.messages[1:]] == [
        ("assistant", call.turns[1].text), ("user", call.turns[2].text),
        ("assistant", call.turns[3].text), ("user", call.turns[4].text),
        ("assistant", call.turns[5].text), ("user", "Jordan Miles.")]
    # turn 5 (baseline 11) gets the baseline's own tool call and result in OpenAI form
    fifth = asked[3].messages
    tool_msg = next(m for m in fifth if m["role"] == "assistant" and m.get("tool_calls"))
    assert tool_msg["tool_calls"][0]["function"]["name"] == "issue_refund"
    result_msg = fifth[fifth.index(tool_msg) + 1]
    assert result_msg["role"] == "tool"
    assert result_msg["tool_call_id"] == tool_msg["tool_calls"][0]["id"]
    assert json.loads(result_msg["content"]) == {"status": "refunded", "amount": 59.99}
    assert fifth[-2:] == [{"role": "assistant", "content": call.turns[9].text},
                          {"role": "user", "content": call.turns[10].text}]

    # the replay's turns: aligned to the baseline's, replies where the originals started
    agents = [t for t in result.turns if t.role == "agent"]
    assert [(t.baseline_turn, t.origin) for t in agents] == [
        (1, "first-message"), *[(k, "llm") for k in answering]]
    for turn in agents:
        assert turn.start == pytest.approx(call.turns[turn.baseline_turn or 0].start)
    assert agents[3].text == "Your refund is done." and agents[1].text == "Okay, got it."
    assert agents[1].llm_request is not None and agents[1].timings is not None
    assert agents[1].timings.llm_ttft == pytest.approx(0.2)
    assert agents[1].timings.llm_total == pytest.approx(0.4)
    users = [t for t in result.turns if t.role == "user"]
    assert [t.baseline_turn for t in users] == [2, 4, 6, 10, 12]
    assert all(t.origin == "original-audio" and t.heard is None for t in users)
    for turn in users:
        assert turn.start == pytest.approx(call.turns[turn.baseline_turn or 0].start)

    # the recorded refund is served when asked for with the recorded arguments
    calls = [t for t in result.turns if t.role == "tool_call"]
    results = [t for t in result.turns if t.role == "tool_result"]
    assert [c.tool_calls[0].name for c in calls] == ["issue_refund"]
    assert (calls[0].baseline_turn, results[0].baseline_turn) == (7, 8)
    answer = results[0].tool_result
    assert answer is not None and answer.source == "recorded"
    assert json.loads(answer.result) == {"status": "refunded", "amount": 59.99}
    assert result.mode == "turn" and result.ended_reason == "all-turns-replayed"
    assert result.divergence is None

    # audio: the original caller, the new agent at the original times, silent otherwise
    files = {r.kind: Path(r.path or "") for r in result.recordings}
    assert sorted(files) == ["agent", "customer", "mixed", "stereo"]
    assert {soundfile.info(str(p)).frames for p in files.values()} == {
        soundfile.info(str(files["stereo"])).frames}
    stereo = load_channels(files["stereo"])
    assert np.allclose(stereo[1].samples, load_channels(files["agent"])[0].samples)
    for turn in agents:
        assert rms(stereo[1], turn.start, turn.end) > 0.1
    for turn in users:
        assert rms(stereo[0], turn.start, turn.end) > 0.01
        assert rms(stereo[1], turn.start, turn.end) == 0.0


# -- adaptive mode ----------------------------------------------------------------------------
CALLER_LINES = ["So when will my headphones arrive, please?", "Okay. Thanks a lot. Goodbye!"]


def adaptive_llms(call: Call) -> tuple[ScriptedLLM, ScriptedLLM]:
    agent = ScriptedLLM({
        "headphones last week": call.turns[3].text,  # as in the baseline
        "4417": "Thanks! Can you confirm the name on the order?",  # close enough
        "jordan miles": "Let me look that order up for you.",  # no refund: diverges
        "arrive": "It ships on Friday.",
        "goodbye": "You're welcome, take care.",
    }, default="Okay.")
    caller = ScriptedLLM({0: CALLER_LINES[0], 1: CALLER_LINES[1]}, default="Hmm.")
    return agent, caller


def test_adaptive_mode_hands_over_to_an_llm_caller_at_the_divergence(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo
    agent, caller = adaptive_llms(call)
    engine = ReplayEngine(HearingSTT(call, CALLER_LINES), agent, ToneTTS(), ToneTTS(180.0),
                          caller_llm=caller)
    result = engine.run(call, snapshot, RECORDINGS, mode="adaptive", seed=5,
                        tools=ToolServer(call), out_dir=tmp_path)

    divergence = result.divergence
    assert divergence is not None
    assert divergence is not None
    assert (divergence.reason, divergence.caller_turn) == ("tool-call", 3)
    assert divergence.baseline_turn == 7
    assert (divergence.expected_tools, divergence.got_tools) == (["issue_refund"], [])
    assert result.turns[divergence.turn].text == "Let me look that order up for you."

    users = [t for t in result.turns if t.role == "user"]
    assert [t.origin for t in users] == ["original-audio"] * 3 + ["caller-llm"] * 2
    assert [t.baseline_turn for t in users] == [2, 4, 6, None, None]
    assert [t.text for t in users[3:]] == CALLER_LINES
    assert [t.heard for t in users[3:]] == CALLER_LINES  # through the STT, like any caller
    assert [t.text for t in result.turns if t.role == "agent"][-2:] == [
        "It ships on Friday.", "You're welcome, take care."]
    assert result.turns[-1].role == "agent"
    assert result.ended_reason == "caller-goodbye" and result.mode == "adaptive"
    assert len(caller.requests) == 2  # ended on the goodbye
    assert result.backends.caller_llm == "scripted"

    system = caller.requests[0].messages[0]["content"]
    assert system.startswith("You are the caller in this phone call. Your goal:")
    assert call.analysis.summary and call.analysis.summary in system
    assert call.turns[2].text in system  # what the caller originally wanted
    assert "say goodbye when your goal is met" in system
    heard_by_caller = caller.requests[0].messages[1:]
    assert heard_by_caller[-1] == {"role": "user", "content": "Let me look that order up for you."}
    assert heard_by_caller[-2] == {"role": "assistant", "content": "Jordan Miles."}
    assert caller.requests[1].messages[-1]["content"] == "It ships on Friday."


def test_adaptive_mode_stays_scripted_while_the_agent_matches(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo
    agent = ScriptedLLM({k: call.turns[i].text for k, i in ((0, 3), (1, 5), (3, 9), (4, 11),
                                                            (5, 13))} |
                        {2: Reply(tool_calls=[tool_call("issue_refund", **REFUND)])})
    caller = ScriptedLLM(default="never asked")
    engine = ReplayEngine(FakeSTT(call), agent, ToneTTS(), ToneTTS(180.0), caller_llm=caller)
    result = engine.run(call, snapshot, RECORDINGS, mode="adaptive", tools=ToolServer(call),
                        out_dir=tmp_path)
    assert result.divergence is None and caller.requests == []
    assert {t.origin for t in result.turns if t.role == "user"} == {"original-audio"}
    assert result.ended_reason == "agent-ended-call"  # the baseline's "Goodbye."


def test_the_simulated_caller_is_capped_at_twice_the_baseline_turns(
        demo: tuple[Call, AgentSnapshot], tmp_path: Path) -> None:
    call, snapshot = demo
    agent, _ = adaptive_llms(call)
    caller = ScriptedLLM(default="I still need my headphones.")
    engine = ReplayEngine(HearingSTT(call, ["I still need my headphones."]), agent, ToneTTS(),
                          ToneTTS(180.0), caller_llm=caller)
    result = engine.run(call, snapshot, RECORDINGS, mode="adaptive", tools=ToolServer(call),
                        out_dir=tmp_path)
    assert len([t for t in result.turns if t.role == "user"]) == 2 * 5
    assert result.ended_reason == "caller-turn-cap"


def test_departure_compares_tools_then_words(demo: tuple[Call, AgentSnapshot]) -> None:
    call, _ = demo
    same = [Step("say", 0.0, text="I can help with that! Could you give me your order number?")]
    assert departure(call, 2, same) is None
    other = departure(call, 2, [Step("say", 0.0, text="Which store did you visit today?")])
    assert other is not None and other["reason"] == "text" and other["similarity"] < 0.5
    told = departure(call, 2, [Step("say", 0.0, text="Our store opens at nine tomorrow.")])
    assert told is not None and told["reason"] == "intent"  # a statement, not a question
    assert told["detail"] == "question → statement"
    strict = departure(call, 2, same, threshold=0.99)
    assert strict is not None and strict["reason"] == "text"
    assert "Jordan Miles." in caller_prompt(call)


# -- a real run -------------------------------------------------------------------------------
@pytest.mark.models
@pytest.mark.integration
def test_turn_mode_with_the_real_models(tmp_path: Path) -> None:
    from voicereplay.pipeline import import_calls
    from voicereplay.pipeline.replaying import ReplayOptions, replay_call
    from voicereplay.providers.files import FilesProvider
    from voicereplay.snapshot import Overrides
    from voicereplay.store import Store

    exported = tmp_path / "export"
    exported.mkdir()
    for path in DEMO.glob("demo-refund.*"):
        shutil.copy(path, exported / path.name)
    store = Store(f"sqlite:///{tmp_path / 'vr.db'}", tmp_path / "artifacts")
    try:
        [outcome] = import_calls(store, FilesProvider(exported))
        assert outcome.ok and outcome.call_id is not None
        call = store.get_call(outcome.call_id, outcome.provider)
        base = store.snapshot_for_call(call.call_id, call.provider)
        assert base is not None
        snapshot = base.apply(Overrides.from_pairs(["model.max_tokens=30"]))
        [result] = replay_call(store, call, snapshot, base_snapshot=base,
                               options=ReplayOptions(mode="turn", model="local", seed=1))
    finally:
        store.close()
    assert result.mode == "turn" and result.status == "completed"
    assert result.backends.llm == "llama-cpp"
    agents = [t for t in result.turns if t.role == "agent" and t.origin == "llm"]
    assert [t.baseline_turn for t in agents] == [3, 5, 9, 11, 13]
    assert all(t.llm_request and t.timings and t.timings.llm_total for t in agents)
    users = [t for t in result.turns if t.role == "user"]
    assert len(users) == 5 and all(t.heard is None for t in users)
    assert sorted(r.kind for r in result.recordings) == ["agent", "customer", "mixed", "stereo"]
    assert all(Path(r.path or "").exists() for r in result.recordings)
