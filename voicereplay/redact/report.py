"""What a redaction did, safe to print: :class:`RedactionReport`.

One :class:`Redaction` per replaced occurrence — where (``"turn 3"``, ``"turn 4 tool call
lookup_order.arguments.phone"``, …), the entity type, the detector that found it, and the
placeholder — and one :class:`AudioRedaction` per redacted audio segment: the muted time
ranges, whether verification still heard a value and the whole segment was muted.

The original values never appear here. ``masked`` keeps just enough to recognise a value by
eye: the last two digits of a number (``••••••••42``), the first letter of each word of a name
(``J••••• M••••``), the first letter and the suffix of an e-mail (``m•••@•••.com``). No hash
is stored: an unsalted hash of a phone number is undone by trying all ten billion of them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["AudioRedaction", "Leak", "Redaction", "RedactionReport", "mask"]

_DOT = "•"


def mask(written: str, entity: str) -> str:
    """``written`` with all but a recognisable hint hidden (see the module docstring)."""
    digits = re.sub(r"\D", "", written)
    if entity == "EMAIL_ADDRESS" and "@" in written:
        local, _, domain = written.partition("@")
        suffix = domain.rsplit(".", 1)[-1] if "." in domain else ""
        return f"{local[:1]}{_DOT * 3}@{_DOT * 3}" + (f".{suffix}" if suffix else "")
    if len(digits) >= 4 and len(digits) >= len(re.sub(r"\W", "", written)) / 2:
        return _DOT * (len(digits) - 2) + digits[-2:]
    return " ".join(word[:1] + _DOT * (len(word) - 1) for word in written.split())


@dataclass(frozen=True)
class Redaction:
    """One value replaced by ``placeholder`` at ``where``."""

    where: str
    entity: str
    detector: str
    placeholder: str
    masked: str


@dataclass(frozen=True)
class Leak:
    """A redacted value still heard in redacted audio (``heard`` is masked)."""

    entity: str
    placeholder: str
    heard: str
    start: float | None = None  # seconds from the segment's start, when words were timed
    end: float | None = None


@dataclass
class AudioRedaction:
    """What was done to one audio segment."""

    where: str
    muted: list[tuple[float, float]] = field(default_factory=list)  # seconds, padded
    mode: str = "mute"
    leaks: list[Leak] = field(default_factory=list)  # heard after the first pass
    whole: bool = False  # the whole segment was muted (a value was still heard, or unplaced)
    reason: str = ""


@dataclass
class RedactionReport:
    """Every redaction of a scenario (text and audio); never an original value."""

    redactions: list[Redaction] = field(default_factory=list)
    audio: list[AudioRedaction] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many redactions of each entity type."""
        return dict(sorted(Counter(r.entity for r in self.redactions).items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "redactions": [asdict(r) for r in self.redactions],
            "audio": [asdict(a) for a in self.audio],
        }

    def render(self) -> str:
        """A plain-text table for a terminal (``save --redact --dry-run``)."""
        if not self.redactions and not self.audio:
            return "PII redaction: nothing found."
        lines = [f"PII redaction: {len(self.redactions)} redaction(s)"
                 + (" — " + ", ".join(f"{n} {e}" for e, n in self.counts().items())
                    if self.redactions else "")]
        width = max((len(r.where) for r in self.redactions), default=5)
        for r in self.redactions:
            lines.append(f"  {r.where:<{width}}  {r.placeholder:<20} {r.masked:<22} {r.detector}")
        for a in self.audio:
            ranges = ", ".join(f"{s:.2f}–{e:.2f} s" for s, e in a.muted) or "nothing"
            verdict = f"whole segment muted: {a.reason}" if a.whole else \
                "verified: no redacted value heard"
            lines.append(f"  {a.where}: {a.mode} {ranges}; {verdict}")
            lines += [f"    heard {leak.placeholder} ({leak.heard})" for leak in a.leaks]
        return "\n".join(lines)
