"""A stand-in for Presidio's ``AnalyzerEngine`` in fast redaction tests: regular expressions
for e-mail addresses and 10-digit phone numbers, and a fixed list of person names. No model is
loaded; it is honest that it understands nothing else (``voicereplay.redact.detect.Analyzer``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_PATTERNS = {
    "EMAIL_ADDRESS": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "PHONE_NUMBER": re.compile(r"(?<!\d)(?:\+?1[ -]?)?\(?\d{3}\)?[ -]?\d{3}[ -]?\d{4}(?!\d)"),
}


@dataclass
class Result:
    entity_type: str
    start: int
    end: int
    score: float = 0.9
    recognition_metadata: dict[str, Any] = field(
        default_factory=lambda: {"recognizer_name": "FakeRecognizer"})


class RegexAnalyzer:
    """Finds e-mails, phone numbers and the given names (case-sensitive, whole words)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = list(names)
        self.calls = 0

    def analyze(self, text: str, language: str, *, entities: list[str],
                score_threshold: float) -> list[Result]:
        self.calls += 1
        found = [Result(entity, m.start(), m.end()) for entity, pattern in _PATTERNS.items()
                 if entity in entities for m in pattern.finditer(text)]
        if "PERSON" in entities:
            for name in self.names:
                found += [Result("PERSON", m.start(), m.end())
                          for m in re.finditer(rf"\b{re.escape(name)}\b", text)]
        return found
