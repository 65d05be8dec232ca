"""``openai-speech``: text-to-speech over the OpenAI ``/audio/speech`` HTTP API.

Works with OpenAI itself and with any server speaking the same API (local Kokoro/Piper servers,
gateways). The request asks for WAV and the body is streamed: PCM WAV (16-bit integer or 32-bit
float, as OpenAI sends) is decoded as bytes arrive, so time-to-first-audio is the time to the
first bytes of sound; any other audio the server sends instead is decoded with soundfile once
the body is complete.

Errors are :class:`~voicereplay.errors.StageError`: 401/403 and other 4xx are not retryable and
name the URL and the option to check (the key itself never appears); 408/429/5xx, timeouts and
connection failures are retryable; a body that is not audio is a clear, non-retryable error.
The ``httpx`` transport is injectable, so tests fake the server with ``httpx.MockTransport``.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import httpx
import numpy as np

from voicereplay.errors import StageError
from voicereplay.retry import parse_retry_after
from voicereplay.simulate.stages import TTS, Audio, TextToSpeech

__all__ = ["OpenAISpeechTTS", "WavStream"]

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


class WavStream:
    """Incremental decoder of a PCM WAV byte stream into mono float32 chunks.

    ``feed(data)`` returns the samples completed so far (after the header), or ``None`` while
    the header is incomplete. ``supported`` turns False when the stream is not PCM16/float32
    WAV; the caller then decodes the whole body another way.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self.rate = 0
        self.channels = 0
        self.kind = ""  # "int16" or "float32"
        self.in_data = False
        self.supported = True
        self._left: int | None = None  # data bytes still to come, when the header says


    def feed(self, data: bytes) -> np.ndarray | None:
        self._buffer += data
        if not self.in_data and not self._read_header():
            return None
        if self._left is not None:  # ignore chunks after the data (LIST and the like)
            self._buffer = self._buffer[:self._left]
        frame = self.channels * (2 if self.kind == "int16" else 4)
        usable = len(self._buffer) - len(self._buffer) % frame
        block, self._buffer = self._buffer[:usable], self._buffer[usable:]
        if self._left is not None:
            self._left -= usable
        if self.kind == "int16":
            samples = np.frombuffer(block, dtype="<i2").astype(np.float32) / 32768.0
        else:
            samples = np.frombuffer(block, dtype="<f4").astype(np.float32)
        if self.channels > 1:
            samples = samples.reshape(-1, self.channels).mean(axis=1)
        return samples

    def _read_header(self) -> bool:
        """Consume RIFF/fmt/... up to the data chunk; True once the samples begin."""
        buffer = self._buffer
        if len(buffer) < 12:
            return False
        if buffer[:4] != b"RIFF" or buffer[8:12] != b"WAVE":
            self.supported = False
            return False
        offset = 12
        while len(buffer) >= offset + 8:
            chunk_id = buffer[offset:offset + 4]
            (size,) = struct.unpack("<I", buffer[offset + 4:offset + 8])
            if chunk_id == b"data":
                if not self.rate:  # data before fmt: not something we stream
                    self.supported = False
                    return False
                self._buffer, self.in_data = buffer[offset + 8:], True
                # Streaming servers write 0 or 0xFFFFFFFF: the size is not known yet.
                self._left = size if 0 < size < 0xFFFFFFFF else None
                return True
            if len(buffer) < offset + 8 + size:
                return False
            if chunk_id == b"fmt ":
                self._parse_fmt(buffer[offset + 8:offset + 8 + size])
                if not self.supported:
                    return False
            offset += 8 + size + (size & 1)
        return False

    def _parse_fmt(self, fmt: bytes) -> None:
        if len(fmt) < 16:
            self.supported = False
            return
        tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag == _EXTENSIBLE and len(fmt) >= 26:
            tag = struct.unpack("<H", fmt[24:26])[0]
        if (tag, bits) == (_PCM, 16):
            self.kind = "int16"
        elif (tag, bits) == (_FLOAT, 32):
            self.kind = "float32"
        else:
            self.supported = False
            return
        if channels < 1 or rate < 1:
            self.supported = False
            return
        self.channels, self.rate = channels, rate


