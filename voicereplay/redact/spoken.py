"""Spoken forms of PII, rewritten to the written forms detectors know — with a map back.

Presidio finds "(415) 555-0142" and "maria@example.com", but a transcript of speech says
"four one five, five five five, zero one four two" and "m a r i a at example dot com".
:func:`normalize_spoken` rewrites those spans and remembers where each came from, so a span
found in the rewritten text maps back (:meth:`SpokenText.to_original`) to the spoken words
in the original text, which are what gets redacted:

* **numbers**: a run of number words (or of digits written one by one, "4 1 5 5"), separated
  by nothing but spaces, commas, hyphens or full stops, becomes its digits through the
  comparison's number reader (:func:`voicereplay.compare.normalize.normalize`):
  "four one five five …" → "4155550142", "nineteen eighty five" → "1985". Inside a run
  "oh" is a zero and "double five" is "55". A lone "one" ("the one I ordered") and numbers
  written as numerals ("4417", "415 555 0142" — Presidio reads those) are left alone;
* **e-mail addresses**: ``<local part> at <label> dot <label>…`` where the last labels form a
  known public suffix (checked against tldextract's bundled list, offline) becomes
  ``local@domain``. The local part is one word or a run of spelled letters ("j o h n",
  "J-O-H-N"), optionally joined by "dot", "underscore", "dash"/"hyphen".

Every other character is copied as it is, so offsets outside rewritten spans map one to one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from voicereplay.compare.normalize import normalize

__all__ = ["Rewrite", "SpokenText", "normalize_spoken", "spoken_digits"]

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred thousand million billion".split())
_ZERO_WORDS = frozenset({"oh", "o"})
_REPEATS = {"double": 2, "triple": 3}
_RUN_GAP = re.compile(r"[\s,\-–]*(?:\.\s[\s,\-–]*)?")  # "5.9" is no gap, "five. five" is
_CONNECTORS = {"dot": ".", "underscore": "_", "dash": "-", "hyphen": "-"}
_LETTER_GAP = re.compile(r"[\s\-.,]*")


@dataclass(frozen=True)
class Rewrite:
    """Original characters ``[start, end)`` were rewritten as ``text`` (a ``kind`` of form),
    which starts at ``at`` in the rewritten text."""

    start: int
    end: int
    text: str
    kind: str  # "number" | "email"
    at: int = -1  # set by normalize_spoken


@dataclass
class SpokenText:
    """``text`` is ``original`` with spoken forms rewritten; offsets map back."""

    original: str
    text: str
    rewrites: list[Rewrite]
    _starts: list[int] = field(repr=False)
    _ends: list[int] = field(repr=False)
    _kinds: list[str | None] = field(repr=False)

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """The original character range behind ``text[start:end]`` (whole rewrites)."""
        if end <= start:
            point = self._starts[start] if start < len(self._starts) else len(self.original)
            return point, point
        return self._starts[start], self._ends[end - 1]

    def kinds(self, start: int, end: int) -> set[str]:
        """The kinds of rewrite that ``text[start:end]`` touches (empty: copied text only)."""
        return {k for k in self._kinds[start:end] if k is not None}


def normalize_spoken(text: str) -> SpokenText:
    """``text`` with spoken numbers and e-mail addresses in their written forms."""
    tokens = [(m.start(), m.end(), m.group(0).lower()) for m in _TOKEN.finditer(text)]
    rewrites = _emails(text, tokens)
    taken = [(r.start, r.end) for r in rewrites]
    rewrites += [r for r in _numbers(text, tokens)
                 if not any(r.start < e and s < r.end for s, e in taken)]
    rewrites.sort(key=lambda r: r.start)
    placed: list[Rewrite] = []
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    kinds: list[str | None] = []
    cursor = 0
    for rewrite in rewrites:
        for i in range(cursor, rewrite.start):
            out.append(text[i])
            starts.append(i)
            ends.append(i + 1)
            kinds.append(None)
        placed.append(replace(rewrite, at=len(starts)))
        out.append(rewrite.text)
        starts.extend([rewrite.start] * len(rewrite.text))
        ends.extend([rewrite.end] * len(rewrite.text))
        kinds.extend([rewrite.kind] * len(rewrite.text))
        cursor = rewrite.end
    for i in range(cursor, len(text)):
        out.append(text[i])
        starts.append(i)
        ends.append(i + 1)
        kinds.append(None)
    return SpokenText(text, "".join(out), placed, starts, ends, kinds)


def spoken_digits(words: list[str]) -> str | None:
    """The digits a run of number words/digit groups says, or None if it is not one."""
    spelled: list[str] = []
    repeat = 1
    for word in words:
        word = word.lower()
        if word in _REPEATS:
            repeat = _REPEATS[word]
            continue
        if word in _ZERO_WORDS:
            word = "zero"
        if not (word in _NUMBER_WORDS or word.isdigit()):
            return None
        if word.isdigit():  # written digit groups keep their digits, leading zeros too
            word = " ".join(normalize(d) for d in word)
        spelled.extend([word] * repeat)
        repeat = 1
    digits = normalize(" ".join(spelled)).replace(" ", "")
    return digits if digits.isdigit() else None


def _numbers(text: str, tokens: list[tuple[int, int, str]]) -> list[Rewrite]:
    runs: list[list[int]] = []
    for i, (start, _end, word) in enumerate(tokens):
        opens = word in _NUMBER_WORDS or word.isdigit() or word in _REPEATS
        joins = bool(runs) and runs[-1][-1] == i - 1 and (opens or word in _ZERO_WORDS) \
            and _RUN_GAP.fullmatch(text[tokens[i - 1][1]:start]) is not None
        if joins:
            runs[-1].append(i)
        elif opens:
            runs.append([i])
    found: list[Rewrite] = []
    for run in runs:
        while run and (tokens[run[-1]][2] in _ZERO_WORDS or tokens[run[-1]][2] in _REPEATS):
            run.pop()  # a trailing "o" or "double" is a word of its own
        words = [tokens[k][2] for k in run]
        spoken = any(not w.isdigit() for w in words)
        one_by_one = len(words) >= 3 and all(len(w) == 1 for w in words)  # "4 1 5"
        if not (spoken or one_by_one) or words == ["one"]:
            continue  # written numbers stay as they are; a lone "one" is rarely a number
        digits = spoken_digits(words)
        if digits and len(digits) >= 2:
            found.append(Rewrite(tokens[run[0]][0], tokens[run[-1]][1], digits, "number"))
    return found


def _emails(text: str, tokens: list[tuple[int, int, str]]) -> list[Rewrite]:
    found: list[Rewrite] = []
    for i, (_start, _end, word) in enumerate(tokens):
        if word != "at" or i == 0:
            continue
        domain = _domain(text, tokens, i + 1)
        local = _local_part(text, tokens, i - 1)
        if domain is None or local is None:
            continue
        (first, local_text), (last, domain_text) = local, domain
        found.append(Rewrite(tokens[first][0], tokens[last][1], f"{local_text}@{domain_text}",
                             "email"))
    return found


def _gap(text: str, tokens: list[tuple[int, int, str]], a: int, b: int) -> str:
    return text[tokens[a][1]:tokens[b][0]]


def _domain(text: str, tokens: list[tuple[int, int, str]], i: int) -> tuple[int, str] | None:
    """(index of the last token, domain) for the labels from token ``i``, if a real domain:
    the longest run of labels that ends in a public suffix."""
    from voicereplay.redact.presidio import no_fetch_extractor

    if i >= len(tokens) or _gap(text, tokens, i - 1, i).strip():
        return None
    labels = [(tokens[i][2], i)]
    j = i + 1
    while j < len(tokens):
        if _gap(text, tokens, j - 1, j) == ".":
            labels.append((tokens[j][2], j))
            j += 1
        elif tokens[j][2] == "dot" and j + 1 < len(tokens) \
                and not _gap(text, tokens, j - 1, j).strip(" ,") \
                and not _gap(text, tokens, j, j + 1).strip(" ,"):
            labels.append((tokens[j + 1][2], j + 1))
            j += 2
        else:
            break
    for n in range(len(labels), 1, -1):
        domain = ".".join(label for label, _ in labels[:n])
        parts = no_fetch_extractor()(domain)
        if parts.suffix and parts.domain:
            return labels[n - 1][1], domain
    return None


def _letter(text: str, token: tuple[int, int, str]) -> bool:
    """A spelled letter or digit — not the "s" of "it's"."""
    return token[1] - token[0] == 1 and (token[0] == 0 or text[token[0] - 1] not in "'’")


def _local_part(text: str, tokens: list[tuple[int, int, str]],
                i: int) -> tuple[int, str] | None:
    """(index of the first token, local part) for the words ending at token ``i``."""
    parts: list[str] = []
    j = i
    while j >= 0:
        if _letter(text, tokens[j]):  # spelled letters: "j o h n", "J-O-H-N"
            letters = [tokens[j][2]]
            while j - 1 >= 0 and _letter(text, tokens[j - 1]) and \
                    _LETTER_GAP.fullmatch(_gap(text, tokens, j - 1, j)):
                j -= 1
                letters.insert(0, tokens[j][2])
            parts.insert(0, "".join(letters))
        else:
            parts.insert(0, tokens[j][2])
        if j - 1 >= 0 and _gap(text, tokens, j - 1, j) == ".":
            parts.insert(0, ".")
            j -= 1
        elif j - 2 >= 0 and tokens[j - 1][2] in _CONNECTORS \
                and not _gap(text, tokens, j - 1, j).strip():
            parts.insert(0, _CONNECTORS[tokens[j - 1][2]])
            j -= 2
        else:
            break
    local = "".join(parts)
    return (j, local) if local and local not in _CONNECTORS.values() else None
