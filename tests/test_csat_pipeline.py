"""``--csat`` end to end with the fake replay backends and a scripted judge served as Chat
Completions on 127.0.0.1: the comparison, report.json, the baseline cache, showing a stored
replay, the CLI and the comparison page."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.fakes.openai_chat import chat_app
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fakes.server import RunningServer, serve
from tests.web_demo import DEMO_CALL, demo_request
from voicereplay import pipeline
from voicereplay.cli import app
from voicereplay.compare.aggregate import CallRow, aggregate
from voicereplay.config import Settings
from voicereplay.pipeline import ReportOptions
from voicereplay.store import Store
from voicereplay.web import create_app

pytestmark = pytest.mark.integration

# The judge is shown one call at a time: in the replay the fake LLM calls check_status, in the
# baseline the production agent called issue_refund.
REPLAY_KEY, BASELINE_KEY = "[tool call] check_status", "[tool call] issue_refund"
REPLAY_ANSWER = json.dumps({"reason": "The caller got the <b>delivery date</b>.", "score": 4})
BASELINE_ANSWER = json.dumps({"reason": "A refund nobody asked for.", "score": 2})
runner = CliRunner()


@pytest.fixture
def judge() -> Iterator[tuple[RunningServer, list[dict[str, Any]], ScriptedLLM]]:
    llm = ScriptedLLM({REPLAY_KEY: REPLAY_ANSWER, BASELINE_KEY: BASELINE_ANSWER},
                      default="no idea")
    bodies: list[dict[str, Any]] = []
    with serve(chat_app(llm, bodies)) as server:
        yield server, bodies, llm


def _options(server: RunningServer, **fields: Any) -> ReportOptions:
    return ReportOptions(csat=True, judge_model="judge-model",
                         judge_base_url=f"{server.url}/v1", **fields)


def test_call_with_csat_estimates_both_sides_and_caches_the_baseline(
        judge: tuple[RunningServer, list[dict[str, Any]], ScriptedLLM]) -> None:
    server, bodies, _llm = judge
    settings = Settings.from_env()
    store = Store.from_settings(settings)
    [first] = pipeline.run_call(store, demo_request(report=_options(server)), settings=settings)
    csat = first.comparison.csat
    assert csat is not None
    assert (csat.baseline.score, csat.replay.score, csat.delta) == (2, 4, 2)
    assert csat.baseline.reason == "A refund nobody asked for."
    assert csat.replay.model == "judge-model" and not csat.baseline.cached
    assert len(bodies) == 2
    assert all((b["temperature"], b["seed"], b["response_format"]) ==
               (0.0, 7, {"type": "json_object"}) for b in bodies)
    stored = json.loads(Path(first.comparison.files["json"]).read_text(encoding="utf-8"))
    assert stored["csat"]["replay"]["score"] == 4 and stored["csat"]["delta"] == 2
    assert len(list((settings.artifacts_dir / "csat").glob("*.json"))) == 1

    # a second replay of the same call asks the judge about the replay only
    [second] = pipeline.run_call(store, demo_request(report=_options(server), seed=3),
                                 settings=settings)
    assert second.comparison.csat is not None and len(bodies) == 3
    assert second.comparison.csat.baseline.cached
    assert second.comparison.csat.baseline.score == 2 and second.comparison.csat.delta == 2

    # showing a stored replay reads the estimate from its report.json; nothing is asked
    shown = pipeline.show_replay(store, first.replay.id)
    assert shown.comparison.csat == csat and len(bodies) == 3
    # comparing again without --csat keeps it; with --csat it is estimated again
    again = pipeline.compare_stored(store, DEMO_CALL, first.replay.id,
                                    report=ReportOptions(figures=None), settings=settings)
    assert again.comparison.csat == csat and len(bodies) == 3
    fresh = pipeline.compare_stored(store, DEMO_CALL, first.replay.id,
                                    report=_options(server, figures=None), settings=settings)
    assert fresh.comparison.csat is not None and fresh.comparison.csat.baseline.cached
    assert len(bodies) == 4

    # the aggregate of the two calls' rows has the csat deltas
    agg = aggregate([CallRow.from_comparison("first", first.comparison),
                     CallRow.from_comparison("second", second.comparison)])
    metric = agg.metric("csat")
    assert metric.mean_delta == 2.0 and [c.call_key for c in metric.improved] == [
        "first", "second"]


def test_a_judge_that_answers_nonsense_never_stops_the_comparison(
        judge: tuple[RunningServer, list[dict[str, Any]], ScriptedLLM]) -> None:
    server, bodies, llm = judge
    llm.replies.clear()  # every answer is "no idea"
    settings = Settings.from_env()
    store = Store.from_settings(settings)
    [result] = pipeline.run_call(store, demo_request(report=_options(server)), settings=settings)
    csat = result.comparison.csat
    assert csat is not None and csat.delta is None
    for side in (csat.baseline, csat.replay):
        assert side.score is None
        assert side.error == "the judge's answer is not a JSON estimate with a score: 'no idea'"
    assert result.comparison.similarity is not None  # the rest of the comparison is there
    assert not (settings.artifacts_dir / "csat").exists()  # no score, nothing cached
    server.fail("/chat/completions", status=400, body={"error": {"message": "no such model"}},
                times=2)
    [down] = pipeline.run_call(store, demo_request(report=_options(server)), settings=settings)
    assert down.comparison.csat is not None
    for side in (down.comparison.csat.baseline, down.comparison.csat.replay):
        assert str(side.error).startswith("the judge failed: openai-compatible: ")
        assert "HTTP 400: no such model" in str(side.error)


def test_the_cli_and_the_comparison_page_show_the_estimate(
        judge: tuple[RunningServer, list[dict[str, Any]], ScriptedLLM], tmp_path: Path) -> None:
    server, _bodies, _llm = judge
    result = runner.invoke(app, [
        "call", DEMO_CALL, "--dir", str(pipeline.demo_dir()), "--stt", "fake-stt", "--tts",
        "fake-tts", "--caller-tts", "fake-tts", "--llm-backend", "fake-llm", "--csat",
        "--judge-model", "judge-model", "--judge-base-url", f"{server.url}/v1"],
        terminal_width=200)
    assert result.exit_code == 0, result.stderr
    assert 'baseline 2/5 — "A refund nobody asked for."' in result.stdout
    assert 'replay   4/5 — "The caller got the <b>delivery date</b>."  (Δ +2)' in result.stdout

    settings = Settings.from_env()
    store = Store.from_settings(settings)
    [row] = store.replays.list(call_id=DEMO_CALL)
    page = TestClient(create_app(settings, store=store)).get(f"/replays/{row.id}")
    assert page.status_code == 200, page.text
    assert "Caller satisfaction (estimate)" in page.text
    assert "<b>delivery date</b>" not in page.text  # the judge's text is never markup
    shown = html.unescape(page.text)
    assert "baseline <strong>2/5</strong> “A refund nobody asked for.”" in shown
    assert "replay <strong>4/5</strong> “The caller got the <b>delivery date</b>.”" in shown
    assert "(Δ +2)" in shown and "estimated by judge-model" in shown

    plain = runner.invoke(app, [
        "call", DEMO_CALL, "--stt", "fake-stt", "--tts", "fake-tts", "--caller-tts",
        "fake-tts", "--llm-backend", "fake-llm", "--json"])
    assert plain.exit_code == 0, plain.stderr
    assert json.loads(plain.stdout)[0]["comparison"]["csat"] is None  # opt-in
