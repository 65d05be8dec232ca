"""The report files written beside a replay: charts (PNG/SVG), JUnit XML, Markdown."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.compare_samples import (
    BASELINE_AGENT,
    CHECK_MESSAGE,
    JUDGE_REASONING,
    MIXED_WAV,
    REPLAY_AGENT,
    STEREO_WAV,
    sample_call,
    sample_comparison,
    sample_replay,
)
from voicereplay.compare.charts import (
    LATENCY_SIZE,
    WAVEFORM_SIZE,
    _envelope,
    latency_chart,
    waveform_chart,
)
from voicereplay.compare.junit import junit_xml, write_junit
from voicereplay.compare.markdown import report_markdown
from voicereplay.compare.model import CheckResult, Comparison, Evidence, Fidelity
from voicereplay.compare.summary import divergence_line, fidelity_line
from voicereplay.errors import RecordingError
from voicereplay.models import Replay, ReplayTurn, Turn
from voicereplay.simulate.stages import Audio

# -- helpers --------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        low, high = image.convert("L").getextrema()
        assert isinstance(low, int) and isinstance(high, int)
        assert high - low > 50, "the picture is blank"
        return image.size


def _svg_size(path: Path) -> tuple[float, float]:
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"

    def number(value: str) -> float:
        return float(re.sub(r"(pt|px)$", "", value))

    return number(root.attrib["width"]), number(root.attrib["height"])


def _svg_texts(path: Path) -> str:
    """matplotlib writes each text as glyph paths preceded by a comment holding the text."""
    return "\n".join(re.findall(r"<!-- (.*?) -->", path.read_text(encoding="utf-8")))


@pytest.fixture
def comparison() -> Comparison:
    return sample_comparison()


# -- latency chart --------------------------------------------------------------------------


def test_latency_chart_png_has_the_documented_size(comparison: Comparison, tmp_path: Path):
    path = latency_chart(comparison, tmp_path / "latency.png")
    assert path == tmp_path / "latency.png"
    assert path.stat().st_size > 5_000
    assert _png_size(path) == LATENCY_SIZE == (1200, 500)


def test_latency_chart_svg_names_turns_stages_and_p90(comparison: Comparison, tmp_path: Path):
    path = latency_chart(comparison, tmp_path / "charts" / "latency.svg")
    assert _svg_size(path) == LATENCY_SIZE
    texts = _svg_texts(path)
    for turn in (2, 3, 4, 5, 6):
        assert f"turn {turn}" in texts
    assert "seconds" in texts
    assert "baseline p90 1.58 s" in texts and "replay p90 1.52 s" in texts
    assert "replay: endpointing/other" in texts and "replay: STT" in texts
    assert "dfed92e7" in texts and "rp_7c1e9" in texts  # call and replay, shortened
    # turn 5's replay total is missing: said, not drawn as 0.00
    assert "total n/a" in texts
    assert "0.00" not in texts.split("seconds", 1)[1]


def test_latency_chart_with_a_missing_baseline_says_n_a(comparison: Comparison,
                                                        tmp_path: Path):
    rows = [row.model_copy(update={"baseline": None}) if row.turn == 3 else row
            for row in comparison.latency]
    path = latency_chart(comparison.model_copy(update={"latency": rows}), tmp_path / "l.svg")
    assert "n/a" in _svg_texts(path).splitlines()


def test_latency_chart_without_turns_is_still_readable(comparison: Comparison, tmp_path: Path):
    empty = comparison.model_copy(update={"latency": []})
    png = latency_chart(empty, tmp_path / "empty.png")
    svg = latency_chart(empty, tmp_path / "empty.svg")
    assert _png_size(png) == LATENCY_SIZE
    assert "no agent turns answered a caller turn" in _svg_texts(svg)


@pytest.mark.parametrize("name", ["latency.jpg", "latency", "latency.PNG.txt"])
def test_charts_refuse_other_formats(comparison: Comparison, tmp_path: Path, name: str):
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        latency_chart(comparison, tmp_path / name)
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        waveform_chart(sample_call(), sample_replay(), None, None, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_suffix_case_does_not_matter(comparison: Comparison, tmp_path: Path):
    assert _png_size(latency_chart(comparison, tmp_path / "LATENCY.PNG")) == LATENCY_SIZE


def test_charts_leave_pyplot_alone(tmp_path: Path):
    # in a fresh interpreter, so another test importing pyplot cannot hide a regression
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tests.compare_samples import sample_call, sample_comparison, sample_replay\n"
        "from voicereplay.compare.charts import latency_chart, waveform_chart\n"
        f"out = Path({str(tmp_path)!r})\n"
        "latency_chart(sample_comparison(), out / 'l.png')\n"
        "waveform_chart(sample_call(), sample_replay(), None, None, out / 'w.png')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'a chart imported pyplot'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "l.png").exists() and (tmp_path / "w.png").exists()


# -- waveform chart -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_waveform_with_the_demo_recordings(tmp_path: Path, suffix: str):
    path = waveform_chart(sample_call(), sample_replay(), STEREO_WAV, MIXED_WAV,
                          tmp_path / f"waveform{suffix}")
    if suffix == ".png":
        assert _png_size(path) == WAVEFORM_SIZE == (1400, 600)
        return
    assert _svg_size(path) == WAVEFORM_SIZE
    texts = _svg_texts(path)
    assert "demo-refund.stereo.wav" in texts and "demo-refund.mixed.wav" in texts
    assert "issue_refund" in texts and "check_status" in texts  # tool-call markers
    assert "no audio" not in texts
    lines = [line.strip() for line in texts.splitlines()]
    for number in range(1, 7):  # agent turns 1..6 on both panels
        assert lines.count(str(number)) >= 2


def test_waveform_without_audio_shows_the_turns(tmp_path: Path):
    png = waveform_chart(sample_call(), sample_replay(), None, None, tmp_path / "w.png")
    assert _png_size(png) == WAVEFORM_SIZE
    svg = waveform_chart(sample_call(), sample_replay(), None, MIXED_WAV, tmp_path / "w.svg")
    texts = _svg_texts(svg)
    assert texts.count("no audio") == 1  # the baseline panel only
    assert "issue_refund" in texts


def test_waveform_of_turns_without_times(tmp_path: Path):
    replay = Replay(id="rp_untimed", call_provider="vapi", call_id="c1", snapshot_id="s1",
                    turns=[ReplayTurn(role="agent", text="Hello."),
                           ReplayTurn(role="user", text="Hi.")])
    call = sample_call().model_copy(update={"turns": [Turn(role="agent", text="Hello.")],
                                            "duration": None})
    path = waveform_chart(call, replay, None, None, tmp_path / "w.svg")
    assert _svg_size(path) == WAVEFORM_SIZE
    assert "no turn timings" in _svg_texts(path)


def test_unreadable_audio_is_a_recording_error_naming_the_file(tmp_path: Path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with pytest.raises(RecordingError, match="broken.wav"):
        waveform_chart(sample_call(), sample_replay(), broken, None, tmp_path / "w.png")
    missing = tmp_path / "missing.wav"
    with pytest.raises(RecordingError, match="missing.wav"):
        waveform_chart(sample_call(), sample_replay(), None, missing, tmp_path / "w.png")
    assert not (tmp_path / "w.png").exists()


def test_envelope_keeps_every_peak_per_column():
    rate = 8000
    left = np.zeros(rate * 10, dtype=np.float32)
    right = np.zeros(rate * 10, dtype=np.float32)
    left[12_345] = 0.9  # a one-sample click on one channel
    right[54_321] = -0.7
    times, lows, highs = _envelope([Audio(left, rate), Audio(right, rate)], 100)
    assert len(times) == len(lows) == len(highs) == 100
    assert highs.max() == pytest.approx(0.9) and lows.min() == pytest.approx(-0.7)
    assert times[int(np.argmax(highs))] == pytest.approx(12_345 / rate, abs=0.1)
    assert times[int(np.argmin(lows))] == pytest.approx(54_321 / rate, abs=0.1)
    # fewer samples than columns: every sample is drawn
    short = Audio(np.array([0.1, -0.2, 0.3], dtype=np.float32), rate)
    times, lows, highs = _envelope([short], 100)
    assert list(highs) == pytest.approx([0.1, -0.2, 0.3])


def test_a_long_call_draws(tmp_path: Path):
    """A 10-minute stereo call draws (how fast is measured by bench/compare.py, not here)."""
    import soundfile

    wav = tmp_path / "long.wav"
    rng = np.random.default_rng(1)
    soundfile.write(wav, (rng.standard_normal((600 * 16_000, 2)) * 0.1).astype(np.float32),
                    16_000, subtype="PCM_16")
    path = waveform_chart(sample_call(), sample_replay(), wav, wav, tmp_path / "long.png")
    assert _png_size(path) == WAVEFORM_SIZE


# -- JUnit XML ------------------------------------------------------------------------------


def test_junit_counts_and_suite(comparison: Comparison):
    text = junit_xml(comparison)
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(text)
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == f"voicereplay.vapi.{comparison.call_id}"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped"), suite.get("time")) == ("3", "1", "0", "0", "12.500")
    assert root.get("tests") == "3" and root.get("failures") == "1"
    names = [case.get("name") for case in suite.findall("testcase")]
    assert names == ["calls check_status for an order question",
                     "never mentions a refund unless asked", "replay completed"]
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["replay_id"] == comparison.replay.id
    assert properties["snapshot_id"] == "snap_2b9f0c11"
    assert properties["mode"] == "scripted"
    assert properties["fidelity_score"] == "0.790"
    assert properties["divergence_turn"] == "4"


def test_junit_failure_carries_message_evidence_and_reasoning(comparison: Comparison):
    text = junit_xml(comparison)
    # <, & and " in the message are escaped in the document …
    assert "&lt;rubric: never mention refunds &amp; credits&gt;" in text
    assert "&quot;You haven't been refunded&quot;" in text
    suite = ET.fromstring(text).find("testsuite")
    assert suite is not None
    passed, failed, completed = suite.findall("testcase")
    assert passed.find("failure") is None and passed.find("error") is None
    failure = failed.find("failure")
    assert failure is not None
    # … and come back intact
    assert failure.get("message") == CHECK_MESSAGE
    assert failure.get("type") == "llm_judge"
    assert failure.text == f"turn 5: {REPLAY_AGENT[4]}"
    out = failed.findtext("system-out") or ""
    assert "gpt-4o-mini" in out and JUDGE_REASONING in out
    summary = completed.findtext("system-out") or ""
    assert completed.find("failure") is None
    assert f"fidelity: {fidelity_line(comparison)}" in summary
    assert "divergence: turn 4 (tool-call): issue_refund → check_status" in summary


def test_junit_errors_and_empty_parts(comparison: Comparison):
    broken = CheckResult(name='judge <timed out> & "retried"', type="llm_judge",
                         status="error", message="judge backend failed: timeout\x1b[0m",
                         evidence=[Evidence(text="no reply after 30 s")])
    changed = comparison.model_copy(update={
        "checks": [*comparison.checks, broken], "divergence": None,
        "fidelity": Fidelity(basis="not measured"),
    })
    suite = ET.fromstring(junit_xml(changed)).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "1")
    case = suite.findall("testcase")[2]
    assert case.get("name") == 'judge <timed out> & "retried"'
    error = case.find("error")
    assert error is not None
    assert error.get("message") == "judge backend failed: timeout[0m"  # ESC is not XML
    assert error.text == "no reply after 30 s"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["divergence_turn"] == "none"
    assert properties["fidelity_score"] == ""
    summary = suite.findall("testcase")[-1].findtext("system-out") or ""
    assert "divergence: none" in summary and "fidelity: n/a (unknown)" in summary


def test_junit_without_checks(comparison: Comparison, tmp_path: Path):
    path = write_junit(comparison.model_copy(update={"checks": []}), tmp_path / "out" / "j.xml")
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "0", "0")
    assert [c.get("name") for c in suite.findall("testcase")] == ["replay completed"]


# -- Markdown -------------------------------------------------------------------------------


def _table_lines(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def test_markdown_title_and_verdict(comparison: Comparison):
    text = report_markdown(comparison)
    title = text.splitlines()[0]
    assert title.startswith("# ") and comparison.call_id in title and "rp_7c1e9a2f4b6d4e0a" in title
    assert "mode **scripted**" in text
    assert "  - `model`: `smollm2-1.7b`" in text  # overrides as a bullet list
    assert "  - `temperature`: `0.2`" in text
    assert "  - `system_prompt`: `You are Sam" in text and "10 lines" in text
    verdict = next(line for line in text.splitlines() if line.startswith("**Verdict:**"))
    assert "1 of 2 checks failed" in verdict
    assert "turn 4 (tool-call): issue_refund → check_status" in verdict
    assert "0.79 (medium) — 3 runs of the call's own snapshot (no overrides)" in verdict
    assert divergence_line(comparison) == "turn 4 (tool-call): issue_refund → check_status"


def test_markdown_metrics_rows(comparison: Comparison):
    text = report_markdown(comparison)
    assert "| Metric | Baseline | Replay | Δ |" in text
    assert "| Response latency p90 | 1.58 s | 1.52 s | ▼ −0.06 s (better) |" in text
    assert "| Response latency p50 | 1.06 s | 1.22 s | ▲ +0.16 s (worse) |" in text
    assert "| Agent talk ratio | 68% | 66% | ▼ −1.5 pp |" in text
    assert "| LLM cost | $0.0032 | $0.00 | ▼ −$0.0032 (better) |" in text
    assert "| Interruptions | 0 | 0 | = 0 (same) |" in text
    assert "| Duration | 46.43 s | 47.35 s | ▲ +0.92 s |" in text
    assert "| Agent words per minute | 152 wpm | 158 wpm | ▲ +6 wpm |" in text
    assert "| Prompt tokens | 4210 tokens | 4388 tokens | ▲ +178 tokens |" in text


def test_markdown_tool_changes_latency_and_wer(comparison: Comparison):
    text = report_markdown(comparison)
    assert "- **renamed**: turn 4: issue_refund → check_status" in text
    assert "| turn 5 | 0.77 s | audio | — | — | 0.44 s | — | 0.21 s |" in text
    assert "| turn 2 | 1.57 s | provider | 1.29 s | ▼ −0.28 s | 0.41 s | 0.52 s | 0.18 s |" in text
    assert "WER 3.1%, CER 1.4%" in text
    assert "| caller 4 | 5.9% | 2.7% |" in text


def test_markdown_word_diff(comparison: Comparison):
    text = report_markdown(comparison)
    row = next(line for line in _table_lines(text) if line.startswith("| agent 4 "))
    assert "~~Thank you,~~ Jordan." in row
    assert "~~I've issued a refund of \\$59.99 to your original payment method.~~" in row
    assert "**Thanks,** Jordan. **Your order 4417 shipped yesterday and should arrive on " \
           "Friday.**" in row
    assert "🔧 `issue_refund`" in row and "🔧 `check_status`" in row
    unchanged = next(line for line in _table_lines(text) if line.startswith("| agent 1 "))
    assert "~~" not in unchanged and "**" not in unchanged
    assert BASELINE_AGENT[0] in unchanged


def test_markdown_checks_and_fidelity(comparison: Comparison):
    text = report_markdown(comparison)
    assert "- ✅ **calls check_status for an order question** (`tool_called`, pass)" in text
    assert ("- ❌ **never mentions a refund unless asked** (`llm_judge`, fail): mentions a "
            "refund in turn 5: \"You haven't been refunded\" \\<rubric: never mention refunds "
            "& credits\\>") in text
    assert f"  - turn 5: “{REPLAY_AGENT[4]}”" in text
    assert "    > The caller only asked where their order was." in text
    assert "## Fidelity" in text and "**0.79 (medium)" in text
    assert "| turn 4 | 0.34 | 0.67 |" in text and "| turn 5 | 0.21 | 0.00 |" in text


def test_markdown_escapes_pipes_and_newlines_in_cells(comparison: Comparison):
    alignment = list(comparison.alignment)
    caller = alignment[1].model_copy(update={"replay_text": "order 4417 | express\nplease"})
    agent = alignment[2].model_copy(update={"words": [], "replay_text": "a*b* <i>x</i> | y"})
    alignment[1], alignment[2] = caller, agent
    checks = [comparison.checks[0].model_copy(update={"name": "one | two"})]
    text = report_markdown(comparison.model_copy(update={"alignment": alignment,
                                                         "checks": checks}))
    assert "| order 4417 \\| express<br>please |" in text
    assert "a\\*b\\* \\<i\\>x\\</i\\> \\| y" in text
    assert "**one \\| two**" in text
    # every table row has as many unescaped pipes as its header
    tables: list[list[str]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    assert len(tables) >= 5
    for table in tables:
        counts = {len(re.findall(r"(?<!\\)\|", line)) for line in table}
        assert len(counts) == 1, table


def test_markdown_figures_and_plain_cases(comparison: Comparison):
    text = report_markdown(comparison, figures={"latency": "latency.png",
                                                "waveform": "figures/wave form.svg"})
    assert "![latency](latency.png)" in text
    assert "![waveform](figures/wave%20form.svg)" in text
    assert "## Figures" not in report_markdown(comparison)
    plain = comparison.model_copy(update={
        "divergence": None, "checks": [], "word_errors": None, "tool_changes": [],
        "replay": comparison.replay.model_copy(update={"overrides": {}}),
    })
    text = report_markdown(plain)
    assert "**divergence:** none" in text
    assert "no checks" in text
    assert "- **Overrides:** none" in text
    assert "No tool call was added, dropped or changed." in text
    assert "WER" not in text
    assert text.endswith("\n") and not text.endswith("\n\n")
