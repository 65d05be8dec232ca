"""Caller satisfaction estimates: the estimator over a fake judge model (answers scripted by
which call it is shown), validation of what the model says, the comparison, its reports and a
stored comparison without an estimate; once, the embedded SmolLM2 through llama.cpp."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from rich.console import Console

from tests.compare_samples import sample_call, sample_comparison, sample_replay
from voicereplay.compare.comparison import compare
from voicereplay.compare.csat import (
    CSAT_SCHEMA,
    REASON_CHARS,
    CsatEstimator,
    csat_pair,
    parse_csat,
)
from voicereplay.compare.files import report_schema
from voicereplay.compare.judge import JUDGE_SEED
from voicereplay.compare.markdown import report_markdown
from voicereplay.compare.model import Comparison, CsatEstimate, CsatPair
from voicereplay.compare.terminal import comparison_view
from voicereplay.errors import PayloadError, StageError
from voicereplay.models import Turn

REFUND = "issue_refund"  # only the baseline (sample_call) calls it
CHECK = "check_status"  # only the replay calls it


class FakeJudgeModel:
    """A JudgeModel answering by the first key found in the user message; records each ask."""

    def __init__(self, answers: dict[str, str], *, fail: bool = False) -> None:
        self.name = "fake-judge"
        self.answers = answers
        self.fail = fail
        self.asked: list[dict[str, Any]] = []

    def answer(self, messages: list[dict[str, str]], *, schema: dict[str, Any], seed: int,
               max_tokens: int | None) -> str:
        self.asked.append({"messages": messages, "schema": schema, "seed": seed,
                           "max_tokens": max_tokens})
        if self.fail:
            raise StageError("openai-compatible: HTTP 503: overloaded", stage="llm")
        user = messages[-1]["content"]
        return next((text for key, text in self.answers.items() if key in user), "")


def _answer(score: Any, reason: Any) -> str:
    return json.dumps({"reason": reason, "score": score})


def test_a_valid_answer_is_an_estimate_and_the_question_is_the_transcript() -> None:
    model = FakeJudgeModel({REFUND: _answer(2, "The agent refunded an order nobody "
                                               "asked to refund.")})
    estimate = CsatEstimator(model).estimate(sample_call().turns)
    assert estimate == CsatEstimate(
        score=2, reason="The agent refunded an order nobody asked to refund.",
        model="fake-judge")
    [asked] = model.asked
    assert asked["schema"] == CSAT_SCHEMA and asked["seed"] == JUDGE_SEED == 7
    assert CSAT_SCHEMA["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]
    assert CSAT_SCHEMA["required"] == ["reason", "score"]
    system, user = asked["messages"]
    assert system["role"] == "system" and '"score": <1 to 5>' in system["content"]
    # the same transcript the llm_judge checks read: numbered agent turns, tool calls shown
    assert "Agent turn 1: " in user["content"]
    assert "[tool call] issue_refund(" in user["content"]
    assert "Caller: Okay. Thanks. Goodbye." in user["content"]


@pytest.mark.parametrize(("text", "expected"), [
    (_answer(5, "Solved."), (5, "Solved.")),
    ('Sure! ```json\n{"score": "4", "reason": "Got the date."}\n```', (4, "Got the date.")),
    ('{"score": 3.0, "reasoning": "Neutral."}', (3, "Neutral.")),
    ('{"note": "x"} then {"Score": 1, "Reason": "Angry."}', (1, "Angry.")),
    (_answer(2, "The agent refunded\nthe wrong   order.\n\nThe caller was upset."),
     (2, "The agent refunded the wrong order. The caller was upset.")),
])
def test_parse_csat_accepts_and_cleans(text: str, expected: tuple[int, str]) -> None:
    assert parse_csat(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    (_answer(7, "Great"), "the judge's score 7 is outside 1–5"),
    (_answer(0, "Awful"), "the judge's score 0 is outside 1–5"),
    (_answer(3.5, "Meh"), "the judge's score 3.5 is not a whole number 1–5"),
    (_answer(True, "Yes"), "the judge's score True is not a whole number 1–5"),
    (_answer("high", "Yes"), "the judge's score 'high' is not a whole number 1–5"),
    (_answer(4, "   "), "the judge gave score 4 but no reason"),
    ('{"score": 4}', "the judge gave score 4 but no reason"),
    ('{"reason": "fine", "score": 4', "is not a JSON estimate with a score"),
    ("The caller seemed happy, 4/5.", "is not a JSON estimate with a score"),
    ("", "is not a JSON estimate with a score"),
])
def test_parse_csat_refuses_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_csat(text)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_a_bad_answer_or_a_failing_backend_is_an_estimate_with_an_error() -> None:
    turns = sample_call().turns
    out_of_range = CsatEstimator(FakeJudgeModel({REFUND: _answer(9, "Ecstatic")}))
    estimate = out_of_range.estimate(turns)
    assert (estimate.score, estimate.reason) == (None, "")
    assert estimate.error == "the judge's score 9 is outside 1–5"

    long_garbage = "not json " * 100
    malformed = CsatEstimator(FakeJudgeModel({REFUND: long_garbage})).estimate(turns)
    assert malformed.score is None and malformed.error is not None
    assert malformed.error.startswith("the judge's answer is not a JSON estimate with a score: "
                                      "'not json not json")
    assert len(malformed.error) < 260  # the raw answer is quoted, clipped

    failing = CsatEstimator(FakeJudgeModel({}, fail=True)).estimate(turns)
    assert failing.score is None and failing.model == "fake-judge"
    assert failing.error == "the judge failed: openai-compatible: HTTP 503: overloaded"


def test_a_long_reason_is_clipped_to_one_line() -> None:
    reason = "word " * 120
    estimate = CsatEstimator(FakeJudgeModel({REFUND: _answer(3, reason)})).estimate(
        sample_call().turns)
    assert estimate.score == 3 and len(estimate.reason) == REASON_CHARS
    assert estimate.reason.endswith("…") and "\n" not in estimate.reason


def test_the_cache_key_names_the_question() -> None:
    call = sample_call()
    judge = CsatEstimator(FakeJudgeModel({}))
    key = judge.cache_key(call.turns)
    assert key == CsatEstimator(FakeJudgeModel({})).cache_key(call.turns)  # stable
    assert len(key) == 64 and key != judge.cache_key(sample_replay().turns)
    other_model = FakeJudgeModel({})
    other_model.name = "another-judge"
    assert CsatEstimator(other_model).cache_key(call.turns) != key
    assert judge.cache_key(call.turns, served_by="http://127.0.0.1:8080/v1") != key
    assert judge.cache_key([*call.turns, Turn(role="user", text="One more thing.")]) != key


def test_the_pair_estimates_both_sides_and_reuses_a_given_baseline() -> None:
    model = FakeJudgeModel({REFUND: _answer(2, "Wrong refund."),
                            CHECK: _answer(5, "Got the delivery date.")})
    judge = CsatEstimator(model)
    pair = csat_pair(judge, sample_call(), sample_replay())
    assert (pair.baseline.score, pair.replay.score, pair.delta) == (2, 5, 3)
    assert pair.replay.reason == "Got the delivery date." and len(model.asked) == 2

    kept = CsatEstimate(score=4, reason="kept", model="fake-judge", cached=True)
    again = csat_pair(judge, sample_call(), sample_replay(), baseline=kept)
    assert again.baseline is kept and again.delta == 1
    assert len(model.asked) == 3  # only the replay was asked

    broken = csat_pair(CsatEstimator(FakeJudgeModel({CHECK: _answer(5, "ok")})),
                       sample_call(), sample_replay())
    assert broken.baseline.error and broken.replay.score == 5 and broken.delta is None


def test_a_comparison_with_csat_and_its_reports() -> None:
    model = FakeJudgeModel({REFUND: _answer(2, "Refund | <b>nobody</b> asked for."),
                            CHECK: _answer(4, "Got the delivery date.")})
    comparison = compare(sample_call(), sample_replay(), audio=False,
                         csat=CsatEstimator(model))
    assert comparison.csat is not None
    assert (comparison.csat.baseline.score, comparison.csat.replay.score) == (2, 4)
    assert comparison.csat.delta == 2 and comparison.csat.replay.model == "fake-judge"
    without = compare(sample_call(), sample_replay(), audio=False)
    assert without.csat is None  # opt-in

    data = json.loads(comparison.model_dump_json())
    jsonschema.validate(data, report_schema())
    assert data["csat"]["baseline"] == {"score": 2, "reason": "Refund | <b>nobody</b> asked "
                                        "for.", "model": "fake-judge", "error": None,
                                        "cached": False}
    assert Comparison.model_validate(data).csat == comparison.csat

    console = Console(width=200, record=True)
    console.print(comparison_view(comparison, sample_call(), sample_replay()))
    shown = console.export_text()
    assert 'baseline 2/5 — "Refund | <b>nobody</b> asked for."' in shown  # not markup
    assert 'replay   4/5 — "Got the delivery date."  (Δ +2)' in shown
    assert "estimated by fake-judge" in shown

    markdown = report_markdown(comparison)
    assert "## Caller satisfaction (estimate)" in markdown
    assert "| Baseline | 2/5 | Refund \\| \\<b\\>nobody\\</b\\> asked for. |" in markdown
    assert "| Replay | 4/5 | Got the delivery date. |" in markdown
    assert "Δ +2, estimated by fake-judge." in markdown
    assert "Caller satisfaction" not in report_markdown(without)


def test_an_estimate_with_an_error_is_shown_as_such() -> None:
    comparison = sample_comparison()
    comparison.csat = CsatPair(
        baseline=CsatEstimate(model="m", error="the judge's score 9 is outside 1–5"),
        replay=CsatEstimate(score=3, reason="Neutral.", model="m"))
    console = Console(width=200, record=True)
    console.print(comparison_view(comparison, sample_call(), sample_replay()))
    assert "baseline no estimate (the judge's score 9 is outside 1–5)" in console.export_text()
    markdown = report_markdown(comparison)
    assert "| Baseline | — | no estimate: the judge's score 9 is outside 1–5 |" in markdown
    assert "Δ —" in markdown


def test_a_stored_comparison_without_csat_still_loads() -> None:
    data = json.loads(sample_comparison().model_dump_json())
    del data["csat"]
    data["schema_version"] = "1.1"
    loaded = Comparison.model_validate(data)
    assert loaded.csat is None
    jsonschema.validate(data, report_schema())
    with pytest.raises(ValueError, match="less than or equal to 5"):
        CsatEstimate.model_validate({"score": 6, "model": "m"})


# ---- the real embedded SmolLM2 ------------------------------------------------------------

@pytest.mark.models
def test_smollm2_estimates_caller_satisfaction() -> None:
    from voicereplay.pipeline.judging import build_judge

    judge = build_judge("local")
    estimator = CsatEstimator(judge.llm)
    estimate = estimator.estimate(sample_call().turns)
    assert estimate.error is None, estimate.error
    assert estimate.score in (1, 2, 3, 4, 5)
    assert estimate.reason.strip() and "\n" not in estimate.reason
    assert estimate.model == "SmolLM2-135M-Instruct.Q4_1"
    # temperature 0 and a fixed seed: the same question gets the same answer
    assert estimator.estimate(sample_call().turns) == estimate
