"""The demo call end to end: replayed against the fixed prompt, compared, reported.

A scripted LLM that follows the fixed prompt (check the order's status, never refund unasked)
is served as Chat Completions over real HTTP on 127.0.0.1; STT and TTS are the real embedded
models. The comparison must read "turn 4: issue_refund → check_status", the checks must pass
with evidence, every report file must be written (report.json valid against its schema, the
pictures real images of the documented size), and `replays show` / `compare` must print it
again. A second replay with no overrides gives the fixed replay's fidelity its reference.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.fakes.openai_chat import chat_app
from tests.fakes.scripted_llm import Reply, ScriptedLLM, tool_call
from tests.fakes.server import RunningServer, serve
from voicereplay.cli import app
from voicereplay.compare.charts import LATENCY_SIZE, WAVEFORM_SIZE
from voicereplay.compare.files import report_schema
from voicereplay.compare.model import SCHEMA_VERSION

DEMO_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
DEMO = "dfed92e7-b86e-5139-835c-d451a4f9d515"
MOCK = 'check_status={"status": "shipped", "eta": "Friday"}'
runner = CliRunner()


def follows_the_fixed_prompt() -> ScriptedLLM:
    """What a model following fixed-prompt.txt says, reply by reply (the opening is fixed)."""
    return ScriptedLLM({
        0: "I can help with that. Could you please give me your order number?",
        1: "Thanks. And can you confirm the name on the order?",
        2: Reply(tool_calls=[tool_call("check_status", order_id="4417")]),
        3: "Thanks, Jordan. Your order has shipped and should arrive on Friday.",
        4: "Sorry for the confusion, no refund was made. Your headphones arrive Friday.",
        5: "Thank you for your patience, Jordan. Goodbye.",
    }, default="Sorry, could you repeat that?", ttft=0.05, duration=0.05, clock="fake")


def follows_the_production_prompt() -> ScriptedLLM:
    """What the production model did: the baseline's replies, issue_refund on turn 4."""
    return ScriptedLLM({
        0: "I can help with that. Could you please give me your order number?",
        1: "Thanks. And can you confirm the name on the order?",
        2: Reply(tool_calls=[tool_call("issue_refund", order_id="4417",
                                       reason="customer inquiry")]),
        3: "Thank you, Jordan. I've issued a refund of $59.99 to your original payment method.",
        4: "I'm so sorry about that, Jordan. I'll escalate this to our orders team right away "
           "so they can sort out the refund and your delivery.",
        5: "Thank you for your patience, Jordan. Goodbye.",
    }, default="Sorry, could you repeat that?", ttft=0.05, duration=0.05, clock="fake")


@pytest.fixture
def fixed_llm() -> Iterator[RunningServer]:
    with serve(chat_app(follows_the_fixed_prompt(), [])) as server:
        yield server


@pytest.fixture
def production_llm() -> Iterator[RunningServer]:
    with serve(chat_app(follows_the_production_prompt(), [])) as server:
        yield server


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


CHECKS = """
checks:
  - type: tool_called
    tool: check_status
    turn: 4
    arguments: {order_id: "4417"}
  - type: tool_not_called
    tool: issue_refund
  - type: agent_says
    phrase: order number
  - type: agent_does_not_say
    regex: "issued a refund"
  - type: latency_p90_under
    seconds: 10
  - type: no_divergence_before
    turn: 4
"""


