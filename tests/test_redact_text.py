"""PII redaction of text, the engine's logic: spoken forms, consistent placeholders across
turns, tool calls and results, propagation, user names and patterns, the report.

Fast: Presidio is replaced by :class:`tests.fakes.pii.RegexAnalyzer` (e-mails, 10-digit
phone numbers, listed names). What Presidio itself finds is in tests/test_redact_presidio.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.pii import RegexAnalyzer
from tests.test_layers import offenders
from voicereplay.errors import ConfigError
from voicereplay.redact import Redactor, find_pii
from voicereplay.redact.report import mask
from voicereplay.redact.spoken import normalize_spoken

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PHONE_SPOKEN = "four one five, five five five, zero one four two"
CARD_SPOKEN = "four one one one " + "one " * 11 + "one"
NAMES = RegexAnalyzer(["Jordan Miles", "Jordan", "Sam"])


def found(text: str, **options: object) -> list[tuple[str, str, str]]:
    return [(s.entity, s.detector, s.value)
            for s in find_pii(text, analyzer=NAMES, **options)]  # type: ignore[arg-type]


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
    assert [r.kind for r in spoken.rewrites] == ["number", "email"]


@pytest.mark.parametrize(("text", "written"), [
    ("four one five oh one double five", "4150155"),
    ("J-O-H-N dot smith at example.co.uk please", "john.smith@example.co.uk please"),
    ("maria underscore lopez at example dot com", "maria_lopez@example.com"),
    ("it's m a r i a at gmail dot com", "it's maria@gmail.com"),
    ("Four one five. Five five five. Oh one four two.", "4155550142."),
    ("call 4 1 5 5 5 5 0 1 4 2 now", "call 4155550142 now"),
    ("born nineteen eighty five", "born 1985"),
])
def test_spoken_forms(text: str, written: str) -> None:
    assert normalize_spoken(text).text == written


@pytest.mark.parametrize("text", ["Sure, it's 4417.", "a refund of $59.99 to you",
                                  "the one I ordered", "look at this", "it's at home dot",
                                  "(415) 555-0142", "meet at 9 dot 30"])
def test_written_numbers_and_ordinary_words_are_left_alone(text: str) -> None:
    assert normalize_spoken(text).text == text


# -- detection logic -----------------------------------------------------------------------


def test_spoken_pii_is_found_through_the_written_form() -> None:
    turn = (f"Hi, I ordered headphones. My number is {PHONE_SPOKEN}, my email is maria at "
            f"example dot com and my card is {CARD_SPOKEN}.")
    assert found(turn) == [
        ("PHONE_NUMBER", "spoken-number", PHONE_SPOKEN),
        ("EMAIL_ADDRESS", "spoken-email", "maria at example dot com"),
        ("CREDIT_CARD", "spoken-number", CARD_SPOKEN),  # no recognizer: 16 digits, Luhn
    ]
    assert found("Sure, it's 4417.") == []  # an order number is not PII


def test_spoken_digit_runs_take_their_type_from_the_context() -> None:
    digits = "one two three four five six seven eight nine"
    assert found(f"my account number is {digits}")[0][:2] == ("US_BANK_NUMBER", "spoken-number")
    assert found(f"my social is {digits}")[0][:2] == ("US_SSN", "spoken-number")
    assert found(f"the code is {digits}")[0][:2] == ("ID_NUMBER", "spoken-number")
    assert found("the code is four four one seven") == []  # too short to find anyone by


def test_street_addresses_spoken_or_written() -> None:
    assert found("Ship it to one two three Main Street, apt 4B please.") == [
        ("STREET_ADDRESS", "street-address", "one two three Main Street, apt 4B")]
    assert found("It's 77 Mass Ave.")[0][2] == "77 Mass Ave."


@pytest.mark.parametrize("text", ["I've moved you to Friday at 10 AM with Dr. Chen.",
                                  "meet at 5 on St. Louis Avenue"])
def test_times_and_titles_are_no_street_address(text: str) -> None:
    assert "STREET_ADDRESS" not in {e for e, _, _ in found(text)}


def test_user_names_and_patterns() -> None:
    text = "This is quinn zebulon about ticket ABC-12345."
    assert found(text, extra_names=["Quinn Zebulon"], extra_patterns=[("TICKET", r"ABC-\d+")]) \
        == [("PERSON", "user-name", "quinn zebulon"), ("TICKET", "user-pattern", "ABC-12345")]
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        find_pii(text, extra_patterns=["ABC-("], analyzer=NAMES)
    with pytest.raises(ConfigError, match="unknown PII type.*PHONE"):
        find_pii(text, entities=["PHONE"], analyzer=NAMES)


def test_overlapping_spans_merge_into_one() -> None:
    assert found("write to maria@example.com", extra_patterns=[("X", r"maria@ex")]) == [
        ("EMAIL_ADDRESS", "presidio:FakeRecognizer", "maria@example.com")]
    assert found("call Jordan Miles") == [("PERSON", "presidio:FakeRecognizer", "Jordan Miles")]


# -- the redactor ------------------------------------------------------------------------


def demo_scenario() -> tuple[list[str], dict, str]:
    messages = json.loads((FIXTURES / "demo" / "demo-refund.json").read_text())["messages"]
    turns = [m["message"] for m in messages if m.get("role") in ("user", "bot")]
    turns[3] = f"Jordan Miles. My number is {PHONE_SPOKEN}."
    turns.append("And my email is jordan at example dot com.")
    call = next(m for m in messages if m.get("role") == "tool_calls")["toolCalls"][0]
    arguments = json.loads(call["function"]["arguments"])
    arguments.update({"customer_name": "Jordan Miles", "phone": "+1 (415) 555-0142"})
    result = json.dumps({"status": "refunded", "amount": 59.99,
                         "contact": {"email": "JORDAN@example.com", "phone": 4155550142}})
    return turns, arguments, result


def test_a_demo_scenario_is_redacted_consistently_in_turns_tool_calls_and_results() -> None:
    turns, arguments, result = demo_scenario()
    redactor = Redactor(analyzer=NAMES)
    redactor.learn(*turns, arguments, result)
    out_turns = [redactor.redact_text(t, where=f"turn {n}") for n, t in enumerate(turns)]
    out_args = redactor.redact_value(arguments, where="turn 5 tool call issue_refund.arguments")
    out_result = json.loads(redactor.redact_value(result, where="turn 5 tool result"))

    assert out_turns[0] == ("Thank you for calling Acme Audio, this is <PERSON_1>. How can I "
                            "help you today?")
    assert out_turns[3] == "<PERSON_2>. My number is <PHONE_NUMBER_1>."
    assert out_turns[-1] == "And my email is <EMAIL_ADDRESS_1>."
    assert out_turns[6].startswith("Thank you, <PERSON_2>.")  # "Jordan" alone: the same one
    assert out_args == {"order_id": "4417", "reason": "customer inquiry",
                        "customer_name": "<PERSON_2>", "phone": "<PHONE_NUMBER_1>"}
    assert out_result == {"status": "refunded", "amount": 59.99,
                          "contact": {"email": "<EMAIL_ADDRESS_1>", "phone": "<PHONE_NUMBER_1>"}}
    everything = json.dumps([out_turns, out_args, out_result]).lower()
    for secret in ("jordan", "miles", "415", "0142", "example.com", "five five five"):
        assert secret not in everything

    report = redactor.report
    printed = report.render() + json.dumps(report.to_json())
    for secret in ("Jordan", "Miles", "4155550142", "555", "example.com", "five"):
        assert secret not in printed
    where = {(r.where, r.detector) for r in report.redactions}
    assert {("turn 3", "spoken-number"), ("turn 11", "spoken-email"),
            ("turn 5 tool call issue_refund.arguments.phone", "field:phone"),
            ("turn 5 tool result.contact.email", "field:email")} <= where
    assert report.counts() == {"EMAIL_ADDRESS": 2, "PERSON": 7, "PHONE_NUMBER": 3}
    assert "••••••••42" in report.render() and "j•••@•••.com" in report.render()


def test_a_value_known_from_one_place_is_redacted_where_the_detector_misses_it() -> None:
    redactor = Redactor(analyzer=NAMES)
    redactor.learn({"customer_name": "quinn zebulon"}, {"phone": "4155550142"})
    text = "ok thanks quinn zebulon, I'll call 415.555.0142 or four one five five five five"
    assert redactor.redact_text(text, where="turn 2") == \
        "ok thanks <PERSON_1>, I'll call <PHONE_NUMBER_1> or four one five five five five"
    assert [r.detector for r in redactor.report.redactions] == ["propagated", "propagated"]
    assert redactor.redact_value({"n": 4155550142, "m": 4417}, where="x") == {
        "n": "<PHONE_NUMBER_1>", "m": 4417}


def test_keys_that_name_their_value_mark_it_whole() -> None:
    redactor = Redactor(analyzer=NAMES)
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


def test_a_json_string_is_redacted_inside_and_stays_json() -> None:
    redactor = Redactor(analyzer=NAMES)
    raw = '{"note": "reach me at maria@example.com", "items": [{"by": "Sam"}]}'
    assert json.loads(redactor.redact_value(raw)) == {
        "note": "reach me at <EMAIL_ADDRESS_1>", "items": [{"by": "<PERSON_1>"}]}
    assert redactor.redact_value('{"status": "ok"}') == '{"status": "ok"}'  # untouched


def test_allowed_values_and_placeholders_are_left_alone() -> None:
    redactor = Redactor(analyzer=RegexAnalyzer(["Acme Audio", "Sam"]), allow=["acme audio"])
    once = redactor.redact_text("Thank you for calling Acme Audio, this is Sam.")
    assert once == "Thank you for calling Acme Audio, this is <PERSON_1>."
    assert redactor.redact_text(once) == once  # redacting twice changes nothing


def test_plain_or_numbered_placeholders() -> None:
    text = "Call (415) 555-0142 or (212) 555-0199, not 415 555 0142"
    assert Redactor(analyzer=NAMES).redact_text(text) == \
        "Call <PHONE_NUMBER_1> or <PHONE_NUMBER_2>, not <PHONE_NUMBER_1>"
    assert Redactor(analyzer=NAMES, numbered=False).redact_text(text) == \
        "Call <PHONE_NUMBER> or <PHONE_NUMBER>, not <PHONE_NUMBER>"


def test_each_text_is_analyzed_once_however_often_it_is_learned_and_redacted() -> None:
    analyzer = RegexAnalyzer()
    redactor = Redactor(analyzer=analyzer)
    redactor.learn("mail maria@example.com", "mail maria@example.com")
    redactor.redact_text("mail maria@example.com")
    assert analyzer.calls == 1


@pytest.mark.parametrize(("written", "entity", "masked"), [
    ("4155550142", "PHONE_NUMBER", "••••••••42"),
    ("maria@example.com", "EMAIL_ADDRESS", "m•••@•••.com"),
    ("Jordan Miles", "PERSON", "J••••• M••••"),
    ("123 Main Street", "STREET_ADDRESS", "1•• M••• S•••••"),
])
def test_the_report_masks_values(written: str, entity: str, masked: str) -> None:
    assert mask(written, entity) == masked


def test_redact_imports_nothing_from_a_higher_floor_or_another_engine() -> None:
    assert offenders("redact", ("voicereplay.cli", "voicereplay.web", "voicereplay.jobs",
                                "voicereplay.pipeline", "voicereplay.store",
                                "voicereplay.providers", "voicereplay.simulate")) == {}
