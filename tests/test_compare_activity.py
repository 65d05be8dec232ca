"""The voice-activity detector (voicereplay.audio) and per-party tracks (compare.activity), on
tone bursts and the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicereplay.audio import Audio, Span, speech_spans
from voicereplay.compare.activity import party_speech, party_tracks
from voicereplay.compare.metrics import side_metrics
from voicereplay.errors import RecordingError
from voicereplay.models import Call, Turn
from voicereplay.providers.files import FilesProvider, scan

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
RATE = 8000  # telephone audio


def track(seconds: float, bursts: list[tuple[float, float]], *, level: float = 0.3,
          noise: float = 0.0005, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Low noise with 300 Hz tone bursts at ``bursts`` (seconds)."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, noise, int(seconds * rate))
    t = np.arange(len(samples)) / rate
    for start, end in bursts:
        inside = (t >= start) & (t < end)
        samples[inside] += level * np.sin(2 * np.pi * 300 * t[inside])
    return samples.astype(np.float32)


def spans_of(samples: np.ndarray, rate: int, **options: float) -> list[Span]:
    return speech_spans(Audio(samples, rate), **options)


def test_silence_and_steady_noise_have_no_speech() -> None:
    assert spans_of(np.zeros(RATE * 3, dtype=np.float32), RATE) == []
    assert spans_of(track(3.0, []), RATE) == []  # line noise only
    assert spans_of(np.zeros(0, dtype=np.float32), RATE) == []


def test_bursts_on_an_8khz_track() -> None:
    # 20 ms frames are 160 samples; the bursts sit on frame edges, so spans are exact
    spans = spans_of(track(5.0, [(1.0, 2.0), (3.0, 3.5)]), RATE)
    assert spans == [(1.0, 2.0), (3.0, 3.5)]
    # same for 16-bit integer samples, and for a quiet track (−50 dB below: relative threshold)
    pcm = (track(5.0, [(1.0, 2.0), (3.0, 3.5)]) * 32767).astype(np.int16)
    assert spans_of(pcm, RATE) == spans
    quiet = track(5.0, [(1.0, 2.0), (3.0, 3.5)], level=0.001, noise=0.000002)
    assert spans_of(quiet, RATE) == spans
    assert spans_of(track(5.0, [(1.0, 2.0)], rate=48000), 48000) == [(1.0, 2.0)]


def test_gaps_are_bridged_and_blips_dropped() -> None:
    # a 0.1 s gap (< 0.25) is bridged; a 0.06 s blip (< 0.1) is dropped
    samples = track(5.0, [(1.0, 1.5), (1.6, 2.0), (3.0, 3.06)])
    assert spans_of(samples, RATE) == [(1.0, 2.0)]
    assert spans_of(samples, RATE, min_gap=0.05, min_speech=0.05) == [
        (1.0, 1.5), (1.6, 2.0), (3.0, 3.06)]


def write_stereo(path: Path, first: np.ndarray, second: np.ndarray) -> Path:
    soundfile.write(str(path), np.stack([first, second], axis=1), RATE, subtype="PCM_16")
    return path


# agent 0.5–3.0 and 6.0–8.0; caller "mm-hm" 1.0–1.2 and 3.5–6.5; a 9 s call
AGENT = [(0.5, 3.0), (6.0, 8.0)]
CALLER = [(1.0, 1.2), (3.5, 6.5)]
TURNS = [
    Turn(role="agent", text="one two three four five", start=0.5, end=3.0),
    Turn(role="user", text="one two three", start=3.5, end=6.5),
    Turn(role="agent", text="one two", start=6.0, end=8.0),
]


def test_interruptions_from_overlapping_channels(tmp_path: Path) -> None:
    stereo = write_stereo(tmp_path / "call.stereo.wav", track(9.0, CALLER, seed=1),
                          track(9.0, AGENT, seed=2))  # default layout: caller ch0, agent ch1
    tracks = party_tracks({"stereo": stereo})
    assert tracks is not None and set(tracks) == {"agent", "caller"}
    speech = party_speech(tracks)
    assert speech == {"agent": AGENT, "caller": CALLER}
    m = side_metrics(TURNS, 9.0, speech=speech)
    assert m.interruptions_source == "audio"
    # the caller's 1.0–1.2 starts inside the agent's 0.5–3.0 but overlaps 0.2 s < 0.3: not
    # counted; the agent's 6.0 start inside the caller's 3.5–6.5 overlaps 0.5 s: counted → 1
    assert m.interruptions == 1
    # agent 2.5 + 2 = 4.5 s, caller 0.2 + 3 = 3.2 s → 4.5 / 7.7 = 0.58442
    assert m.talk_ratio == 0.5844
    # union 0.5–3.0 and 3.5–8.0 = 2.5 + 4.5 = 7 s → 9 − 7 = 2 s of silence
    assert m.silence == pytest.approx(2.0)


def test_layout_is_detected_from_the_call(tmp_path: Path) -> None:
    # Retell's layout: agent on ch0, caller on ch1
    stereo = write_stereo(tmp_path / "retell.stereo.wav", track(9.0, AGENT, seed=3),
                          track(9.0, CALLER, seed=4))
    call = Call(provider="retell", call_id="c", turns=TURNS)
    tracks = party_tracks({"stereo": stereo}, call)
    assert tracks is not None
    assert party_speech(tracks) == {"agent": AGENT, "caller": CALLER}
    # without the call the default (caller ch0) is taken, wrongly here
    wrong = party_tracks({"stereo": stereo})
    assert wrong is not None and party_speech(wrong)["caller"] == AGENT


def test_per_party_files_win(tmp_path: Path) -> None:
    agent, customer = tmp_path / "c.agent.wav", tmp_path / "c.customer.wav"
    soundfile.write(str(agent), track(9.0, AGENT), RATE, subtype="PCM_16")
    soundfile.write(str(customer), track(9.0, CALLER), RATE, subtype="PCM_16")
    broken = tmp_path / "c.stereo.wav"
    broken.write_bytes(b"not read")
    files: dict[str, Path | str] = {"agent": agent, "customer": str(customer), "stereo": broken}
    tracks = party_tracks(files)
    assert tracks is not None
    assert party_speech(tracks) == {"agent": AGENT, "caller": CALLER}


def test_no_party_audio_is_none(tmp_path: Path) -> None:
    mono = tmp_path / "c.mixed.wav"
    soundfile.write(str(mono), track(2.0, [(0.5, 1.0)]), RATE)
    assert party_tracks({"mixed": mono}) is None
    assert party_tracks({}) is None
    assert party_tracks({"agent": mono}) is None  # one party alone is not enough
    one_channel = tmp_path / "c.stereo.wav"
    soundfile.write(str(one_channel), track(2.0, [(0.5, 1.0)]), RATE)
    assert party_tracks({"stereo": one_channel}) is None


def test_unreadable_audio_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "c.stereo.wav"
    bad.write_bytes(b"RIFF garbage, not a wav file")
    with pytest.raises(RecordingError, match="c.stereo.wav"):
        party_tracks({"stereo": bad})
    with pytest.raises(RecordingError, match="missing.agent.wav"):
        party_tracks({"agent": tmp_path / "missing.agent.wav",
                      "customer": tmp_path / "missing.customer.wav"})


def test_demo_recordings() -> None:
    [file] = scan(DEMO)
    call = FilesProvider(DEMO).load(file)
    per_party = party_tracks(file.recordings, call)
    stereo = party_tracks({"stereo": file.recordings["stereo"]}, call)
    assert per_party is not None and stereo is not None
    assert per_party["agent"].rate == 8000
    speech = party_speech(per_party)
    assert party_speech(stereo) == speech  # Vapi's stereo: customer ch0, assistant ch1
    # every transcript turn has speech inside it, and no speech is outside some turn
    for role, party in (("agent", "agent"), ("user", "caller")):
        turns = [(t.start, t.end) for t in call.turns
                 if t.role == role and t.start is not None and t.end is not None]
        assert len(turns) == (6 if role == "agent" else 5)
        assert all(any(s < e and ts < e and s < te for s, e in speech[party])
                   for ts, te in turns)
        assert all(any(ts - 0.05 <= s and e <= te + 0.05 for ts, te in turns)
                   for s, e in speech[party])
    m = side_metrics(call.turns, call.duration, speech=speech)
    assert (m.agent_turns, m.caller_turns) == (6, 5)
    assert m.interruptions == 0 and m.interruptions_source == "audio"
    assert 0.6 < m.talk_ratio < 0.75  # type: ignore[operator]
    # more silence than the transcript's 10.655 s: the VAD also finds the pauses between
    # sentences inside a turn
    assert 10.655 < m.silence < 20  # type: ignore[operator]
