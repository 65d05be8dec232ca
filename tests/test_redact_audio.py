"""PII redaction of caller audio: muting by word timings, verification by transcribing again.

The fast tests use a fake STT that "hears" a scripted word only where its time range still has
sound, so what verification finds depends on what was really muted, and a regex stand-in for
Presidio (:class:`tests.fakes.pii.RegexAnalyzer`). The models tests
synthesize the caller with piper and transcribe with faster-whisper (Whisper tiny.en).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from tests.fakes.pii import RegexAnalyzer
from voicereplay.audio import Audio, resample
from voicereplay.errors import ConfigError
from voicereplay.models import Word
from voicereplay.redact import Redactor, redact_audio, redaction_ranges, verify_audio
from voicereplay.redact.audio import apply_ranges, redact_segment
from voicereplay.redact.detect import Span

RATE = 16000
SENTENCE = ("My number is four one five, five five five, zero one four two. My email is maria "
            "at example dot com and my card is four one one one one one one one one one one one "
            "one one one one.")


@dataclass
class Heard:
    text: str
    words: list[Word] = field(default_factory=list)


class HearsWhatIsLoud:
    """Transcribes by script: a word is heard when its time range still has sound."""

    def __init__(self, words: list[Word]) -> None:
        self.words = words
        self.calls = 0

    def transcribe(self, audio: Audio, *, language: str | None = None) -> Heard:
        self.calls += 1
        heard = [w for w in self.words
                 if np.abs(audio.samples[int(w.start * audio.rate):int(w.end * audio.rate)]
                           ).max(initial=0.0) > 0.01]
        return Heard(" ".join(w.word for w in heard), heard)


def timed(text: str, step: float = 0.4) -> list[Word]:
    return [Word(word=w, start=n * step, end=n * step + step * 0.8)
            for n, w in enumerate(text.split())]


def loud(seconds: float) -> np.ndarray:
    return np.full(int(seconds * RATE), 0.5, dtype=np.float32)


def test_ranges_cover_the_span_words_padded_and_out_to_the_neighbours() -> None:
    words = timed("call me on 415-555-0142 please")  # 0.0-0.32, 0.4-0.72, 0.8-1.12, 1.2-1.52 …
    spans = [Span(11, 23, "PHONE_NUMBER", "test", "415-555-0142", "4155550142")]
    # out to the previous word's end and the next one's start …
    assert redaction_ranges(words, spans, pad=0.05) == [pytest.approx((1.12, 1.6))]
    assert redaction_ranges(words, spans, pad=0.3) == [pytest.approx((0.9, 1.82))]  # … or pad
    assert redaction_ranges(words, [Span(99, 105, "X", "t", "", "")]) is None  # unplaceable


def test_redact_audio_mutes_or_tones_only_the_ranges() -> None:
    words = timed("call me on 415-555-0142 please")
    spans = [Span(11, 23, "PHONE_NUMBER", "test", "415-555-0142", "4155550142")]
    samples = loud(2.0)
    muted = redact_audio(samples, RATE, words, spans, pad=0.05)
    assert np.all(muted[int(1.12 * RATE):int(1.6 * RATE)] == 0)
    assert np.all(muted[:int(1.1 * RATE)] == 0.5) and np.all(muted[int(1.62 * RATE):] == 0.5)
    toned = redact_audio(samples, RATE, words, spans, pad=0.05, mode="tone")
    middle = toned[int(1.2 * RATE):int(1.5 * RATE)]
    assert 0.09 < np.abs(middle).max() <= 0.1 and not np.any(middle == 0.5)
    assert np.all(samples == 0.5)  # the input is untouched
    everything = redact_audio(samples, RATE, words, [Span(99, 105, "X", "t", "", "")])
    assert not np.any(everything)
    with pytest.raises(ConfigError, match="mode"):
        apply_ranges(samples, RATE, [(0, 1)], mode="beep")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mono"):
        apply_ranges(np.zeros((2, 10)), RATE, [(0, 1)])


def test_verify_finds_digits_emails_and_names_still_heard() -> None:
    redactor = Redactor(analyzer=RegexAnalyzer(["Maria Lopez"]))
    redactor.learn(SENTENCE + " I'm Maria Lopez.")
    heard = HearsWhatIsLoud(timed("my number is 415-55-0142 email marioedatexample.com "
                                  "card 4-11-11-11 thanks lopez"))
    leaks = verify_audio(loud(6.0), RATE, redactor.known, heard)
    assert {leak.placeholder for leak in leaks} == {
        "<PHONE_NUMBER_1>", "<EMAIL_ADDRESS_1>", "<CREDIT_CARD_1>", "<PERSON_1>"}
    assert all("4155" not in leak.heard and "example" not in leak.heard for leak in leaks)
    assert verify_audio(loud(6.0), RATE, redactor.known,
                        HearsWhatIsLoud(timed("my order is 4417 thanks"))) == []


def test_garbled_traces_of_known_values_are_found() -> None:
    from voicereplay.redact.audio import clue_spans
    from voicereplay.redact.redactor import KnownValue

    text = "ship it to one two three main street and mail marioedatexample.com ok"
    found = clue_spans(text, [
        KnownValue("STREET_ADDRESS", "123 Main Street", "123 main street", "<S>"),
        KnownValue("EMAIL_ADDRESS", "maria@example.com", "maria@example.com", "<E>")])
    assert [(text[a:b], clue) for a, b, _, clue in found] == [
        ("one two three main street", "123 main street"),
        ("marioedatexample.com", "example.com")]


def test_a_segment_is_muted_over_its_values_and_verified() -> None:
    words = timed(SENTENCE)
    stt = HearsWhatIsLoud(words)
    redactor = Redactor(analyzer=RegexAnalyzer())
    redactor.learn(SENTENCE)
    samples = loud(words[-1].end + 0.5)
    out, result = redact_segment(redactor, samples, RATE, stt, where="turn 1 audio",
                                 words=words, pad=0.1)
    assert not result.whole and result.leaks == [] and len(result.muted) == 3
    after = stt.transcribe(Audio(out, RATE)).text
    assert after.startswith("My number is") and "email is" in after and "card is" in after
    for value in ("four", "five", "zero", "maria", "example", "one"):
        assert value not in after.split()
    assert redactor.report.audio == [result]
    assert "verified: no redacted value heard" in redactor.report.render()


def test_a_value_still_heard_mutes_the_whole_segment_and_is_recorded() -> None:
    words = timed("my number is four one five five five five zero one four two")
    leaky = HearsWhatIsLoud(words)
    # the provider's word timings are off: they place the digits 2.4 s early, so muting by
    # them leaves "zero one four two" audible
    early = [Word(word=w.word, start=max(0.0, w.start - 2.4), end=max(0.0, w.end - 2.4))
             if n >= 3 else w for n, w in enumerate(words)]
    redactor = Redactor(analyzer=RegexAnalyzer())
    redactor.learn("my number is four one five five five five zero one four two")
    samples = loud(words[-1].end + 0.5)
    out, result = redact_segment(redactor, samples, RATE, leaky, where="turn 2 audio",
                                 words=early, pad=0.0)
    assert result.whole and "<PHONE_NUMBER_1>" in result.reason
    assert result.leaks and result.muted == [(0.0, len(samples) / RATE)]
    assert not np.any(out)
    assert "whole segment muted" in redactor.report.render()


def test_without_word_timings_the_segment_is_transcribed_first() -> None:
    words = timed("email maria at example dot com thanks")
    stt = HearsWhatIsLoud(words)
    redactor = Redactor(analyzer=RegexAnalyzer())
    redactor.learn("my email is maria at example dot com")
    out, result = redact_segment(redactor, loud(3.2), RATE, stt, where="turn 3 audio")
    assert stt.calls == 2  # once for the word timings, once to verify
    assert not result.whole
    assert stt.transcribe(Audio(out, RATE)).text == "email thanks"


# -- real models -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spoken_pii() -> tuple[Audio, object]:
    from voicereplay.simulate.backends.piper_tts import PiperTTS
    from voicereplay.simulate.backends.whisper import FasterWhisperSTT

    audio = resample(PiperTTS(seed=7).synthesize(SENTENCE).audio, RATE)
    return audio, FasterWhisperSTT()


@pytest.mark.models
@pytest.mark.parametrize("mode", ["mute", "tone"])
def test_synthesized_caller_audio_no_value_is_heard_after_redaction(
        spoken_pii: tuple[Audio, object], mode: str) -> None:
    audio, stt = spoken_pii
    redactor = Redactor()
    redactor.learn(SENTENCE)
    assert {k.entity for k in redactor.known} == {"PHONE_NUMBER", "EMAIL_ADDRESS", "CREDIT_CARD"}
    # the leak check catches the unredacted audio: all three values are heard
    before = verify_audio(audio.samples, audio.rate, redactor.known, stt)  # type: ignore[arg-type]
    assert {leak.entity for leak in before} == {"PHONE_NUMBER", "EMAIL_ADDRESS", "CREDIT_CARD"}

    out, result = redact_segment(redactor, audio.samples, audio.rate, stt,  # type: ignore[arg-type]
                                 where="turn 1 audio", mode=mode)  # type: ignore[arg-type]
    heard = stt.transcribe(Audio(out, audio.rate))  # type: ignore[attr-defined]
    digits = "".join(ch for ch in heard.text if ch.isdigit())
    assert "4155" not in digits and "0142" not in digits and "1111" not in digits
    assert "example" not in heard.text.lower() and "maria" not in heard.text.lower()
    assert verify_audio(out, audio.rate, redactor.known, stt) == []  # type: ignore[arg-type]
    if not result.whole:  # only the values went, not the whole turn
        assert sum(b - a for a, b in result.muted) < 0.9 * audio.duration
        assert "number" in heard.text.lower()


@pytest.mark.models
def test_the_demo_callers_recorded_name_is_not_heard_after_redaction(
        spoken_pii: tuple[Audio, object]) -> None:
    import json
    from pathlib import Path

    from voicereplay.audio import cut, load_channels

    _, stt = spoken_pii
    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
    messages = json.loads((fixtures / "demo-refund.json").read_text())["messages"]
    turns = [m["message"] for m in messages if m.get("role") in ("user", "bot")]
    recording = load_channels(fixtures / "demo-refund.customer.wav")[0]
    segment = resample(cut(recording, 20.2, 21.5), RATE)  # the caller: "Jordan Miles."
    assert "jordan" in stt.transcribe(segment).text.lower()  # type: ignore[attr-defined]
    redactor = Redactor(allow=["Acme Audio"])
    redactor.learn(*turns)
    out, result = redact_segment(redactor, segment.samples, RATE, stt,  # type: ignore[arg-type]
                                 where="turn 5 audio")
    heard = stt.transcribe(Audio(out, RATE)).text.lower()  # type: ignore[attr-defined]
    assert "jordan" not in heard and "miles" not in heard
    assert result.muted and redactor.report.audio == [result]
