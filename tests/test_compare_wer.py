"""voicereplay.compare.normalize and .wer: the text normalizer, WER/CER by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicereplay.compare.normalize import DESCRIPTION, normalize, spell_number, spell_ordinal
from voicereplay.compare.wer import word_errors
from voicereplay.models import Call, Replay, ReplayTurn, Turn, TurnOrigin
from voicereplay.providers.files import FilesProvider, scan

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"


@pytest.mark.parametrize(("text", "expected"), [
    ("It's 4417.", "it's 4417"),
    ("It’s 4417!", "it's 4417"),  # curly apostrophe
    ("$59.99", "59 dollars 99 cents"),
    ("a refund of $59.99, please", "a refund of 59 dollars 99 cents please"),
    ("$1", "1 dollar"),
    ("$0.50", "50 cents"),
    ("$1,200", "1200 dollars"),
    ("1st", "first"),
    ("21st 22nd 23rd 100th 12th", "20 first 20 second 20 third 1 hundredth twelfth"),
    ("3%", "3 percent"),
    ("2.5 %", "2 point 5 percent"),
    ("1,200", "1200"),
    ("4 4 1 7", "4417"),  # a number reads as its digits, however it was written
    ("four four one seven", "4417"),
    ("four thousand four hundred seventeen", "4417"),
    ("forty four seventeen", "4417"),
    ("one hundred and five", "105"),
    ("nineteen eighty four", "1984"),
    ("007", "007"),
    ("2.5", "2 point 5"),
    ("10:30 a.m.", "1030 am"),
    ("10:05", "10 oh 5"),
    ("2 PM", "2 pm"),
    ("Don't  go—now!", "don't go now"),
    ("twenty-one", "21"),
    ("'quoted' customers' \"fine\"", "quoted customers fine"),
    ("Tom & Jerry", "tom and jerry"),
    ("  Hello,\n\tWorld...  ", "hello world"),
    ("...", ""),
    ("", ""),
])
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_number_speller() -> None:
    assert spell_number(0) == "zero"
    assert spell_number(15) == "fifteen"
    assert spell_number(40) == "forty"
    assert spell_number(101) == "one hundred one"
    assert spell_number(4417) == "four thousand four hundred seventeen"
    assert spell_number(1_000_000) == "one million"
    assert spell_number(2_025_000_019) == "two billion twenty five million nineteen"
    assert spell_ordinal(1) == "first"
    assert spell_ordinal(20) == "twentieth"
    assert spell_ordinal(1005) == "one thousand fifth"
    assert DESCRIPTION and "\n" not in DESCRIPTION


# -- word_errors --------------------------------------------------------------------------------
BASELINE = [
    Turn(role="agent", text="Hello, how can I help?"),                 # 0
    Turn(role="user", text="It's 4417."),                              # 1: caller turn 1
    Turn(role="agent", text="Thanks."),                                # 2
    Turn(role="user", text="I'd like a refund of $59.99, please."),    # 3: caller turn 2
    Turn(role="agent", text="OK."),                                    # 4
    Turn(role="user", text="..."),                                     # 5: caller turn 3
    Turn(role="user", text="Yes."),                                    # 6: caller turn 4
]


def replay_of(*turns: ReplayTurn) -> Replay:
    return Replay(id="r", call_provider="vapi", call_id="c", snapshot_id="s", turns=list(turns))


def heard(index: int | None, text: str | None, origin: TurnOrigin = "original-audio"
          ) -> ReplayTurn:
    return ReplayTurn(role="user", text="", baseline_turn=index, heard=text, origin=origin)


def call() -> Call:
    return Call(provider="vapi", call_id="c", turns=BASELINE)


def test_word_errors_by_hand() -> None:
    replay = replay_of(
        ReplayTurn(role="agent", text="Hello", origin="first-message"),
        # reference "it's 4417": 2 words, 9 characters.
        # "its": one substituted word → WER 1/2; one deleted character (') → CER 1/9
        heard(1, "its four thousand four hundred seventeen"),
        # reference "i'd like a refund of 59 dollars 99 cents please": 10 words, 47
        # characters. One inserted word "and" → WER 1/10; "and " is 4 inserted characters
        # → CER 4/47
        heard(3, "I'd like a refund of fifty-nine dollars and ninety-nine cents, please",
              "tts-of-transcript"),
        heard(5, "uh"),  # the reference normalizes to nothing: skipped
        heard(6, "yes", "caller-llm"),  # the simulated caller's own words: not scored
        heard(None, "hello"),  # replays no baseline turn
        heard(1, None),  # nothing heard recorded
        heard(2, "thanks"),  # points at an agent turn
        heard(99, "out of range"),
    )
    errors = word_errors(call(), replay)
    assert errors is not None
    assert [(t.turn, t.wer, t.cer) for t in errors.turns] == [
        (1, pytest.approx(1 / 2), pytest.approx(1 / 9)),
        (2, pytest.approx(1 / 10), pytest.approx(4 / 47)),
    ]
    first = errors.turns[0]
    assert first.reference == "it's 4417"
    assert first.hypothesis == "its 4417"
    # corpus figures: total edits / total reference size, not the mean of the turn rates
    # (that would be (1/2 + 1/10) / 2 = 0.3)
    assert errors.wer == pytest.approx(2 / 12)
    assert errors.cer == pytest.approx(5 / 56)
    assert errors.normalizer == DESCRIPTION


def test_digits_and_words_score_zero() -> None:
    errors = word_errors(call(), replay_of(
        heard(1, "It’s four thousand four hundred seventeen"),
        heard(3, "i'd like a refund of 59 dollars 99 cents please"),
    ))
    assert errors is not None
    assert (errors.wer, errors.cer) == (0.0, 0.0)
    assert [t.wer for t in errors.turns] == [0.0, 0.0]


def test_empty_hypothesis_is_all_deletions() -> None:
    errors = word_errors(call(), replay_of(heard(1, "")))
    assert errors is not None
    assert (errors.wer, errors.cer) == (1.0, 1.0)
    assert errors.turns[0].hypothesis == ""


def test_nothing_to_score_is_none() -> None:
    assert word_errors(call(), replay_of()) is None
    assert word_errors(call(), replay_of(heard(5, "uh"), heard(6, "yes", "caller-llm"))) is None
    blank = Call(provider="vapi", call_id="c", turns=[Turn(role="user", text=" ")])
    assert word_errors(blank, replay_of(heard(0, "something"))) is None


def test_demo_call_heard_verbatim() -> None:
    [file] = scan(DEMO)
    demo = FilesProvider(DEMO).load(file)
    replay = replay_of(*(heard(i, t.text) for i, t in enumerate(demo.turns) if t.role == "user"))
    errors = word_errors(demo, replay)
    assert errors is not None
    assert [t.turn for t in errors.turns] == [1, 2, 3, 4, 5]
    assert (errors.wer, errors.cer) == (0.0, 0.0)
    assert errors.turns[1].reference == "sure it's 4417"
    # whisper writes the order number digit by digit: not an error
    second = [i for i, t in enumerate(demo.turns) if t.role == "user"][1]
    spoken = replay_of(heard(second, "Sure, it's four four one seven."))
    assert word_errors(demo, spoken).wer == 0.0  # type: ignore[union-attr]
