"""voicereplay.audio: band-limited resampling, silence, and the one voice-activity detector."""

from __future__ import annotations

import numpy as np
import pytest

from voicereplay.audio import Audio, mono, resample, silent, voice_activity


def tone(hz: float, rate: int, seconds: float = 1.0, level: float = 0.5) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio((level * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)


def spectrum_peak(audio: Audio) -> tuple[float, float]:
    """(frequency Hz, amplitude) of the strongest sine in the middle of ``audio``."""
    middle = audio.samples[len(audio.samples) // 4: 3 * len(audio.samples) // 4]
    window = np.hanning(len(middle))
    magnitude = np.abs(np.fft.rfft(middle * window)) * 2 / window.sum()
    peak = int(np.argmax(magnitude))
    return peak * audio.rate / len(middle), float(magnitude[peak])


def rms(audio: Audio) -> float:
    middle = audio.samples[len(audio.samples) // 4: 3 * len(audio.samples) // 4]
    return float(np.sqrt(np.mean(middle.astype(np.float64) ** 2)))


def test_a_tone_above_the_new_nyquist_is_filtered_out_not_folded_back() -> None:
    # 6 kHz cannot exist at 8 kHz (Nyquist 4 kHz); linear interpolation made it a 2 kHz
    # tone at 79 % of its amplitude
    high = resample(tone(6000, 22050), 8000)
    assert high.rate == 8000 and len(high.samples) == 8000
    assert rms(high) < 0.01 * rms(tone(6000, 22050))  # at least 40 dB down


def test_a_tone_below_nyquist_keeps_its_frequency_and_amplitude() -> None:
    low = resample(tone(1000, 22050), 8000)
    hz, amplitude = spectrum_peak(low)
    assert hz == pytest.approx(1000, abs=5)
    assert amplitude == pytest.approx(0.5, rel=0.02)
    up = resample(tone(1000, 8000), 16000)
    assert up.rate == 16000 and spectrum_peak(up)[0] == pytest.approx(1000, abs=5)


def test_resampling_keeps_length_and_passes_through_the_same_rate() -> None:
    audio = tone(440, 16000, seconds=0.5)
    assert resample(audio, 16000) is audio
    assert len(resample(audio, 48000).samples) == 24000
    empty = resample(Audio(np.zeros(0, dtype=np.float32), 22050), 8000)
    assert empty.rate == 8000 and empty.samples.size == 0
    with pytest.raises(ValueError):
        resample(audio, 0)


def test_silent_means_nothing_reaches_the_floor() -> None:
    assert silent(Audio(np.zeros(16000, dtype=np.float32), 16000))
    assert silent(Audio(np.zeros(0, dtype=np.float32), 16000))
    assert not silent(tone(300, 8000, level=0.001))  # quiet, but sound
    # a steady tone is sound, but not speech: no quieter stretch to tell it from noise
    steady = tone(300, 8000, seconds=2.0)
    assert not silent(steady) and not voice_activity(steady).any()


def test_voice_activity_marks_the_bursts_only() -> None:
    rate = 8000
    samples = np.random.default_rng(0).normal(0, 0.0005, 3 * rate).astype(np.float32)
    burst = tone(300, rate, seconds=1.0).samples
    samples[rate:2 * rate] += burst
    active = voice_activity(Audio(samples, rate))
    assert active.size == 150  # 20 ms frames
    assert active[50:100].all() and not active[:50].any() and not active[100:].any()


def test_mono_averages_the_channels() -> None:
    left, right = tone(300, 8000), Audio(np.zeros(8000, dtype=np.float32), 8000)
    both = mono([left, right])
    assert np.allclose(both.samples, left.samples / 2)
    assert mono([left]) is left