@pytest.mark.models
def test_the_fixed_prompt_reads_as_the_turn_4_tool_fix(
        fixed_llm: RunningServer, production_llm: RunningServer, tmp_path: Path) -> None:
    checks = tmp_path / "checks.yaml"
    checks.write_text(CHECKS)
    code, out, err = run(
        "call", DEMO, "--dir", str(DEMO_DIR), "--prompt-file", str(DEMO_DIR / "fixed-prompt.txt"),
        "--llm-base-url", f"{fixed_llm.url}/v1", "--model", "gpt-4o-mini", "--mock", MOCK,
        "--checks", str(checks), "--json")
    assert code == 0, err
    [replay] = json.loads(out)
    comparison = replay["comparison"]

    assert [c["summary"] for c in comparison["tool_changes"]] == [
        "turn 4: issue_refund → check_status"]
    divergence = comparison["divergence"]
    assert (divergence["turn"], divergence["reason"]) == (4, "tool-call")
    assert divergence["detail"] == "issue_refund → check_status"
    four = next(r for r in comparison["alignment"] if r["kind"] == "agent" and r["number"] == 4)
    assert (four["baseline_tools"], four["replay_tools"]) == (["issue_refund"], ["check_status"])
    assert [r["number"] for r in comparison["alignment"] if r["kind"] == "agent"] == [1, 2, 3, 4,
                                                                                       5, 6]
    assert all(r["status"] == "matched" for r in comparison["alignment"])

    statuses = {c["type"]: c["status"] for c in comparison["checks"]}
    assert set(statuses.values()) == {"pass"}, comparison["checks"]
    called = next(c for c in comparison["checks"] if c["type"] == "tool_called")
    assert called["evidence"][0]["turn"] == 4 and "check_status" in called["evidence"][0]["text"]

    assert replay["backends"]["llm_model"] == "gpt-4o-mini"
    tokens = comparison["replay_metrics"]["tokens"]  # usage from the server, priced by table
    assert tokens["model"] == "gpt-4o-mini" and tokens["prompt"] > 0
    assert tokens["cost_source"] == "price-table" and tokens["cost_usd"] > 0
    assert comparison["baseline_metrics"]["tokens"]["cost_source"] == "provider"
    metrics = {m["key"]: m for m in comparison["metrics"]}
    assert metrics["agent_turns"]["baseline"] == metrics["agent_turns"]["replay"] == 6
    assert metrics["tool_calls"]["delta"] == 0
    assert metrics["latency_p90"]["replay"] is not None
    assert comparison["word_errors"]["wer"] < 0.5  # whisper tiny.en on 8 kHz phone audio
    latency = {t["turn"]: t for t in comparison["latency"]}
    assert sorted(latency) == [2, 3, 4, 5, 6]
    assert all(t["baseline_source"] == "provider" for t in latency.values())
    assert all(t["stt"] is not None and t["llm_ttft"] is not None for t in latency.values())
    fidelity = comparison["fidelity"]
    assert fidelity["basis"] == "the turns before the divergence"
    assert fidelity["score"] > 0.85  # agent turns 1–3 said the same
    assert "no overrides" in fidelity["note"]

    files = comparison["files"]
    folder = Path(files["json"]).parent
    assert folder == Path(replay["recordings"][0]["path"]).parent  # beside the replay's audio
    report = json.loads(Path(files["json"]).read_text())
    jsonschema.validate(report, report_schema())
    assert report["schema_version"] == SCHEMA_VERSION
    markdown = Path(files["markdown"]).read_text()
    assert "turn 4 (tool-call): issue\\_refund → check\\_status" in markdown or \
        "turn 4 (tool-call): issue_refund → check_status" in markdown
    suite = ET.parse(files["junit"]).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "0", "0")
    assert Image.open(files["latency_chart"]).size == LATENCY_SIZE
    assert Image.open(files["waveform"]).size == WAVEFORM_SIZE

    # shown again, in the terminal: the side-by-side diff, the tool fix, the checks
    code, out, err = run("replays", "show", replay["id"][:10])
    assert code == 0, err
    assert "turn 4: issue_refund → check_status" in out
    assert "6/6 passed" in out and "PASS" in out
    assert "response latency p90" in out

    # a replay with no overrides measures the pipeline's fidelity on this call…
    code, out, err = run("call", DEMO, "--llm-base-url", f"{production_llm.url}/v1",
                         "--model", "gpt-4o-mini", "--json")
    assert code == 0, err
    [plain] = json.loads(out)
    own = plain["comparison"]
    assert own["divergence"] is None and own["tool_changes"] == []
    assert own["fidelity"]["basis"] == "this replay (no overrides)"
    assert own["fidelity"]["score"] > 0.95 and own["fidelity"]["level"] == "high"

    # …and the fixed replay's comparison states it; SVG pictures into another folder
    out_dir = tmp_path / "reports"
    code, out, err = run("compare", DEMO, replay["id"], "--figures", "svg", "--out",
                         str(out_dir), "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["fidelity"]["replay_id"] == plain["id"]
    assert again["fidelity"]["basis"].endswith("of this call with no overrides")
    assert again["checks"] and {c["status"] for c in again["checks"]} == {"pass"}
    svg = ET.parse(out_dir / "waveform.svg").getroot()
    assert (svg.get("width"), svg.get("height")) == (f"{WAVEFORM_SIZE[0]}pt",
                                                      f"{WAVEFORM_SIZE[1]}pt")
    assert (out_dir / "latency.svg").stat().st_size > 1000

    # the same comparison scored with sentence embeddings (the real all-MiniLM-L6-v2)
    code, out, err = run("replays", "show", replay["id"], "--similarity", "embedding", "--json")
    assert code == 0, err
    embedded = json.loads(out)["comparison"]
    assert embedded["similarity_method"] == "embedding"
    assert embedded["divergence"]["turn"] == 4  # the tool call decides, whatever the scorer
    same = [r["similarity"] for r in embedded["alignment"]
            if r["kind"] == "agent" and r["number"] in (2, 3)]
    assert same == [pytest.approx(1.0, abs=1e-3)] * 2  # the same words score 1


@pytest.mark.models
def test_a_failing_check_exits_5_with_one_line_and_the_reports_still_written(
        production_llm: RunningServer, tmp_path: Path) -> None:
    verdict = json.dumps({"reasoning": "Agent turn 4 issued a refund nobody asked for.",
                          "pass": False})
    seen: list[dict[str, Any]] = []
    with serve(chat_app(ScriptedLLM({}, default=verdict), seen)) as judge:
        checks = tmp_path / "checks.yaml"
        checks.write_text(
            "- type: tool_not_called\n  tool: issue_refund\n"
            "- type: agent_says\n  phrase: order number\n"
            "- type: llm_judge\n  name: no unasked refund\n"
            "  rubric: The agent never issues a refund the caller did not ask for.\n"
            f"  model: judge-model\n  base_url: {judge.url}/v1\n  api_key: sk-judge-secret\n")
        code, out, err = run("call", DEMO, "--dir", str(DEMO_DIR), "--llm-base-url",
                             f"{production_llm.url}/v1", "--model", "gpt-4o-mini",
                             "--checks", str(checks))
        assert code == 5, err
        assert "2 of 3 did not pass" in " ".join(err.split())
        assert "FAIL" in out and "turn 4" in out and "issued a refund nobody asked" in out
        assert len(seen) == 1 and "did not ask for" in json.dumps(seen[0]["messages"])
        replay_id = _latest_replay()
        code, out, _ = run("replays", "show", replay_id)
        # the checks stayed attached to the replay; the judge's stored verdict is shown again
        assert code == 0 and "1/3 passed" in out
        assert "issued a refund nobody asked" in " ".join(out.split())
        assert len(seen) == 1  # …without asking the judge again
        code, out, _ = run("replays", "show", replay_id, "--json")
        shown = json.loads(out)
        folder = Path(shown["recordings"][0]["path"]).parent
        for text in (out, (folder / "report.json").read_text(), (folder / "report.md").read_text(),
                     (folder / "junit.xml").read_text()):
            assert "sk-judge-secret" not in text  # the key was used, never stored
        assert [c["type"] for c in shown["checks"]][-1] == "llm_judge"


def _latest_replay() -> str:
    code, out, _ = run("replays", "list", "--json")
    assert code == 0
    rows: list[dict[str, Any]] = json.loads(out)
    return str(rows[0]["id"])


def test_bad_checks_and_options_fail_before_any_replay(tmp_path: Path) -> None:
    checks = tmp_path / "checks.yaml"
    checks.write_text("- type: tool_caled\n  tool: x\n")
    code, _, err = run("call", DEMO, "--dir", str(DEMO_DIR), "--model", "recorded",
                       "--checks", str(checks))
    assert code == 2 and "tool_caled" in err
    code, _, err = run("call", DEMO, "--dir", str(DEMO_DIR), "--model", "recorded",
                       "--similarity", "cosine")
    assert code == 2 and "lexical" in err
    code, out, _ = run("replays", "list", "--json")
    assert json.loads(out) == []
    code, _, err = run("compare", DEMO, "nosuchreplay")
    assert code == 4 and "calls import" in err  # the call is not stored yet
    assert run("calls", "import", DEMO, "--dir", str(DEMO_DIR))[0] == 0
    code, _, err = run("compare", DEMO, "nosuchreplay")
    assert code == 4 and "replays list" in err


@pytest.mark.models
@pytest.mark.integration
def test_the_demo_with_a_real_model_reads_as_the_turn_4_tool_fix(
        fixed_llm: RunningServer) -> None:
    """`voicereplay demo --llm-base-url … --model …`: no embedded-model note, the tool fix."""
    code, out, err = run("demo", "--llm-base-url", f"{fixed_llm.url}/v1", "--model",
                         "gpt-4o-mini")
    assert code == 0, err
    text = " ".join(out.split())
    assert "Step 1 of 2" in text and "fidelity 1.00" in text
    assert "turn 4: issue_refund → check_status" in text
    assert "too small to choose tools" not in text and "Reminder" not in text
