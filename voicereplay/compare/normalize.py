"""Text normalization before word/character error rates (WER/CER) are scored.

The provider's transcript and the replay's STT write the same speech differently ("It's 4417."
against "it's four thousand four hundred seventeen"); :func:`normalize` maps both to one plain
form so that only real recognition errors count:

* lower-case; curly and other apostrophe look-alikes (’ ‘ ʼ ` ´) become ``'``;
* money, percentages, ordinals, clock times and numbers are spelled out in words (American
  style, no "and"): ``$59.99`` → "fifty nine dollars ninety nine cents", ``3%`` → "three
  percent", ``1st`` → "first", ``1,200`` → "one thousand two hundred", ``2.5`` → "two point
  five", ``10:30`` → "ten thirty", ``10:05`` → "ten oh five", ``10:00`` → "ten". Digits read
  one by one stay separate words; a number with a leading zero ("007") and one longer than 15
  digits is read digit by digit. Years are read as cardinals ("2025" → "two thousand twenty
  five");
* then every run of number words is read back as its digits (:func:`_as_digits`), so "4417",
  "four thousand four hundred seventeen" and "four four one seven" all score as "4417": how a
  number was said or written is not a recognition error;
* dotted abbreviations lose their dots ("a.m." → "am"); ``&`` → "and"; hyphens and dashes
  become spaces ("twenty-one" → "twenty one");
* every other punctuation mark is dropped. An apostrophe is kept only *inside* a word
  ("don't", "it's", "o'clock"), so "it's" and "its" remain different words (one substitution);
* runs of whitespace become one space; leading/trailing space is removed.
"""

from __future__ import annotations

import re

__all__ = ["DESCRIPTION", "normalize", "spell_number", "spell_ordinal"]

DESCRIPTION = (
    "lower-cased; apostrophes unified and kept only inside words; other punctuation dropped; "
    "hyphens split; money, percentages, ordinals and clock times spelled out in words; every "
    "number, written or spoken (digit by digit or not), read as its digits; whitespace collapsed"
)

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_MAX_DIGITS = 15  # longer digit strings are read digit by digit
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}
_CURRENCY = {"$": ("dollar", "dollars"), "€": ("euro", "euros"), "£": ("pound", "pounds")}

_APOSTROPHES = re.compile(r"[’‘ʼ`´]")
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_MONEY = re.compile(rf"([$€£])\s?({_NUMBER})")
_PERCENT = re.compile(rf"({_NUMBER})\s?%")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_NUMBERS = re.compile(_NUMBER)
_ABBREVIATION = re.compile(r"\b(?:[a-z]\.){2,}")
_DASHES = re.compile(r"[-‐‑‒–—―]")
_PUNCTUATION = re.compile(r"[^\w\s']|_")
_LONE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """``text`` in the plain form WER/CER are scored on (see the module docstring)."""
    text = _APOSTROPHES.sub("'", text.lower())
    text = _ABBREVIATION.sub(lambda m: m.group(0).replace(".", ""), text)
    text = text.replace("&", " and ")
    text = _DASHES.sub(" ", text)
    text = _MONEY.sub(lambda m: f" {_money(m.group(1), m.group(2))} ", text)
    text = _PERCENT.sub(lambda m: f" {_spell_numeral(m.group(1))} percent ", text)
    text = _ORDINAL.sub(lambda m: f" {spell_ordinal(int(m.group(1)))} ", text)
    text = _CLOCK.sub(lambda m: f" {_clock(int(m.group(1)), m.group(2))} ", text)
    text = _NUMBERS.sub(lambda m: f" {_spell_numeral(m.group(0))} ", text)
    text = _PUNCTUATION.sub(" ", text)
    text = _LONE_APOSTROPHE.sub("", text)
    return " ".join(_as_digits(text.split()))


_VALUES = {word: n for n, word in enumerate(_ONES)}
_TEN_VALUES = {word: 10 * n for n, word in enumerate(_TENS) if word != "_"}
_SCALE_VALUES = {word: value for value, word in _SCALES}


