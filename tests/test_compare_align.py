"""Alignment, word and tool-call diffs, divergence, fidelity and flakiness on hand-made turns."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicereplay.compare.align import align, call_text, tool_changes, word_diff
from voicereplay.compare.comparison import scored_alignment
from voicereplay.compare.divergence import find_divergence, intent
from voicereplay.compare.fidelity import flakiness, measure
from voicereplay.compare.similarity import Lexical
from voicereplay.models import Call, Replay, ReplayTurn, ToolCall, ToolResult, Turn


def agent(text: str) -> Turn:
    return Turn(role="agent", text=text)


def user(text: str) -> Turn:
    return Turn(role="user", text=text)


def tool(name: str, **arguments: Any) -> Turn:
    return Turn(role="tool_call", tool_calls=[ToolCall(id=name, name=name, arguments=arguments)])


def result(name: str) -> Turn:
    return Turn(role="tool_result", tool_result=ToolResult(id=name, name=name, result="{}"))


BASELINE = [
    Turn(role="system", text="You are Sam."),
    agent("Thanks for calling Acme Audio. How can I help?"),  # agent 1
    user("Where is my order?"),  # caller 1
    agent("Could you give me your order number?"),  # agent 2
    user("It's 4417."),  # caller 2
    agent("And the name on the order?"),  # agent 3
    user("Jordan Miles."),  # caller 3
    tool("issue_refund", order_id="4417"),  # agent 4
    result("issue_refund"),
    agent("I've issued a refund of $59.99."),
    user("I didn't want a refund."),  # caller 4
    agent("I'm sorry. I'll escalate this to our orders team."),  # agent 5
]


def call_of(turns: list[Turn]) -> Call:
    return Call(provider="vapi", call_id="c1", turns=turns)


def replay_of(turns: list[Turn], **fields: Any) -> Replay:
    return Replay(id="r1", call_provider="vapi", call_id="c1", snapshot_id="s",
                  turns=[ReplayTurn(**t.model_dump()) for t in turns], **fields)


def kinds(rows: list[Any]) -> list[tuple[str, int | None, str]]:
    return [(r.kind, r.number, r.status) for r in rows]


def test_identical_turns_align_one_to_one() -> None:
    rows = align(BASELINE, BASELINE)
    assert kinds(rows) == [("agent", 1, "matched"), ("caller", 1, "matched"),
                           ("agent", 2, "matched"), ("caller", 2, "matched"),
                           ("agent", 3, "matched"), ("caller", 3, "matched"),
                           ("agent", 4, "matched"), ("caller", 4, "matched"),
                           ("agent", 5, "matched")]
    four = rows[6]
    assert four.baseline_turns == [7, 8, 9] == four.replay_turns
    assert four.baseline_tools == ["issue_refund"] and four.tool_changes == []
    assert all(op.op == "equal" for op in four.words)


def test_an_extra_reply_in_the_replay_is_inserted_and_the_rest_still_pair() -> None:
    # The replay asks twice for the order number (the caller's turn 2 was not understood),
    # the caller repeats it: one agent reply and one caller turn more than the baseline.
    replay = [*BASELINE[:5], agent("Sorry, could you repeat the order number?"),
              user("It's 4417."), *BASELINE[5:]]
    rows = align(BASELINE, replay)
    assert kinds(rows)[:7] == [("agent", 1, "matched"), ("caller", 1, "matched"),
                               ("agent", 2, "matched"), ("caller", 2, "matched"),
                               ("agent", 3, "inserted"), ("caller", 3, "inserted"),
                               ("agent", 3, "matched")]
    inserted = rows[4]
    assert inserted.replay_number == 3 and inserted.baseline_turns == []
    assert rows[6].replay_number == 4  # the baseline's agent turn 3 is the replay's turn 4
    assert [r.status for r in rows[7:]] == ["matched"] * 4


def test_a_replay_that_ends_early_drops_the_baseline_turns_it_never_reached() -> None:
    rows = align(BASELINE, BASELINE[:6])
    assert kinds(rows)[-4:] == [("caller", 3, "dropped"), ("agent", 4, "dropped"),
                                ("caller", 4, "dropped"), ("agent", 5, "dropped")]
    dropped = rows[6]
    assert dropped.replay_turns == [] and dropped.baseline_tools == ["issue_refund"]
    assert dropped.tool_changes[0].kind == "dropped"
    assert dropped.tool_changes[0].summary == "turn 4: dropped issue_refund(order_id='4417')"


def test_a_dropped_caller_turn_leaves_the_replies_around_it_paired() -> None:
    # The replay never heard caller 2 (silence): agent 2 is followed directly by caller 3.
    replay = [*BASELINE[:4], *BASELINE[6:]]
    rows = align(BASELINE, replay)
    assert ("caller", 2, "dropped") in kinds(rows)
    assert ("agent", 3, "dropped") in kinds(rows)
    assert [r.status for r in rows if r.kind == "agent" and r.number in (4, 5)] == ["matched"] * 2


def test_the_demo_fix_reads_as_turn_4_issue_refund_to_check_status() -> None:
    replay = [*BASELINE[:7], tool("check_status", order_id="4417"), result("check_status"),
              agent("Your order shipped on Monday and arrives Friday."), *BASELINE[10:]]
    call = call_of(BASELINE)
    rows = scored_alignment(call, replay_of(replay), Lexical())
    four = rows[6]
    [change] = four.tool_changes
    assert (change.kind, change.summary) == ("renamed", "turn 4: issue_refund → check_status")
    assert change.arguments == {}  # same order id
    found = find_divergence(rows, 0.5)
    assert found is not None
    assert (found.turn, found.reason, found.detail) == (4, "tool-call",
                                                       "issue_refund → check_status")


def test_tool_call_diffs_added_dropped_and_changed_arguments() -> None:
    def c(name: str, **arguments: Any) -> ToolCall:
        return ToolCall(id=name, name=name, arguments=arguments)

    changes = tool_changes(2, [c("lookup", order_id="4417"), c("notify")],
                           [c("lookup", order_id=4471), c("notify"), c("transfer", team="x")])
    assert [(x.kind, x.summary) for x in changes] == [
        ("arguments", "turn 2: lookup order_id: '4417' → 4471"),
        ("added", "turn 2: added transfer(team='x')"),
    ]
    assert changes[0].arguments == {"order_id": {"baseline": "4417", "replay": 4471}}
    # a number and its string are the same argument value
    assert tool_changes(1, [c("lookup", order_id="4417")], [c("lookup", order_id=4417)]) == []
    assert call_text(ToolCall(id="x", name="f", raw_arguments="{not json")) == "f({not json)"


def test_word_diff_ignores_case_and_punctuation_but_shows_words_as_written() -> None:
    ops = word_diff("Thanks. And can you confirm the name?", "thanks and can you spell the name")
    assert [(o.op, o.baseline, o.replay) for o in ops] == [
        ("equal", "Thanks. And can you", "thanks and can you"),
        ("replace", "confirm", "spell"),
        ("equal", "the name?", "the name"),
    ]
    assert [o.op for o in word_diff("", "hello there")] == ["insert"]


@pytest.mark.parametrize(("text", "expected"), [
    ("Could you give me your order number?", "question"),
    ("What's the name on the order", "question"),
    ("I've issued a refund of $59.99.", "statement"),
    ("I'm so sorry about that.", "apology"),
    ("I'll escalate this to our orders team right away.", "handover"),
    ("Thank you for your patience, Jordan. Goodbye.", "goodbye"),
    ("", None),
])
def test_intent(text: str, expected: str | None) -> None:
    assert intent(text) == expected


def test_divergence_by_intent_then_by_text_and_none_when_kept() -> None:
    question = [*BASELINE[:3], agent("Your order number, please.")]  # statement, same topic
    rows = scored_alignment(call_of(BASELINE), replay_of(question), Lexical())
    found = find_divergence(rows, 0.5)
    assert found is not None and (found.turn, found.reason) == (2, "intent")
    assert (found.baseline_intent, found.replay_intent) == ("question", "statement")

    other = [*BASELINE[:3], agent("Do you like our new speakers or the headphones?")]
    found = find_divergence(scored_alignment(call_of(BASELINE), replay_of(other), Lexical()),
                            0.5)
    assert found is not None and found.reason == "text" and found.similarity is not None
    assert found.similarity < 0.5

    assert find_divergence(scored_alignment(call_of(BASELINE), replay_of(BASELINE), Lexical()),
                           0.5) is None


def test_fidelity_parts_by_hand() -> None:
    # Replay: agent 3 reworded (similarity s3), agent 4 calls check_status instead of
    # issue_refund, agent 5 never happens (the call ended): 5 baseline replies, 4 replayed.
    replay = [*BASELINE[:5], agent("And the name on it?"), *BASELINE[6:7],
              tool("check_status", order_id="4417"), result("check_status"),
              agent("I've issued a refund of $59.99.")]
    rows = scored_alignment(call_of(BASELINE), replay_of(replay), Lexical())
    s3 = Lexical().score("And the name on the order?", "And the name on it?")
    assert s3 == pytest.approx(2 * 4 / (6 + 5))  # and the name on · matched 4 of 6 + 5 words
    fidelity = measure(rows, basis="test")
    # agent similarity: (1 + 1 + s3 + 1 + 0) / 5; tools: 0 of max(1, 1) kept; turns 4 / 5
    assert fidelity.agent_similarity == pytest.approx((3 + s3) / 5, abs=1e-4)
    assert fidelity.tool_agreement == 0.0
    assert fidelity.turn_count_ratio == pytest.approx(0.8)
    assert fidelity.score == pytest.approx(((3 + s3) / 5 + 0 + 0.8) / 3, abs=1e-4)
    assert fidelity.level == "low"
    before = measure(rows, basis="before", before_turn=4)  # agents 1-3 only
    assert before.agent_similarity == pytest.approx((2 + s3) / 3, abs=1e-4)
    assert before.tool_agreement == 1.0 and before.turn_count_ratio == 1.0


def test_flakiness_per_turn_from_runs_that_disagree() -> None:
    call = call_of(BASELINE)
    same = scored_alignment(call, replay_of(BASELINE), Lexical())
    other = [*BASELINE[:7], tool("check_status", order_id="4417"), result("check_status"),
             agent("I've issued a refund of $59.99."), *BASELINE[10:]]
    changed = scored_alignment(call, replay_of(other), Lexical())
    found = {f.turn: f for f in flakiness([same, same, changed], Lexical())}
    assert found[1].disagreement == 0.0 and found[1].tool_disagreement == 0.0
    # turn 4: the same words in all three runs, tools differ in 2 of the 3 pairs
    assert found[4].disagreement == 0.0
    assert found[4].tool_disagreement == pytest.approx(2 / 3, abs=1e-4)
    assert len(found[4].texts) == 3


def _origins(turns: list[Turn], opening: str = "first-message") -> Replay:
    replay = replay_of(turns, overrides={"system_prompt": "changed"})
    for n, turn in enumerate(replay.turns):
        if turn.role == "agent":
            turn.origin = opening if n == 1 else "llm"  # type: ignore[assignment]
    return replay


def test_fidelity_basis_follows_overrides_reference_and_generated_turns() -> None:
    from voicereplay.compare.comparison import compare

    call = call_of(BASELINE)
    # a changed agent that departs at once: only the fixed opening came before → unknown
    early = _origins([*BASELINE[:3], agent("Our store opens at nine.")])
    fidelity = compare(call, early, audio=False).fidelity
    assert (fidelity.basis, fidelity.score, fidelity.level) == (
        "the turns before the divergence", None, "unknown")
    assert fidelity.note.startswith("no LLM reply came before the divergence")
    # departs at turn 4: the LLM's turns 2 and 3 reproduced the baseline
    late = _origins([*BASELINE[:7], tool("check_status", order_id="4417"),
                     result("check_status"), agent("It ships Friday."), *BASELINE[10:]])
    fidelity = compare(call, late, audio=False).fidelity
    assert fidelity.agent_similarity == 1.0 and fidelity.level == "high"
    # with a reference replay (no overrides), its fidelity is the one stated
    reference = replay_of(BASELINE[:6]).model_copy(update={"id": "ref"})
    fidelity = compare(call, late, reference=reference, audio=False).fidelity
    assert fidelity.replay_id == "ref" and fidelity.basis.startswith("replay ref")
    assert fidelity.turn_count_ratio == pytest.approx(3 / 5)
    # no overrides: the replay measures itself
    own = compare(call, replay_of(BASELINE), audio=False).fidelity
    assert (own.basis, own.score) == ("this replay (no overrides)", 1.0)


def test_unreadable_audio_is_a_warning_and_the_metrics_come_from_the_turns(
        tmp_path: Any) -> None:
    from voicereplay.compare.comparison import compare
    from voicereplay.compare.files import write_reports
    from voicereplay.models import Recording

    broken = tmp_path / "stereo.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    timed = [t.model_copy(update={"start": 2.0 * n, "end": 2.0 * n + 1.5})
             for n, t in enumerate(BASELINE)]
    call = call_of(timed).model_copy(update={
        "recordings": [Recording(kind="stereo", path=str(broken))], "duration": 30.0})
    comparison = compare(call, replay_of(timed), similarity=Lexical())
    assert comparison.baseline_metrics.interruptions_source == "transcript"
    assert any("cannot read audio" in w and str(broken) in w for w in comparison.warnings)
    files = write_reports(comparison, call, replay_of(timed), tmp_path / "reports")
    assert any(w.startswith("waveform drawn without audio") for w in comparison.warnings)
    assert "waveform drawn without audio" in open(files["markdown"]).read()


_WORDS = ["order", "refund", "status", "name", "thanks", "sorry", "friday", "4417"]


@st.composite
def conversations(draw: st.DrawFn) -> list[Turn]:
    turns: list[Turn] = []
    for _ in range(draw(st.integers(0, 12))):
        role = draw(st.sampled_from(["agent", "user", "tool_call", "tool_result", "system"]))
        text = " ".join(draw(st.lists(st.sampled_from(_WORDS), max_size=5)))
        if role == "tool_call":
            turns.append(tool(draw(st.sampled_from(["issue_refund", "check_status"])),
                              order_id=draw(st.sampled_from(["4417", "1234"]))))
        elif role == "tool_result":
            turns.append(result("check_status"))
        else:
            turns.append(Turn(role=role, text=text))  # type: ignore[arg-type]
    return turns


@settings(max_examples=150, deadline=None)
@given(conversations(), conversations())
def test_alignment_keeps_every_turn_once_and_in_order(baseline: list[Turn],
                                                      replay: list[Turn]) -> None:
    rows = scored_alignment(call_of(baseline), replay_of(replay), Lexical())
    left = [i for r in rows for i in r.baseline_turns]
    right = [i for r in rows for i in r.replay_turns]
    assert left == [i for i, t in enumerate(baseline) if t.role != "system"]
    assert right == [i for i, t in enumerate(replay) if t.role != "system"]
    for row in rows:
        assert (row.status == "matched") == bool(row.baseline_turns and row.replay_turns)
        if row.kind == "agent":
            assert row.similarity is not None and 0.0 <= row.similarity <= 1.0
    found = find_divergence(rows, 0.5)
    if found is None:
        assert all(r.status == "matched" and not r.tool_changes for r in rows
                   if r.kind == "agent")
    measure(rows, basis="property")  # never raises
