"""`voicereplay save --redact`: the redaction engine over a whole scenario — texts, tool-call
arguments and results, mocks and caller audio — before anything is written; `--dry-run` writes
nothing. The fast tests use a regex stand-in for Presidio and a fake STT; one test runs the real
Presidio, spaCy and faster-whisper on the demo call."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from tests.fakes.pii import RegexAnalyzer
from tests.web_demo import DEMO_CALL
from voicereplay.audio import Audio
from voicereplay.cli import app
from voicereplay.config import Settings
from voicereplay.models import KnowledgeContext, KnowledgeDocument
from voicereplay.pipeline import import_calls
from voicereplay.pipeline.scenario_redaction import ScenarioRedaction
from voicereplay.pipeline.scenarios import save_scenario, scenario_from
from voicereplay.providers.files import FilesProvider
from voicereplay.scenario import (
    Scenario,
    ScenarioToolCall,
    ScenarioToolResult,
    ScenarioTurn,
    SourceCall,
    load_scenario,
)
from voicereplay.simulate.caller import CallerSegment
from voicereplay.simulate.stages import STT, SpeechToText, Transcription
from voicereplay.store import Store

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"


class _SilentSTT(SpeechToText):
    """Hears nothing (no words, so audio is muted only where a timed word says so)."""

    name = "silent-stt"

    def _transcribe_impl(self, audio: Audio, language: str | None) -> Transcription:
        return Transcription("", language=language, latency=0.0)


STT.register("silent-stt", _SilentSTT)


def _scenario() -> Scenario:
    return Scenario(
        name="pii", source=SourceCall(provider="vapi", call_id="c1"),
        agent={"system_prompt": "You are Sam."},
        mocks={"lookup": {"email": "maria@example.com"}},
        turns=[
            ScenarioTurn(agent="Hi, how can I help?"),
            ScenarioTurn(caller="This is Maria Lopez, call me at 415 555 0142.",
                         audio="pii.voicereplay/caller-01.wav", start=2.0, end=5.0),
            ScenarioTurn(tool_calls=[ScenarioToolCall(
                id="t1", name="lookup", arguments={"phone": "+1 415 555 0142"},
                raw_arguments='{"phone": "+1 415 555 0142"}')]),
            ScenarioTurn(tool_result=ScenarioToolResult(
                id="t1", name="lookup", result='{"customer": "Maria Lopez"}')),
            ScenarioTurn(agent="Thanks Maria Lopez, I found you."),
        ],
        knowledge=[KnowledgeContext(
            turn=4, source="vapi-tool", query="orders of Maria Lopez",
            documents=[KnowledgeDocument(content="Maria Lopez, +1 415 555 0142: order 4417")])])


def test_every_text_tool_value_and_mock_gets_the_same_placeholder() -> None:
    segment = CallerSegment(turn_index=1, text="This is Maria Lopez, call me at 415 555 0142.",
                            audio=Audio(np.zeros(1600, dtype=np.float32), 16000),
                            origin="recording")  # type: ignore[arg-type]
    hook = ScenarioRedaction(analyzer=RegexAnalyzer(["Maria Lopez"]), stt="silent-stt")
    redacted, segments = hook(_scenario(), {"pii.voicereplay/caller-01.wav": segment})
    text = json.dumps(redacted.model_dump(mode="json"))
    for value in ("Maria Lopez", "415 555 0142", "maria@example.com"):
        assert value not in text, value
    caller, call, result, thanks = (redacted.turns[n] for n in (1, 2, 3, 4))
    assert caller.caller == "This is <PERSON_1>, call me at <PHONE_NUMBER_1>."
    assert call.tool_calls is not None and call.tool_calls[0].arguments == {
        "phone": "<PHONE_NUMBER_1>"}  # the same number, written another way
    assert "<PHONE_NUMBER_1>" in (call.tool_calls[0].raw_arguments or "")
    assert result.tool_result is not None and "<PERSON_1>" in result.tool_result.result
    assert thanks.agent == "Thanks <PERSON_1>, I found you."
    assert redacted.mocks == {"lookup": {"email": "<EMAIL_ADDRESS_1>"}}
    [context] = redacted.knowledge
    assert context.query == "orders of <PERSON_1>"
    assert context.documents[0].content == "<PERSON_1>, <PHONE_NUMBER_1>: order 4417"
    assert segments["pii.voicereplay/caller-01.wav"].text == caller.caller
    report = redacted.redaction
    assert report is not None and hook.report is not None
    rendered = hook.report.render()  # the report masks values
    assert "Maria" not in json.dumps(report) and "0142" not in json.dumps(report)
    assert "Maria" not in rendered and "0142" not in rendered
    assert {r["entity"] for r in report["redactions"]} >= {"PERSON", "PHONE_NUMBER",
                                                           "EMAIL_ADDRESS"}


@pytest.mark.models
def test_save_redact_dry_run_prints_the_report_and_writes_nothing(tmp_path: Path) -> None:
    """The CLI with the real engine (Presidio, spaCy, faster-whisper)."""
    home = tmp_path / "home"  # VOICEREPLAY_HOME (tests/conftest.py)
    store = Store.from_settings(Settings.for_home(home))
    with FilesProvider(DEMO) as files:
        import_calls(store, files, [DEMO_CALL])
    out = tmp_path / "scenarios"
    result = CliRunner().invoke(app, ["save", DEMO_CALL, "--dir", str(out), "--redact",
                                      "--dry-run", "--redact-allow", "Acme Audio"])
    assert result.exit_code == 0, result.output
    assert "PERSON" in result.stdout and "Jordan Miles" not in result.stdout
    assert "A••• A••••" not in result.stdout  # the business's own name, allowed
    assert not out.exists()  # nothing written
    saved = CliRunner().invoke(app, ["save", DEMO_CALL, "--dir", str(out), "--redact",
                                     "--redact-pattern", r"\b4417\b"])  # the order number
    assert saved.exit_code == 0, saved.output
    [path] = out.glob("*.voicereplay.yaml")
    text = path.read_text(encoding="utf-8")
    assert "Jordan Miles" not in text and "4417" not in text and "redaction:" in text
    scenario = load_scenario(path)
    assert scenario.redaction is not None
    assert any("<PERSON_" in (t.caller or "") for t in scenario.turns)


@pytest.mark.models
def test_saving_the_demo_call_with_redact_leaves_no_name_in_text_or_audio(
        tmp_path: Path) -> None:
    """Real Presidio + spaCy find the caller's name; faster-whisper cannot hear it afterwards."""
    store = Store.from_settings(Settings.for_home(tmp_path / "home"))
    with FilesProvider(DEMO) as files:
        import_calls(store, files, [DEMO_CALL])
    plain, plain_segments = scenario_from(store, DEMO_CALL)
    spoken = next(t for t in plain.turns if t.caller and "Jordan" in t.caller)
    hook = ScenarioRedaction()
    saved = save_scenario(store, DEMO_CALL, tmp_path / "scenarios", redactor=hook)
    text = saved.path.read_text(encoding="utf-8")
    assert "Jordan" not in text and "Miles" not in text
    assert spoken.audio is not None
    audio, rate = soundfile.read(saved.path.parent / spoken.audio, dtype="float32")
    heard = STT.create("faster-whisper").transcribe(Audio(audio, rate), language="en").text
    assert "jordan" not in heard.lower() and "miles" not in heard.lower()
    assert plain_segments  # the unredacted segment existed


