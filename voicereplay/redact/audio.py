"""Redacting caller audio, and proving it worked.

* :func:`redaction_ranges` — the time ranges of the words that overlap redacted text spans,
  widened by ``pad`` seconds and out to the neighbouring words (word timestamps from Whisper
  are often a few hundred ms off, and digits leaked at the edges with 0.3 s of padding alone);
* :func:`redact_audio` — those ranges muted (``mode="mute"``) or replaced by a 1 kHz tone
  (``mode="tone"``), with 5 ms ramps so no click marks the cut;
* :func:`verify_audio` — the redacted audio transcribed again and normalized like the text
  (spoken numbers → digits, "at"/"dot" → ``@``/``.``); a :class:`~.report.Leak` for each
  redacted value still heard: :data:`MIN_LEAK_DIGITS` consecutive digits of a number, an
  e-mail's local part or whole address, a part of a name, or any other value word for word;
* :func:`redact_segment` — all three for one caller segment with a :class:`Redactor`: word
  timings given (provider word timings) or transcribed, the spans from the redactor plus every
  garbled trace of a known value (:func:`clue_spans`: Whisper writes "maria at example dot
  com" as "marioedatexample.com"), so every value known anywhere in the scenario counts;
  then verified; if anything is still heard, or
  a span cannot be placed in time, the **whole segment** is muted and the report says so.

``stt`` is anything with ``transcribe(Audio) -> Transcription`` (text and timed words), such as
the ``faster-whisper`` backend of :mod:`voicereplay.simulate`; it is passed in, not built here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol

import numpy as np

from voicereplay.audio import Audio
from voicereplay.errors import ConfigError
from voicereplay.models import Word
from voicereplay.redact.detect import Span
from voicereplay.redact.redactor import KnownValue, Redactor
from voicereplay.redact.report import AudioRedaction, Leak, mask
from voicereplay.redact.spoken import normalize_spoken

__all__ = ["MIN_LEAK_DIGITS", "Transcriber", "clue_spans", "find_leaks", "redact_audio",
           "redact_segment", "redaction_ranges", "verify_audio", "words_text"]

MIN_LEAK_DIGITS = 4  # this many consecutive digits of a redacted number heard is a leak
TONE_HZ = 1000.0
TONE_LEVEL = 0.1  # -20 dBFS
RAMP = 0.005  # seconds of fade at each edge of a muted range
Mode = Literal["mute", "tone"]


class Transcriber(Protocol):
    def transcribe(self, audio: Audio, *, language: str | None = None) -> Any: ...


def words_text(words: Sequence[Word]) -> tuple[str, list[tuple[int, int]]]:
    """The words joined as Whisper writes them, and each word's character range in that text.

    A word that starts with punctuation ("-55", ".com", "'s") joins the previous one without a
    space, so "415-55-0142" and "example.com" read whole.
    """
    text = ""
    ranges: list[tuple[int, int]] = []
    for word in words:
        if text and word.word[:1].isalnum():
            text += " "
        ranges.append((len(text), len(text) + len(word.word)))
        text += word.word
    return text, ranges


def redaction_ranges(words: Sequence[Word], spans: Iterable[Span], *, pad: float = 0.3,
                     offset: float = 0.0, duration: float | None = None
                     ) -> list[tuple[float, float]] | None:
    """Seconds (from ``offset``) to silence for ``spans`` of :func:`words_text` ``(words)``.

    Each range runs from the end of the word before the span (or ``pad`` before its first
    word, whichever is earlier) to the start of the word after it (or ``pad`` after its last
    word, whichever is later), clipped to ``[0, duration]``; overlapping ranges are merged.
    None when a span overlaps no word (it cannot be placed in time).
    """
    _, char_ranges = words_text(words)
    found: list[tuple[float, float]] = []
    for span in spans:
        hit = [n for n, (a, b) in enumerate(char_ranges) if a < span.end and span.start < b]
        if not hit:
            return None
        first, last = hit[0], hit[-1]
        start = words[first].start - offset - pad
        end = words[last].end - offset + pad
        if first > 0:
            start = min(start, words[first - 1].end - offset)
        if last + 1 < len(words):
            end = max(end, words[last + 1].start - offset)
        start = max(0.0, start)
        end = end if duration is None else min(duration, end)
        found.append((start, max(start, end)))
    merged: list[tuple[float, float]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def redact_audio(samples: np.ndarray, rate: int, words: Sequence[Word], spans: Iterable[Span],
                 *, pad: float = 0.3, mode: Mode = "mute", offset: float = 0.0) -> np.ndarray:
    """``samples`` with the words behind ``spans`` muted or toned (see the module docstring).

    ``spans`` are character spans of :func:`words_text` ``(words)[0]`` — e.g.
    ``redactor.spans(words_text(words)[0])`` — and word times count from ``offset`` seconds.
    A span that overlaps no word mutes everything: better a silent turn than a heard value.
    :func:`redact_segment` does this and the verification in one call.
    """
    duration = len(samples) / rate
    ranges = redaction_ranges(words, spans, pad=pad, offset=offset, duration=duration)
    if ranges is None:
        ranges = [(0.0, duration)]
    return apply_ranges(samples, rate, ranges, mode=mode)


def apply_ranges(samples: np.ndarray, rate: int, ranges: Iterable[tuple[float, float]], *,
                 mode: Mode = "mute") -> np.ndarray:
    """``samples`` (a copy) with each range (seconds) muted or replaced by a tone.

    Inside a range the original is gone entirely; a 5 ms fade just outside it avoids clicks.
    """
    if mode not in ("mute", "tone"):
        raise ConfigError(f"audio redaction mode must be 'mute' or 'tone', not {mode!r}")
    if np.ndim(samples) != 1:
        raise ConfigError(f"audio redaction needs mono samples, got shape {np.shape(samples)}")
    out = np.array(samples, dtype=np.float32, copy=True)
    gain = np.ones(len(out), dtype=np.float32)
    ramp = max(1, int(RAMP * rate))
    for start, end in ranges:
        a, b = max(0, int(start * rate)), min(len(out), int(np.ceil(end * rate)))
        if b <= a:
            continue
        fade = np.linspace(1.0, 0.0, ramp + 1, dtype=np.float32)[1:]
        before = gain[max(0, a - ramp):a]
        if len(before):
            before[:] = np.minimum(before, fade[ramp - len(before):])
        after = gain[b:b + ramp]
        if len(after):
            after[:] = np.minimum(after, fade[::-1][:len(after)])
        gain[a:b] = 0.0
    out *= gain
    if mode == "tone":
        t = np.arange(len(out), dtype=np.float32) / rate
        out += (1.0 - gain) * TONE_LEVEL * np.sin(2 * np.pi * TONE_HZ * t).astype(np.float32)
    return out


def verify_audio(samples: np.ndarray, rate: int, redacted: Iterable[KnownValue | str],
                 stt: Transcriber, *, language: str | None = "en",
                 min_digits: int = MIN_LEAK_DIGITS) -> list[Leak]:
    """The redacted values still heard in ``samples`` (empty: none heard)."""
    transcription = stt.transcribe(Audio(np.asarray(samples, dtype=np.float32), rate),
                                   language=language)
    return find_leaks(transcription.text, list(transcription.words or []), redacted,
                      min_digits=min_digits)


def find_leaks(heard: str, words: Sequence[Word], redacted: Iterable[KnownValue | str], *,
               min_digits: int = MIN_LEAK_DIGITS) -> list[Leak]:
    """The redacted values in the transcript ``heard`` (see :func:`verify_audio`)."""
    text, ranges = words_text(words) if words else (heard, [])
    leaks: list[Leak] = []
    for start, end, known, clue in clue_spans(text, redacted, min_digits=min_digits):
        hit = [n for n, (a, b) in enumerate(ranges) if a < end and start < b]
        leaks.append(Leak(known.entity, known.placeholder, mask(clue, known.entity),
                          words[hit[0]].start if hit else None,
                          words[hit[-1]].end if hit else None))
    return leaks


def clue_spans(text: str, redacted: Iterable[KnownValue | str], *,
               min_digits: int = MIN_LEAK_DIGITS) -> list[tuple[int, int, KnownValue, str]]:
    """Where ``text`` (a transcript) gives away a redacted value, however garbled:
    (start, end, value, the clue heard). Clues: ``min_digits`` consecutive digits of a
    number (spoken or written), an e-mail's address, local part or domain (even inside a
    word: Whisper writes "maria at example dot com" as "marioedatexample.com"), a part of a
    name, or the whole value word for word."""
    values = [v if isinstance(v, KnownValue) else KnownValue("PII", v, v.casefold(), "<PII>")
              for v in redacted]
    spoken = normalize_spoken(text)
    found: list[tuple[int, int, KnownValue, str]] = []
    for match in re.finditer(r"\d(?:[\d\s,.\-]*\d)?", spoken.text):
        run = re.sub(r"\D", "", match.group(0))
        for known in values:
            digits = re.sub(r"\D", "", known.written)
            if len(digits) < min_digits:
                continue
            clue = next((run[i:i + min_digits] for i in range(len(run) - min_digits + 1)
                         if run[i:i + min_digits] in digits), None)
            if clue is not None:
                a, b = spoken.to_original(match.start(), match.end())
                found.append((a, b, known, clue))
                break
    lowered = spoken.text.lower()
    for known in values:
        for clue, inside_words in _text_clues(known):
            pattern = re.escape(clue) if inside_words else rf"(?<!\w){re.escape(clue)}(?!\w)"
            for match in re.finditer(pattern, lowered):
                a, b = match.span()
                if inside_words:  # the whole word it hides in
                    a = lowered.rfind(" ", 0, a) + 1
                    b = lowered.find(" ", b)
                    b = len(lowered) if b < 0 else b
                found.append((*spoken.to_original(a, b), known, clue))
    return found


def _text_clues(known: KnownValue) -> list[tuple[str, bool]]:
    """(clue, found inside a longer word too) for a value that is not only digits."""
    written = " ".join(known.written.casefold().split())
    clues = [(written, True)]
    if known.entity == "EMAIL_ADDRESS" and "@" in written:
        local, _, domain = written.partition("@")
        clues += [(local, True), (domain, True)]
    if known.entity == "PERSON":
        clues += [(part, False) for part in written.split()]
    return [(c, inside) for c, inside in clues
            if len(c) >= 3 and not re.fullmatch(r"[\d\W]+", c)]


def redact_segment(redactor: Redactor, samples: np.ndarray, rate: int, stt: Transcriber, *,
                   where: str, words: Sequence[Word] | None = None, offset: float = 0.0,
                   pad: float = 0.3, mode: Mode = "mute",
                   language: str | None = "en") -> tuple[np.ndarray, AudioRedaction]:
    """One caller segment redacted and verified; the result is recorded in the report.

    ``words`` are the segment's provider word timings (times from ``offset``); without them
    the segment is transcribed with word timestamps first.
    """
    duration = len(samples) / rate
    if not words:
        words = list(stt.transcribe(Audio(np.asarray(samples, dtype=np.float32), rate),
                                    language=language).words or [])
        offset = 0.0
    text, _ = words_text(words)
    spans = redactor.spans(text)
    spans += [Span(a, b, known.entity, "heard", text[a:b], known.written)
              for a, b, known, _ in clue_spans(text, redactor.known)]
    result = AudioRedaction(where=where, mode=mode)
    ranges = redaction_ranges(words, spans, pad=pad, offset=offset, duration=duration)
    if ranges is None:
        result.whole, result.reason = True, "a redacted span has no timed word"
        ranges = [(0.0, duration)]
    result.muted = [(round(a, 3), round(b, 3)) for a, b in ranges]
    redacted = apply_ranges(samples, rate, ranges, mode=mode)
    if not result.whole and redactor.known:
        result.leaks = verify_audio(redacted, rate, redactor.known, stt, language=language)
        if result.leaks:
            result.whole = True
            result.reason = "still heard after muting: " + ", ".join(
                sorted({leak.placeholder for leak in result.leaks}))
    if result.whole:
        result.muted = [(0.0, duration)]
        redacted = apply_ranges(samples, rate, result.muted, mode=mode)
    redactor.report.audio.append(result)
    return redacted, result