class OpenAISpeechTTS(TextToSpeech):
    """Text-to-speech through ``POST {base_url}/audio/speech``.

    ``base_url`` includes the API version (``https://api.openai.com/v1``). ``api_key`` defaults
    to ``OPENAI_API_KEY``; with neither, no Authorization header is sent (local servers).
    ``voice`` in ``synthesize`` overrides the default voice; ``speed`` is passed through.
    """

    name = "openai-speech"

    def __init__(self, base_url: str, api_key: str | None = None, *, model: str = "tts-1",
                 voice: str = "alloy", transport: httpx.BaseTransport | None = None,
                 timeout: float = 60, max_retries: int = 2, backoff: float = 0.5) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.voice = voice
        self.max_retries = max_retries
        self.backoff = backoff
        self._api_key = api_key
        self._key_source = "the api_key option" if api_key is not None else None
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = httpx.Client(transport=transport, timeout=timeout, headers=headers)

    @property
    def url(self) -> str:
        return f"{self.base_url}/audio/speech"

    def close(self) -> None:
        self._client.close()

    def _synthesize_impl(self, text: str, voice: str | None,
                         speed: float | None) -> Iterator[Audio]:
        body = {"model": self.model, "input": text, "voice": voice or self.voice,
                "response_format": "wav", "speed": speed if speed else 1.0}
        try:
            with self._client.stream("POST", self.url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._status_error(response)
                yield from self._decode(response)
        except httpx.TimeoutException as exc:
            raise StageError(f"{self.name}: {self.url} timed out ({type(exc).__name__})",
                             stage=self.name, retryable=True) from exc
        except httpx.TransportError as exc:
            raise StageError(f"{self.name}: cannot reach {self.url}: {exc}",
                             stage=self.name, retryable=True) from exc

    def _decode(self, response: httpx.Response) -> Iterator[Audio]:
        stream = WavStream()
        head = b""  # the body kept whole until it is known to stream as WAV
        produced = False
        for data in response.iter_bytes():
            if stream.supported:
                samples = stream.feed(data)
                if samples is not None:
                    head = b""
                    if len(samples):
                        produced = True
                        yield Audio(samples, stream.rate)
                    continue
            if not stream.in_data:
                head += data
        if stream.in_data:
            if not produced:
                yield Audio(np.zeros(0, dtype=np.float32), stream.rate)
            return
        yield self._decode_whole(head, response.headers.get("content-type", "unknown"))

    def _decode_whole(self, data: bytes, content_type: str) -> Audio:
        """Audio in any format soundfile reads, or a StageError describing the body."""
        import soundfile

        try:
            samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError, TypeError) as exc:
            start = data[:80].decode("utf-8", "replace").replace("\n", " ")
            raise StageError(
                f"{self.name}: {self.url} did not return audio (content-type {content_type},"
                f" {len(data)} bytes starting {self._redact(start)!r})", stage=self.name) from exc
        return Audio(np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32), int(rate))

    def _status_error(self, response: httpx.Response) -> StageError:
        status = response.status_code
        detail = self._server_message(response)
        where = f"{self.name}: HTTP {status} from {self.url}"
        if status in (401, 403):
            check = (f"check {self._key_source}" if self._key_source else
                     "no key was sent: set the api_key option or OPENAI_API_KEY")
            verb = "was refused" if status == 401 else "lacks access"
            return StageError(f"{where}: the API key {verb}; {check}{detail}", stage=self.name)
        if status == 404:
            return StageError(f"{where}: no such endpoint or model {self.model!r}; check base_url"
                              f" and model{detail}", stage=self.name)
        retryable = status in (408, 409, 429) or status >= 500
        return StageError(f"{where}{detail}", stage=self.name, retryable=retryable,
                          retry_after=parse_retry_after(response.headers.get("Retry-After")))

    def _server_message(self, response: httpx.Response) -> str:
        try:
            payload = response.json()
            error = payload.get("error") if isinstance(payload, dict) else None
            text = error.get("message") if isinstance(error, dict) else (error or payload)
        except ValueError:
            text = response.text
        text = " ".join(str(text or "").split())[:200]
        return f" ({self._redact(text)})" if text else ""

    def _redact(self, text: str) -> str:
        key = self._api_key
        if key:
            text = text.replace(key, "[redacted]")
            if len(key) > 8:  # servers echo keys partly masked, e.g. "sk-ab***wxyz"
                text = text.replace(key[:6], "[redacted]").replace(key[-4:], "[redacted]")
        return text


TTS.register("openai-speech", OpenAISpeechTTS)
