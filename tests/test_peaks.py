"""Waveform peaks: min/max per slice of a WAV, cached beside it until the audio changes, and
served by id and track (never by path) at /waveforms/…"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from tests.test_layers import offenders
from tests.web_demo import DEMO_CALL, replayed_demo
from voicereplay.errors import RecordingError
from voicereplay.peaks import cache_path, compute_peaks, waveform_peaks
from voicereplay.web import create_app


def _wav(path: Path, seconds: float = 2.0, rate: int = 8000, loud: float = 0.5) -> Path:
    """``loud`` sine for the first half, silence for the second."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (loud * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    samples[len(samples) // 2:] = 0
    soundfile.write(str(path), samples, rate, subtype="PCM_16")
    return path


def test_peaks_follow_the_signal(tmp_path: Path) -> None:
    peaks = compute_peaks(_wav(tmp_path / "a.wav"), points=100)
    assert peaks.points == 100 and peaks.duration == pytest.approx(2.0)
    assert peaks.sample_rate == 8000 and peaks.channels == 1
    highs, lows = peaks.peaks
    assert all(h == pytest.approx(0.5, abs=0.01) for h in highs[:50])
    assert all(lo == pytest.approx(-0.5, abs=0.01) for lo in lows[:50])
    assert all(abs(h) < 1e-3 and abs(lo) < 1e-3 for h, lo in zip(highs[50:], lows[50:],
                                                                  strict=True))


def test_stereo_peaks_cover_both_channels(tmp_path: Path) -> None:
    rate = 8000
    left = np.zeros(rate, dtype=np.float32)
    right = np.full(rate, 0.25, dtype=np.float32)
    soundfile.write(str(tmp_path / "s.wav"), np.stack([left, right], axis=1), rate)
    peaks = compute_peaks(tmp_path / "s.wav", points=10)
    assert peaks.channels == 2
    assert all(h == pytest.approx(0.25, abs=1e-3) for h in peaks.peaks[0])


def test_peaks_are_cached_beside_the_audio_until_it_changes(tmp_path: Path) -> None:
    audio = _wav(tmp_path / "call.wav")
    first = waveform_peaks(audio, points=50)
    cached = json.loads(cache_path(audio).read_text())
    assert cache_path(audio).name == "call.wav.peaks.json"
    cached["peaks"]["peaks"][0][0] = 0.123  # proves the next read comes from the cache
    cache_path(audio).write_text(json.dumps(cached))
    assert waveform_peaks(audio, points=50).peaks[0][0] == 0.123
    assert waveform_peaks(audio, points=25).points == 25  # other resolution: recomputed
    _wav(audio, seconds=3.0, loud=0.9)  # the audio changed: recomputed
    again = waveform_peaks(audio, points=50)
    assert again.duration == pytest.approx(3.0) and max(again.peaks[0]) > 0.85
    assert first.duration == pytest.approx(2.0)


def test_unreadable_audio_is_a_recording_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    with pytest.raises(RecordingError, match="bad.wav"):
        waveform_peaks(bad)
    with pytest.raises(RecordingError, match="missing"):
        waveform_peaks(tmp_path / "gone.wav")


def test_the_peaks_module_is_core() -> None:
    higher = ("voicereplay.compare", "voicereplay.simulate", "voicereplay.pipeline",
              "voicereplay.providers", "voicereplay.store", "voicereplay.cli", "voicereplay.web",
              "voicereplay.jobs")
    assert offenders("peaks.py", higher) == {}


def test_waveform_routes_serve_peaks_by_id_and_track(tmp_path: Path) -> None:
    settings, store, replay_id = replayed_demo(tmp_path / "home")
    client = TestClient(create_app(settings, store=store))
    call = client.get(f"/waveforms/calls/vapi/{DEMO_CALL}/mixed.json")
    assert call.status_code == 200
    body = call.json()
    assert body["duration"] == pytest.approx(store.get_call(DEMO_CALL).duration or 0, abs=0.1)
    assert len(body["peaks"]) == 2 and len(body["peaks"][0]) == body["points"] > 500
    replay = client.get(f"/waveforms/replays/{replay_id}/agent.json").json()
    assert replay["duration"] == pytest.approx(store.replays.get(replay_id).duration or 0,
                                               abs=0.1)
    mixed = store.get_call(DEMO_CALL).recording("mixed")
    assert mixed is not None and mixed.path and cache_path(Path(mixed.path)).exists()
    for url in (f"/waveforms/calls/vapi/{DEMO_CALL}/loud.json",
                "/waveforms/calls/vapi/no-such-call/mixed.json",
                "/waveforms/replays/0123456789ab/mixed.json",
                "/waveforms/replays/..%2F..%2Fetc/mixed.json",
                "/waveforms/calls/vapi/..%2F..%2F..%2Fetc%2Fpasswd/mixed.json"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "root:" not in response.text