def test_the_redaction_settings_file_adds_names_patterns_and_allowed_names(
        tmp_path: Path) -> None:
    from voicereplay.errors import ConfigError
    from voicereplay.pipeline.redact_config import load_redact_config

    settings = Settings.for_home(tmp_path / "home")
    assert load_redact_config(settings).names == []  # no file: nothing added
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "redact.yaml").write_text(
        "names: [Lopez]\npatterns: ['T-\\d{4}', {regex: 'MRN\\d+', entity: MEDICAL_RECORD}]\n"
        "allow: [Sam]\n", encoding="utf-8")
    kept = load_redact_config(settings)
    hook = ScenarioRedaction(names=kept.names, patterns=kept.pattern_args(), allow=kept.allow,
                             analyzer=RegexAnalyzer(["Sam"]), stt="silent-stt")
    scenario = _scenario().model_copy(update={"turns": [
        ScenarioTurn(agent="Hi, this is Sam."),
        ScenarioTurn(caller="Lopez here, ticket T-1234, record MRN998.")]})
    redacted, _ = hook(scenario, {})
    assert redacted.turns[0].agent == "Hi, this is Sam."  # allowed
    caller = redacted.turns[1].caller or ""
    assert "Lopez" not in caller and "T-1234" not in caller and "MRN998" not in caller
    assert "<MEDICAL_RECORD_1>" in caller and "<CUSTOM_1>" in caller
    bad = tmp_path / "bad.yaml"
    bad.write_text("patterns: ['(']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.yaml: patterns"):
        load_redact_config(settings, bad)
    bad.write_text("nmes: [x]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.yaml: nmes"):
        load_redact_config(settings, bad)


