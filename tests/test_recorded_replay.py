"""The recorded LLM in the replay engine: every run replays the baseline, and a caller who
speaks last and hangs up gets no invented agent turn.

Fake STT/TTS (from test_replay_engine) keep this fast; the real models run in
test_recorded_fidelity.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_replay_engine import DEMO, RECORDINGS, FakeSTT, ToneTTS
from voicereplay.models import Call
from voicereplay.providers.vapi_payload import build_snapshot, parse_call
from voicereplay.simulate.backends.recorded import RecordedLLM, recorded_steps
from voicereplay.simulate.replay import ReplayEngine
from voicereplay.simulate.tools import ToolServer
from voicereplay.snapshot import AgentSnapshot


def demo() -> tuple[Call, AgentSnapshot]:
    call = parse_call(json.loads((DEMO / "demo-refund.json").read_text()))
    return call, build_snapshot(call, json.loads((DEMO / "demo-refund.assistant.json").read_text()))


def spoken(turns: list) -> list[str]:  # type: ignore[type-arg]
    return [t.text for t in turns if t.role == "agent"]


def engine_for(call: Call, snapshot: AgentSnapshot) -> ReplayEngine:
    steps = recorded_steps(call, skip_first_message=snapshot.first_message_mode
                           == "agent-speaks-first")
    return ReplayEngine(FakeSTT(call), RecordedLLM(steps), ToneTTS(), ToneTTS())


def test_every_run_of_one_engine_replays_the_recorded_replies(tmp_path: Path) -> None:
    call, snapshot = demo()
    engine = engine_for(call, snapshot)
    runs = [engine.run(call, snapshot, RECORDINGS, seed=7, tools=ToolServer(call),
                       out_dir=tmp_path / str(n)) for n in range(3)]
    baseline = spoken(call.turns)
    for replay in runs:
        assert spoken(replay.turns) == baseline
        assert [c.name for t in replay.turns for c in t.tool_calls] == ["issue_refund"]
        assert replay.ended_reason == "agent-ended-call"


def test_a_caller_who_speaks_last_gets_no_empty_agent_turn(tmp_path: Path) -> None:
    call, snapshot = demo()
    last_user = max(i for i, t in enumerate(call.turns) if t.role == "user")
    hung_up = call.model_copy(update={"turns": call.turns[: last_user + 1]})
    replay = engine_for(hung_up, snapshot).run(hung_up, snapshot, RECORDINGS, seed=7,
                                               tools=ToolServer(hung_up), out_dir=tmp_path)
    assert spoken(replay.turns) == spoken(hung_up.turns)
    assert all(t.text for t in replay.turns if t.role == "agent")
    assert replay.turns[-1].role == "user"
    assert replay.ended_reason == "caller-done"
