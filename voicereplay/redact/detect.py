"""Finding PII in one text: :func:`find_pii` → a list of :class:`Span`.

What is looked for, and by whom (the ``detector`` of each span):

* ``presidio:<Recognizer>`` — Microsoft Presidio on the spaCy model (see
  :mod:`voicereplay.redact.presidio`): person names, phone numbers, e-mail addresses, card
  numbers, bank account numbers (with an "account" nearby), SSN/ITIN/passport/driving licence,
  IBAN, IP addresses, places; a date counts only as a **date of birth** (``DATE_OF_BIRTH``)
  when "born", "birthday", "date of birth", "birth date" or "DOB" comes just before it;
* ``spoken-number`` / ``spoken-email`` — the same, found in the spoken form rewritten to the
  written one (:mod:`voicereplay.redact.spoken`), so "four one five five five five …" is a
  phone number and "m a r i a at example dot com" an e-mail; the span covers the spoken words.
  A spoken digit run of :data:`MIN_SPOKEN_DIGITS` or more that no recognizer claimed is still
  PII: a card number (13–19 digits passing the Luhn check, or "card" nearby), a bank account
  ("account"/"routing" nearby), an SSN ("social"/"SSN" nearby, 9 digits), a phone number
  (10–11 digits), else an ``ID_NUMBER``;
* ``street-address`` — a house number, up to four words and a street suffix ("123 Main
  Street", "four five six Oak Ave, apt 2"), spoken numbers included;
* ``user-name`` / ``user-pattern`` — names and regular expressions the user lists.

Overlapping spans are merged into one covering both (the longer span's type wins), so a
placeholder never cuts a value in half.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Protocol

from voicereplay.errors import ConfigError
from voicereplay.redact.presidio import analyzer as presidio_analyzer
from voicereplay.redact.spoken import SpokenText, normalize_spoken

__all__ = ["DEFAULT_ENTITIES", "MIN_SPOKEN_DIGITS", "Analyzer", "Span", "UserPattern",
           "find_pii", "merge_spans"]

DEFAULT_ENTITIES = (
    "PERSON", "PHONE_NUMBER", "EMAIL_ADDRESS", "CREDIT_CARD", "US_BANK_NUMBER", "IBAN_CODE",
    "US_SSN", "US_ITIN", "US_PASSPORT", "US_DRIVER_LICENSE", "IP_ADDRESS", "LOCATION",
    "STREET_ADDRESS", "DATE_OF_BIRTH", "ID_NUMBER",
)
MIN_SPOKEN_DIGITS = 7  # a spoken run this long is a number someone could be found by
SCORE_THRESHOLD = 0.35  # Presidio's weak patterns without context (bank: 0.05) stay out

_DOB_CONTEXT = re.compile(r"\b(?:born|birthday|birth\s*date|date\s+of\s+birth|d\.?o\.?b\.?)\b"
                          r"[^.?!]{0,25}$", re.IGNORECASE)
_NOT_STREET = r"(?!(?:am|pm|a\.m|p\.m|with|at|on|in|to|for|and|of|is|my|your|or)\b)"
_STREET = re.compile(  # "123 Main Street, apt 4B"; not "10 AM with Dr. Chen", "St. Louis"
    rf"\b\d{{1,6}}(?:\s+{_NOT_STREET}[A-Za-z][A-Za-z'.]*){{1,4}}?\s+(?:street|avenue|ave|road"
    r"|rd|boulevard|blvd|lane|ln|drive|court|ct|way|place|pl|terrace|circle|parkway|pkwy"
    r"|highway|hwy|(?:st|dr)\b(?!\.?\s+[A-Z]))"
    r"\b\.?(?:,?\s*(?:apt|apartment|suite|unit|#)\.?\s*#?\s*[A-Za-z0-9]+\b)?", re.IGNORECASE)
# One number read two ways: the type that needed context to pass ("account" before it) wins.
_RANK = {"CREDIT_CARD": 4, "US_SSN": 3, "US_BANK_NUMBER": 2, "IBAN_CODE": 2, "US_ITIN": 2,
         "PHONE_NUMBER": 1}
_CONTEXT_BEFORE = 40  # characters before a digit run searched for "card", "account", …


class Analyzer(Protocol):
    """What :func:`find_pii` needs of Presidio's ``AnalyzerEngine``: results with
    ``entity_type``, ``start``, ``end``, ``score`` and ``recognition_metadata``."""

    def analyze(self, text: str, language: str, *, entities: list[str],
                score_threshold: float) -> list[Any]: ...


@dataclass(frozen=True)
class Span:
    """PII at ``text[start:end]`` of the original text.

    ``value`` is that original text (the spoken words when it was spoken); ``written`` is
    the same value in written form ("4155550142" for "four one five …"), which is what the
    :class:`~voicereplay.redact.redactor.Redactor` matches elsewhere.
    """

    start: int
    end: int
    entity: str
    detector: str
    value: str
    written: str
    score: float = 1.0


@dataclass(frozen=True)
class UserPattern:
    """A regular expression the user lists; each match is redacted as ``entity``."""

    regex: str
    entity: str = "CUSTOM"


def find_pii(text: str, *, extra_names: Iterable[str] = (),
             extra_patterns: Iterable[str | tuple[str, str] | UserPattern] = (),
             entities: Sequence[str] = DEFAULT_ENTITIES, allow: Iterable[str] = (),
             analyzer: Analyzer | None = None) -> list[Span]:
    """Every PII span in ``text`` (merged, in order). See the module docstring.

    ``allow`` lists values that are never PII here (case-blind), e.g. the agent's own name
    or the business's ("Acme Audio", which spaCy may take for a person). ``analyzer`` is
    Presidio's ``AnalyzerEngine`` (default: the process-wide offline one) or anything with
    its ``analyze`` method — the seam tests use to run without loading spaCy.
    """
    unknown = set(entities) - set(DEFAULT_ENTITIES)
    if unknown:
        raise ConfigError(f"unknown PII type(s) {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(DEFAULT_ENTITIES)}")
    if not text.strip():
        return []
    spoken = normalize_spoken(text)
    wanted = set(entities)
    spans = _presidio(spoken, wanted, analyzer or presidio_analyzer())
    spans += _street_addresses(spoken, wanted)
    spans += _spoken_digit_runs(spoken, spans, wanted)
    spans += _user_names(text, extra_names)
    spans += _user_patterns(text, extra_patterns)
    allowed = {" ".join(a.casefold().split()) for a in allow}
    return [s for s in merge_spans(text, spans)
            if " ".join(s.value.casefold().split()) not in allowed]


def merge_spans(text: str, spans: Iterable[Span]) -> list[Span]:
    """Overlapping spans as one; the longest (then a user-given one, then a card over an SSN
    over a bank account over a phone number, then the highest score) names it."""
    merged: list[list[Span]] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < max(s.end for s in merged[-1]):
            merged[-1].append(span)
        else:
            merged.append([span])
    out: list[Span] = []
    for group in merged:
        best = max(group, key=lambda s: (s.end - s.start, s.detector.startswith("user-"),
                                         _RANK.get(s.entity, 0), s.score))
        start, end = min(s.start for s in group), max(s.end for s in group)
        if (start, end) != (best.start, best.end):  # the union is more than the best span
            best = replace(best, start=start, end=end, value=text[start:end],
                           written=text[start:end])
        out.append(best)
    return out


def _presidio(spoken: SpokenText, wanted: set[str], analyzer: Analyzer) -> list[Span]:
    asked = sorted((wanted & set(DEFAULT_ENTITIES)) - {"STREET_ADDRESS", "ID_NUMBER",
                                                        "DATE_OF_BIRTH"})
    if "DATE_OF_BIRTH" in wanted:
        asked.append("DATE_TIME")
    results = analyzer.analyze(spoken.text, language="en", entities=asked,
                               score_threshold=SCORE_THRESHOLD)
    spans: list[Span] = []
    for result in results:
        entity = result.entity_type
        if entity == "DATE_TIME":
            if not _DOB_CONTEXT.search(spoken.text[:result.start]):
                continue
            entity = "DATE_OF_BIRTH"
        spans.append(_mapped(spoken, result.start, result.end, entity,
                             _recognizer(result), float(result.score)))
    return spans


def _recognizer(result: object) -> str:
    metadata = getattr(result, "recognition_metadata", None) or {}
    name = str(metadata.get("recognizer_name", "presidio"))
    return "presidio:" + name.removeprefix("Offline")


def _mapped(spoken: SpokenText, start: int, end: int, entity: str, detector: str,
            score: float = 1.0) -> Span:
    """A span of the rewritten text, on the original text (spoken detectors named so)."""
    kinds = spoken.kinds(start, end)
    if detector.startswith("presidio:") and kinds:
        detector = "spoken-email" if "email" in kinds else "spoken-number"
    a, b = spoken.to_original(start, end)
    return Span(a, b, entity, detector, spoken.original[a:b], spoken.text[start:end], score)


def _street_addresses(spoken: SpokenText, wanted: set[str]) -> list[Span]:
    if "STREET_ADDRESS" not in wanted:
        return []
    return [_mapped(spoken, m.start(), m.end(), "STREET_ADDRESS", "street-address")
            for m in _STREET.finditer(spoken.text)]


def _spoken_digit_runs(spoken: SpokenText, found: list[Span], wanted: set[str]) -> list[Span]:
    spans: list[Span] = []
    for rewrite in spoken.rewrites:
        start, position = rewrite.at, rewrite.at + len(rewrite.text)
        if rewrite.kind != "number" or len(rewrite.text) < MIN_SPOKEN_DIGITS:
            continue
        if any(s.start < rewrite.end and rewrite.start < s.end for s in found):
            continue
        before = spoken.text[max(0, start - _CONTEXT_BEFORE):start].lower()
        entity = _digit_entity(rewrite.text, before)
        if entity in wanted:
            spans.append(_mapped(spoken, start, position, entity, "spoken-number"))
    return spans


def _digit_entity(digits: str, before: str) -> str:
    if "card" in before or (13 <= len(digits) <= 19 and _luhn(digits)):
        return "CREDIT_CARD"
    if re.search(r"\b(?:account|acct|routing)\b", before):
        return "US_BANK_NUMBER"
    if len(digits) == 9 and re.search(r"\b(?:social|ssn)\b", before):
        return "US_SSN"
    if len(digits) in (10, 11) or re.search(r"\b(?:phone|number|call|reach)\b", before):
        return "PHONE_NUMBER"
    return "ID_NUMBER"


def _luhn(digits: str) -> bool:
    total = 0
    for n, char in enumerate(reversed(digits)):
        d = int(char) * (2 if n % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _user_names(text: str, names: Iterable[str]) -> list[Span]:
    spans: list[Span] = []
    for name in names:
        parts = name.split()
        if not parts:
            continue
        pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, parts)) + r"(?!\w)"
        spans += [Span(m.start(), m.end(), "PERSON", "user-name", m.group(0), m.group(0))
                  for m in re.finditer(pattern, text, re.IGNORECASE)]
    return spans


def _user_patterns(text: str,
                   patterns: Iterable[str | tuple[str, str] | UserPattern]) -> list[Span]:
    spans: list[Span] = []
    for item in patterns:
        pattern = _as_pattern(item)
        regex = _compiled(pattern.regex)
        spans += [Span(m.start(), m.end(), pattern.entity, "user-pattern", m.group(0),
                       m.group(0)) for m in regex.finditer(text) if m.end() > m.start()]
    return spans


def _as_pattern(item: str | tuple[str, str] | UserPattern) -> UserPattern:
    if isinstance(item, UserPattern):
        return item
    if isinstance(item, str):
        return UserPattern(item)
    entity, regex = item
    return UserPattern(regex, entity)


@lru_cache(maxsize=256)
def _compiled(regex: str) -> re.Pattern[str]:
    try:
        return re.compile(regex)
    except re.error as exc:
        raise ConfigError(f"redaction pattern {regex!r} is not a valid regular expression: "
                          f"{exc}") from exc