@pytest.mark.models
def test_a_scenario_with_pii_spoken_aloud_keeps_none_of_it_in_text_or_audio(
        tmp_path: Path) -> None:
    """The issue's case end to end: a caller turn saying a phone number, an e-mail and a card
    number (synthesized with piper), redacted by the real engine, written as a scenario; its
    text holds none of the values and faster-whisper hears none of them in its audio."""
    from tests.test_redact_audio import SENTENCE
    from voicereplay.audio import resample, write_wav
    from voicereplay.scenario import dump_scenario
    from voicereplay.simulate.backends.piper_tts import PiperTTS

    audio = resample(PiperTTS(seed=7).synthesize(SENTENCE).audio, 16000)
    scenario = _scenario().model_copy(update={"turns": [
        ScenarioTurn(agent="Hi, how can I help?", start=0.0, end=1.5),
        ScenarioTurn(caller=SENTENCE, audio="pii.voicereplay/caller-01.wav", start=2.0,
                     end=2.0 + audio.duration),
        ScenarioTurn(tool_calls=[ScenarioToolCall(
            id="t1", name="lookup", arguments={"phone": "4155550142",
                                               "email": "maria@example.com"})]),
        ScenarioTurn(agent="Thanks, I found your account.")]})
    segment = CallerSegment(turn_index=1, text=SENTENCE, audio=audio,
                            origin="recording")  # type: ignore[arg-type]
    hook = ScenarioRedaction()
    redacted, segments = hook(scenario, {"pii.voicereplay/caller-01.wav": segment})
    folder = tmp_path / "pii.voicereplay"
    folder.mkdir()
    write_wav(folder / "caller-01.wav", [segments["pii.voicereplay/caller-01.wav"].audio])
    (tmp_path / "pii.voicereplay.yaml").write_text(dump_scenario(redacted), encoding="utf-8")

    text = (tmp_path / "pii.voicereplay.yaml").read_text(encoding="utf-8")
    digits = "".join(ch for ch in text if ch.isdigit())
    for value in ("4155550142", "41111111"):
        assert value not in digits.replace(" ", ""), value
    assert "maria" not in text.lower() and "four one five" not in text.lower()
    samples, rate = soundfile.read(folder / "caller-01.wav", dtype="float32")
    heard = STT.create("faster-whisper").transcribe(Audio(samples, rate), language="en").text
    heard_digits = "".join(ch for ch in heard if ch.isdigit())
    assert "4155" not in heard_digits and "0142" not in heard_digits
    assert "1111" not in heard_digits and "maria" not in heard.lower()
    assert load_scenario(tmp_path / "pii.voicereplay.yaml").redaction is not None