def _as_digits(words: list[str]) -> list[str]:
    """Runs of number words as one digit string, however they were said or written.

    "four thousand four hundred seventeen", "four four one seven" and "forty four seventeen"
    all become "4417": a number reads as its digits, so an order number spoken digit by digit
    scores the same as its numeral. "and" between number words is dropped ("one hundred and
    five" → "105").
    """
    found: list[str] = []
    run: list[str] = []
    for n, word in enumerate(words):
        is_number = word in _VALUES or word in _TEN_VALUES or word in _SCALE_VALUES \
            or word == "hundred"
        joins = (word == "and" and run and n + 1 < len(words)
                 and (words[n + 1] in _VALUES or words[n + 1] in _TEN_VALUES))
        if is_number or joins:
            if word != "and":
                run.append(word)
            continue
        if run:
            found.append(_read(run))
            run = []
        found.append(word)
    if run:
        found.append(_read(run))
    return found


def _read(run: list[str]) -> str:
    """Number words as digits; a unit after a unit (or a tens after anything but a scale)
    starts a new group, and the groups are written one after the other."""
    groups: list[str] = []
    total = current = 0
    last = ""  # kind of the previous word: unit, tens, hundred, scale
    started = False
    for word in run:
        if word in _VALUES:
            kind = "unit"
            if started and (last == "unit" or (last == "tens" and current % 10)):
                groups.append(str(total + current))
                total = current = 0
            current += _VALUES[word]
        elif word in _TEN_VALUES:
            kind = "tens"
            if started and last in ("unit", "tens"):
                groups.append(str(total + current))
                total = current = 0
            current += _TEN_VALUES[word]
        elif word == "hundred":
            kind = "hundred"
            current = max(current, 1) * 100
        else:
            kind = "scale"
            total += max(current, 1) * _SCALE_VALUES[word]
            current = 0
        last, started = kind, True
    groups.append(str(total + current))
    return "".join(groups)


def spell_number(number: int) -> str:
    """A non-negative integer in words: 4417 → "four thousand four hundred seventeen"."""
    if number < 0:
        return "minus " + spell_number(-number)
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {spell_number(rest)}" if rest else "")
    for size, name in _SCALES:
        if number >= size:
            count, rest = divmod(number, size)
            return f"{spell_number(count)} {name}" + (f" {spell_number(rest)}" if rest else "")
    raise AssertionError("unreachable")  # pragma: no cover


def spell_ordinal(number: int) -> str:
    """A non-negative integer as an ordinal: 1 → "first", 21 → "twenty first"."""
    words = spell_number(number).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _digits(text: str) -> str:
    return " ".join(_ONES[int(d)] for d in text)


def _spell_numeral(text: str) -> str:
    """A numeral as written ("1,200", "2.5", "007") in words."""
    whole, _, fraction = text.replace(",", "").partition(".")
    if len(whole) > _MAX_DIGITS or (len(whole) > 1 and whole.startswith("0")):
        words = _digits(whole)
    else:
        words = spell_number(int(whole))
    return f"{words} point {_digits(fraction)}" if fraction else words


def _money(symbol: str, amount: str) -> str:
    """ "$59.99" → "fifty nine dollars ninety nine cents" (more than 2 decimals: "point …")."""
    one, many = _CURRENCY[symbol]
    whole, _, fraction = amount.replace(",", "").partition(".")
    if len(fraction) > 2:
        return f"{_spell_numeral(amount)} {many}"
    units = int(whole)
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if units or not cents:
        parts.append(f"{_spell_numeral(whole)} {one if units == 1 else many}")
    if cents:
        parts.append(f"{spell_number(cents)} {'cent' if cents == 1 else 'cents'}")
    return " ".join(parts)


def _clock(hours: int, minutes: str) -> str:
    """ "10:30" → "ten thirty", "10:05" → "ten oh five", "10:00" → "ten"."""
    spoken = spell_number(hours)
    value = int(minutes)
    if value == 0:
        return spoken
    if value < 10:
        return f"{spoken} oh {_ONES[value]}"
    return f"{spoken} {spell_number(value)}"
