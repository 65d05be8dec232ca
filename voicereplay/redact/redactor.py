"""Consistent redaction across a whole scenario: :class:`Redactor`.

A ``Redactor`` holds every PII value found so far and the placeholder given to it. The same
value gets the same placeholder everywhere — in caller and agent turns, tool-call arguments
and tool results — however it was written: ``(415) 555-0142``, ``+1 415 555 0142`` and
"four one five five five five zero one four two" are one phone number (numbers are compared
by their digits, a country code aside), e-mails by lower-case address, names case-blind, and a
name's parts share the full name's placeholder ("Jordan" after "Jordan Miles").

Placeholders are typed and numbered per type: ``<PERSON_1>``, ``<PHONE_NUMBER_1>``,
``<PERSON_2>`` — so a reader still sees that two turns name the same person, and two people
stay apart. ``numbered=False`` gives plain ``<PERSON>``.

Once a value is known, it is redacted wherever it appears, even where the detector missed it
(detector ``propagated``). For that to reach texts redacted *before* the value was found,
:meth:`Redactor.learn` everything first (the scenario writer does), then redact.

JSON (tool-call arguments, tool results) is redacted value by value, keys kept; a string that
holds JSON is redacted inside and written back as JSON; a number that is a known value becomes
its placeholder. A key that names what its value is (``phone``, ``email``, ``customer_name``,
``address``, ``city``, ``zip``, ``dob``, ``card_number``, ``account_number``, ``ssn``…) marks
the whole value as that type (detector ``field:<key>``), because a bare "Maria" or
"4155550142" carries no context for a detector.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from voicereplay.redact.detect import (
    DEFAULT_ENTITIES,
    Analyzer,
    Span,
    UserPattern,
    find_pii,
    merge_spans,
)
from voicereplay.redact.report import Redaction, RedactionReport, mask
from voicereplay.redact.spoken import normalize_spoken

__all__ = ["KnownValue", "Redactor"]

_NUMERIC = {"PHONE_NUMBER", "CREDIT_CARD", "US_BANK_NUMBER", "US_SSN", "US_ITIN", "ID_NUMBER",
            "IBAN_CODE", "US_PASSPORT", "US_DRIVER_LICENSE"}
_MIN_DIGITS = 6  # a numeric value shorter than this is matched as text, not by digits
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*(?:_\d+)?>")  # already redacted: left alone
_DIGIT_RUN = re.compile(r"\+?\d[\d\s().\-]*\d")
_FIELDS = (  # (key pattern on the snake_case key, entity) — first match wins
    (r"e_?mail(?:_?address)?", "EMAIL_ADDRESS"),
    (r"ip_?address", "IP_ADDRESS"),
    (r"phone|mobile|cell|telephone|tel", "PHONE_NUMBER"),
    (r"(?:first|last|full|given|family|sur|middle|customer|caller|contact|user|patient"
     r"|holder|account_holder)_?name", "PERSON"),
    (r"(?:street|home|billing|shipping|mailing)?_?address|street", "STREET_ADDRESS"),
    (r"city|town|zip(?:_?code)?|postal_?code|post_?code", "LOCATION"),
    (r"dob|date_of_birth|birth_?date|birthday", "DATE_OF_BIRTH"),
    (r"card_?number|card_?no|credit_?card|pan", "CREDIT_CARD"),
    (r"(?:bank_)?account_?(?:number|no)|routing_?(?:number|no)|iban", "US_BANK_NUMBER"),
    (r"ssn|social_security(?:_number)?", "US_SSN"),
)


@dataclass(frozen=True)
class KnownValue:
    """A PII value seen somewhere in the scenario (kept in memory only, never reported)."""

    entity: str
    written: str  # written form: "4155550142", "maria@example.com", "Jordan Miles"
    key: str  # what "the same value" means: digits, lower-case text
    placeholder: str


class Redactor:
    """Finds PII and replaces it with placeholders, consistently across many texts.

    ``extra_names``/``extra_patterns`` are the user's own (see :func:`find_pii`);
    ``entities`` limits the types looked for; ``allow`` lists values never redacted (the agent's
    or the business's own name); ``analyzer`` replaces Presidio (tests); ``numbered`` — see
    the module docstring.
    """

    def __init__(self, *, extra_names: Iterable[str] = (),
                 extra_patterns: Iterable[str | tuple[str, str] | UserPattern] = (),
                 entities: Sequence[str] = DEFAULT_ENTITIES, numbered: bool = True,
                 allow: Iterable[str] = (), analyzer: Analyzer | None = None) -> None:
        self.analyzer = analyzer
        self.allow = tuple(allow)
        self.extra_names = tuple(extra_names)
        self.extra_patterns = tuple(extra_patterns)
        self.entities = tuple(entities)
        self.numbered = numbered
        self.report = RedactionReport()
        self._known: dict[str, KnownValue] = {}
        self._counters: dict[str, int] = {}
        self._found: dict[str, list[Span]] = {}  # detector results per text

    # -- learning ------------------------------------------------------------------------

    @property
    def known(self) -> list[KnownValue]:
        """Every value found so far (for audio verification)."""
        return list(self._known.values())

    def learn(self, *items: Any) -> None:
        """Find the PII in texts and JSON values without redacting them (yet)."""
        for item in items:
            if isinstance(item, str):
                for span in self._detect(item):
                    self._remember(span.entity, span.written)
            elif isinstance(item, dict):
                for key, value in item.items():
                    entity = _field_entity(key)
                    if entity is not None and _scalar(value):
                        self._remember(entity, str(value))
                    else:
                        self.learn(value)
            elif isinstance(item, list | tuple):
                self.learn(*item)

    def spans(self, text: str) -> list[Span]:
        """The PII spans of ``text``: detected ones and every known value found in it."""
        placeholders = [m.span() for m in _PLACEHOLDER.finditer(text)]
        found = [s for s in self._detect(text)
                 if not any(a < s.end and s.start < b for a, b in placeholders)]
        for span in found:
            self._remember(span.entity, span.written)
        return merge_spans(text, found + self._propagated(text, found))

    # -- redacting -----------------------------------------------------------------------

    def redact_text(self, text: str, *, where: str = "text") -> str:
        """``text`` with each PII span replaced by its placeholder (recorded in the report)."""
        spans = self.spans(text)
        placeholders = []
        for span in spans:
            known = self._remember(span.entity, span.written)
            self._record(where, known.entity, span.detector, known)
            placeholders.append(known.placeholder)
        out = text
        for span, placeholder in reversed(list(zip(spans, placeholders, strict=True))):
            out = out[:span.start] + placeholder + out[span.end:]
        return out

    def redact_value(self, value: Any, *, where: str = "value") -> Any:
        """A JSON value (dict/list/str/number) redacted recursively; keys are kept."""
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                entity = _field_entity(key)
                path = f"{where}.{key}"
                if entity is not None and _scalar(item) and str(item).strip():
                    known = self._remember(entity, str(item))
                    self._record(path, known.entity, f"field:{key}", known)
                    out[key] = known.placeholder
                else:
                    out[key] = self.redact_value(item, where=path)
            return out
        if isinstance(value, list):
            return [self.redact_value(item, where=f"{where}[{n}]") for n, item in enumerate(value)]
        if isinstance(value, str):
            return self._redact_string(value, where)
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = self._known_number(str(value))
            if number is not None:
                self._record(where, number.entity, "propagated", number)
                return number.placeholder
        return value

    # -- internals -----------------------------------------------------------------------

    def _redact_string(self, value: str, where: str) -> Any:
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict | list):
                redacted = self.redact_value(parsed, where=where)
                return value if redacted == parsed else json.dumps(redacted, ensure_ascii=False)
        return self.redact_text(value, where=where)

    def _detect(self, text: str) -> list[Span]:
        if text not in self._found:
            self._found[text] = find_pii(text, extra_names=self.extra_names,
                                         extra_patterns=self.extra_patterns,
                                         entities=self.entities, allow=self.allow,
                                         analyzer=self.analyzer)
        return self._found[text]

    def _remember(self, entity: str, written: str) -> KnownValue:
        key = _key(entity, written)
        known = self._known.get(key) or (self._known_number(key) if key[:1] == "#" else None)
        if known is not None:
            return known
        person = self._same_person(entity, key)
        if person is not None:
            entity, placeholder = person.entity, person.placeholder
        else:
            placeholder = self._next_placeholder(entity)
        known = KnownValue(entity, written.strip(), key, placeholder)
        self._known[key] = known
        return known

    def _same_person(self, entity: str, key: str) -> KnownValue | None:
        """A known name this value is part of, or that is part of it ("Jordan" of "Jordan
        Miles" — even when spaCy calls that "Jordan" a place)."""
        if key.startswith("#") or (entity != "PERSON" and len(key.split()) > 1):
            return None
        words = set(key.split())
        for known in self._known.values():
            other = set(known.key.split())
            if known.entity == "PERSON" and (words <= other or (
                    entity == "PERSON" and other <= words)):
                return known
        return None

    def _next_placeholder(self, entity: str) -> str:
        if not self.numbered:
            return f"<{entity}>"
        self._counters[entity] = self._counters.get(entity, 0) + 1
        return f"<{entity}_{self._counters[entity]}>"

    def _record(self, where: str, entity: str, detector: str, known: KnownValue) -> None:
        self.report.redactions.append(
            Redaction(where, entity, detector, known.placeholder, mask(known.written, entity)))

    def _known_number(self, text: str) -> KnownValue | None:
        digits = re.sub(r"\D", "", text)
        if len(digits) < _MIN_DIGITS:
            return None
        for known in self._known.values():
            if known.key.startswith("#") and _same_number(digits, known.key[1:]):
                return known
        return None

    def _propagated(self, text: str, found: list[Span]) -> list[Span]:
        """Spans of known values in ``text`` that detection did not mark."""
        spoken = normalize_spoken(text)
        lowered = spoken.text.lower()
        spans: list[Span] = []
        for match in _DIGIT_RUN.finditer(spoken.text):
            known = self._known_number(match.group(0))
            if known is not None:
                spans.append(self._span(spoken, match.start(), match.end(), known))
        for known in self._known.values():
            if known.key.startswith("#"):
                continue
            for phrase in _phrases(known):
                pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, phrase.split())) + r"(?!\w)"
                spans += [self._span(spoken, m.start(), m.end(), known)
                          for m in re.finditer(pattern, lowered)]
        return [s for s in spans if not any(f.start <= s.start and s.end <= f.end
                                            for f in found)]

    @staticmethod
    def _span(spoken: Any, start: int, end: int, known: KnownValue) -> Span:
        a, b = spoken.to_original(start, end)
        return Span(a, b, known.entity, "propagated", spoken.original[a:b], known.written)


def _key(entity: str, written: str) -> str:
    digits = re.sub(r"\D", "", written)
    if entity in _NUMERIC and len(digits) >= _MIN_DIGITS:
        return "#" + digits
    return " ".join(written.casefold().split())


def _same_number(a: str, b: str) -> bool:
    """The same number, allowing a country code of up to two digits on either side."""
    short, long = sorted((a, b), key=len)
    return long.endswith(short) and len(long) - len(short) <= 2 and len(short) >= _MIN_DIGITS


def _phrases(known: KnownValue) -> list[str]:
    """The lower-case phrases that reveal a known text value: the value, and a name's parts."""
    phrases = [known.key]
    if known.entity == "PERSON":
        phrases += [part for part in known.key.split() if len(part) >= 3]
    return [p for p in phrases if p.strip()]


def _field_entity(key: object) -> str | None:
    if not isinstance(key, str):
        return None
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower().replace("-", "_")
    for pattern, entity in _FIELDS:
        if re.fullmatch(rf"(?:\w+_)?(?:{pattern})", snake):
            return entity
    return None


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)
