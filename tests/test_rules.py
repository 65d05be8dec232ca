"""Flag rules: the file's schema and its errors, every condition both ways on real-shaped
Vapi and Retell calls, sampling, files read relative to the rules file, replay requests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from voicereplay.config import Settings
from voicereplay.errors import ConfigError
from voicereplay.models import Call
from voicereplay.pipeline.rules import (
    RuleSet,
    load_configured_rules,
    load_rules,
    replay_request,
    rules_path,
    sample_point,
)
from voicereplay.providers import retell_payload, vapi_payload

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SCORECARDS = {"c5bd0d4e-0c7f-4b0a-82e9-5d0baf6e4a01": {
    "name": "Support QA Scorecard", "score": 70, "scoreNormalized": 70,
    "metricPoints": {"so-bool": 70, "so-number": 0}}}
OUTPUTS = {
    "550e8400-e29b-41d4-a716-446655440001": {
        "name": "Support Ticket",
        "result": {"issue": {"category": "billing", "priority": "urgent"}}},
    "550e8400-e29b-41d4-a716-446655440002": {"name": "Appointment Booked", "result": False},
}


def _fixture(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / relative).read_text())
    return copy.deepcopy(data)


def vapi_call(**changes: Any) -> Call:
    """The 2025 GET /call fixture with an analysis, artifact and metadata laid over it."""
    body = _fixture("vapi/vapi-2025-booking.json")
    body["analysis"].update({"successEvaluation": "false",
                             "structuredData": {"intent": "refund", "order": {"id": 4417}}})
    body["artifact"].update({"structuredOutputs": OUTPUTS, "scorecards": SCORECARDS})
    body["assistantId"] = "asst_123"
    body["metadata"] = {"tags": ["vip", "beta"], "region": {"name": "emea"}}
    for key, value in changes.items():
        if key == "success":
            body["analysis"]["successEvaluation"] = value
        elif value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return vapi_payload.parse_call(body)


def vapi_report(**artifact: Any) -> Call:
    """The 2024 end-of-call-report fixture: the artifact sits at message.artifact."""
    body = _fixture("vapi/vapi-2024-report.json")
    body["message"]["artifact"].update(artifact)
    return vapi_payload.parse_call(body)


def retell_call(**analysis: Any) -> Call:
    """The call_analyzed webhook fixture, with call_analysis fields changed."""
    body = _fixture("retell/retell-webhook-call-analyzed.json")
    body["call"]["call_analysis"].update(analysis)
    return retell_payload.parse_call(body)


def ruleset(when: dict[str, Any] | None = None, *, name: str = "r", **rule: Any) -> RuleSet:
    return RuleSet.model_validate({"rules": [{"name": name, "when": when or {}, **rule}]})


def outcome(when: dict[str, Any], call: Call, *, flagged: bool = False) -> tuple[bool, str]:
    [match] = ruleset(when).evaluate(call, flagged=flagged)
    [condition] = match.conditions
    assert condition.held == match.matched
    return match.matched, condition.reason


# -- conditions, both ways -------------------------------------------------------------------
CASES = [
    # (when, call, held, words in the reason)
    ({"provider": "vapi"}, vapi_call, True, "provider is vapi"),
    ({"provider": ["retell"]}, vapi_call, False, "provider is vapi, not one of: retell"),
    ({"provider": "retell"}, retell_call, True, "provider is retell"),
    ({"success": False}, vapi_call, True, "success evaluation is false"),
    ({"success": True}, vapi_call, False, "success evaluation is false, not true"),
    ({"success": True}, retell_call, True, "success evaluation is true"),
    ({"success": False}, retell_call, False, "success evaluation is true, not false"),
    ({"structured_data": {"intent": "refund"}}, vapi_call, True, "intent is 'refund'"),
    ({"structured_data": {"intent": ["return", "refund"]}}, vapi_call, True, "refund"),
    ({"structured_data": {"order.id": "4417"}}, vapi_call, True, "order.id is 4417"),
    ({"structured_data": {"intent": "status"}}, vapi_call, False,
     "structured data intent is 'refund', not 'status'"),
    ({"structured_data": {"mood": "angry"}}, vapi_call, False, "no 'mood' in structured data"),
    ({"structured_data": {"appointment_confirmed": True}}, retell_call, True,
     "appointment_confirmed is True"),
    ({"structured_data": {"appointment_confirmed": "false"}}, retell_call, False,
     "appointment_confirmed is True, not 'false'"),
    ({"structured_outputs": {"Appointment Booked": False}}, vapi_call, True,
     "Appointment Booked is False"),
    ({"structured_outputs": {"Support Ticket.issue.category": "billing"}}, vapi_call, True,
     "Support Ticket.issue.category is 'billing'"),
    ({"structured_outputs": {"550e8400-e29b-41d4-a716-446655440001.issue.priority": "low"}},
     vapi_call, False, "structured outputs 550e8400-e29b-41d4-a716-446655440001.issue.priority "
                       "is 'urgent', not 'low'"),
    ({"structured_outputs": {"Lead Score": 3}}, vapi_call, False,
     "no 'Lead Score' in structured outputs"),
    ({"structured_outputs": {"Appointment Booked": False}}, retell_call, False,
     "no structured outputs"),
    ({"scorecards": {"Support QA Scorecard": {"max": 70}}}, vapi_call, True,
     "scorecard Support QA Scorecard scored 70 is at most 70"),
    ({"scorecards": {"c5bd0d4e-0c7f-4b0a-82e9-5d0baf6e4a01": {"min": 80}}}, vapi_call, False,
     "scored 70 is under 80"),
    ({"scorecards": {"Sales": {"min": 1}}}, vapi_call, False, "no score for scorecard 'Sales'"),
    ({"sentiment": "positive"}, retell_call, True, "sentiment is Positive"),
    ({"sentiment": ["negative", "neutral"]}, retell_call, False,
     "sentiment is Positive, not one of: negative, neutral"),
    ({"sentiment": "negative"}, vapi_call, False, "no sentiment"),
    ({"ended_reason": ["customer-ended-call"]}, vapi_call, True,
     "ended reason 'customer-ended-call' matches"),
    ({"ended_reason": ["pipeline-error-*", "silence-timed-out"]}, vapi_call, False,
     "ended reason 'customer-ended-call' is not one of: pipeline-error-*, silence-timed-out"),
    ({"ended_reason": "user_*"}, retell_call, True, "ended reason 'user_hangup' matches"),
    ({"duration": {"min": 20, "max": 600}}, vapi_call, True, "duration 26.589 s is within 20–600"),
    ({"duration": {"min": 30}}, vapi_call, False, "duration 26.589 s is under 30 s"),
    ({"duration": {"max": 10}}, retell_call, False, "duration 18.161 s is over 10 s"),
    ({"cost": {"max": 0.05}}, vapi_call, True, "cost 0.048295 USD is at most 0.05 USD"),
    ({"cost": {"min": 0.5}}, retell_call, False, "cost 0.039 USD is under 0.5 USD"),
    ({"agent": ["asst_9", "asst_123"]}, vapi_call, True, "agent is asst_123"),
    ({"agent": "agent_d423c705a7f42a84fe129043c1"}, retell_call, True, "agent is agent_d423"),
    ({"agent": "asst_9"}, vapi_call, False, "agent is asst_123, not one of: asst_9"),
    ({"metadata": {"region.name": "emea"}}, vapi_call, True, "region.name is 'emea'"),
    ({"metadata": {"batch": "reminders-2025-07-09"}}, retell_call, True, "batch is"),
    ({"metadata": {"batch": "other"}}, retell_call, False,
     "metadata batch is 'reminders-2025-07-09', not 'other'"),
    ({"tags": ["vip"]}, vapi_call, True, "tagged vip"),
    ({"tags": "enterprise"}, vapi_call, False, "tags vip, beta include none of: enterprise"),
    ({"tags": "vip"}, retell_call, False, "no tags in metadata"),
    ({"customer_number": "+1 (415) 555-0176"}, vapi_call, True,
     "customer number is +14155550176"),
    ({"customer_number": ["+14155550000"]}, retell_call, False,
     "customer number is +14155550151, not one of: +14155550000"),
]


@pytest.mark.parametrize(("when", "make", "held", "words"), CASES,
                         ids=[f"{next(iter(c[0]))}-{c[1].__name__}-{c[2]}" for c in CASES])
def test_each_condition_holds_or_not_with_its_reason(
    when: dict[str, Any], make: Any, held: bool, words: str
) -> None:
    matched, reason = outcome(when, make())
    assert matched is held
    assert words in reason


def test_vapi_artifact_is_read_from_an_end_of_call_report_too() -> None:
    call = vapi_report(scorecards=SCORECARDS, structuredOutputs=OUTPUTS)
    assert outcome({"scorecards": {"Support QA Scorecard": {"max": 80}}}, call)[0]
    assert outcome({"structured_outputs": {"Support Ticket.issue.priority": "urgent"}}, call)[0]
    assert outcome({"scorecards": {"Support QA Scorecard": {"max": 80}}},
                   vapi_report()) == (False, "no scorecards")


def test_a_condition_without_data_does_not_hold_and_says_so() -> None:
    assert outcome({"success": False}, vapi_call(success=None)) == (
        False, "no success evaluation yet")
    # a numeric rubric score is not a pass/fail verdict
    assert outcome({"success": False}, vapi_call(success=3))[1] == "no success evaluation yet"
    assert outcome({"success": False}, retell_call(call_successful=None))[0] is False
    assert outcome({"agent": "asst_123"}, vapi_call(assistantId=None)) == (False, "no agent id")
    assert outcome({"structured_data": {"x": 1}}, retell_call(custom_analysis_data={})) == (
        False, "no structured data")


def test_flagged_comes_from_the_caller() -> None:
    call = vapi_call()
    assert outcome({"flagged": True}, call, flagged=True) == (True, "the call is flagged")
    assert outcome({"flagged": True}, call) == (False, "the call is not flagged")
    assert outcome({"flagged": False}, call) == (True, "the call is not flagged")


def test_all_conditions_must_hold_and_each_is_reported_in_order() -> None:
    rules = ruleset({"provider": "vapi", "success": False, "duration": {"min": 30},
                     "tags": "vip"})
    [match] = rules.evaluate(vapi_call())
    assert not match.matched
    assert [c.name for c in match.conditions] == ["provider", "success", "duration", "tags"]
    assert [c.held for c in match.conditions] == [True, True, False, True]
    assert match.reasons[2] == "duration 26.589 s is under 30 s"
    assert rules.matching(vapi_call(endedAt=None, durationSeconds=45)) == rules.rules
    assert match.to_json()["conditions"][2] == {
        "condition": "duration", "held": False, "reason": "duration 26.589 s is under 30 s"}


def test_a_rule_without_conditions_matches_every_call() -> None:
    rules = ruleset()
    for call in (vapi_call(), retell_call(), vapi_report()):
        [match] = rules.evaluate(call)
        assert match.matched and match.reasons == ["no conditions: every call matches"]


def test_evaluate_keeps_file_order_and_matching_lists_the_hits() -> None:
    rules = RuleSet.model_validate({"rules": [
        {"name": "retell-only", "when": {"provider": "retell"}},
        {"name": "failed", "when": {"success": False}},
        {"name": "any"}]})
    matches = rules.evaluate(vapi_call())
    assert [(m.rule.name, m.matched) for m in matches] == [
        ("retell-only", False), ("failed", True), ("any", True)]
    assert [r.name for r in rules.matching(vapi_call())] == ["failed", "any"]


# -- sampling --------------------------------------------------------------------------------
def test_sampling_is_deterministic_per_rule_and_call() -> None:
    call = vapi_call()
    first = outcome({"sample": 0.5}, call)
    assert all(outcome({"sample": 0.5}, vapi_call()) == first for _ in range(5))
    point = sample_point("r", "vapi", call.call_id)
    assert (f"{point:.4f}" in first[1]) and first[0] is (point < 0.5)
    assert sample_point("r", "vapi", "abc") == sample_point("r", "vapi", "abc")
    assert sample_point("r", "vapi", "abc") != sample_point("r", "retell", "abc")


def test_sampling_takes_roughly_the_fraction_and_rules_sample_independently() -> None:
    ids = [f"call-{n}" for n in range(4000)]
    picked = {i for i in ids if sample_point("spot-check", "vapi", i) < 0.1}
    assert 0.085 < len(picked) / len(ids) < 0.115
    other = {i for i in ids if sample_point("other-rule", "vapi", i) < 0.1}
    assert picked != other
    assert all(sample_point("spot-check", "vapi", i) < 0.1 for i in picked)
    rules = ruleset({"sample": 0.1}, name="spot-check")
    calls = [vapi_call(id=i) for i in ids[:200]]
    assert {c.call_id for c in calls if rules.matching(c)} == picked & set(ids[:200])


def test_sample_reasons_say_in_or_out() -> None:
    rules = ruleset({"sample": 1.0})
    [match] = rules.evaluate(vapi_call())
    assert match.matched and match.reasons[0].startswith("sampled in (")
    ids = [f"c{n}" for n in range(50)]
    out = next(i for i in ids if sample_point("r", "vapi", i) >= 0.2)
    matched, reason = outcome({"sample": 0.2}, vapi_call(id=out))
    assert not matched and reason.startswith("sampled out (") and "≥ 0.2)" in reason


# -- the file: errors ------------------------------------------------------------------------
ERRORS = [
    ("rules: [{name: refund-failures, when: {duration: {min: abc}}}]",
     "rule 'refund-failures': when.duration.min: Input should be a valid number"),
    ("rules: [{name: a, when: {durration: {min: 3}}}]",
     "rule 'a': when.durration: unknown key; known: provider, success,"),
    ("rules: [{name: a, whenn: {}}]", "rule 'a': whenn: unknown key; known: name, description"),
    ("rules: []\nrulez: []", "rulez: unknown key; known: version, defaults, rules"),
    ("", "rules: Field required"),
    ("rules: [{name: a}, {name: b}, {name: a}]",
     "rule name 'a' is used by rules 1 and 3; names must be unique"),
    ("rules: [{name: 'has space'}]", "rule 'has space': name: String should match pattern"),
    ("rules: [{name: a}, {when: {success: false}}]", "rule 2: name: Field required"),
    ("rules: [{name: a, when: {success: maybe}}]", "rule 'a': when.success: Input should be"),
    ("rules: [{name: a, when: {sample: 0}}]", "rule 'a': when.sample: Input should be greater"),
    ("rules: [{name: a, when: {duration: {min: 5, max: 2}}}]",
     "rule 'a': when.duration: min 5 is above max 2"),
    ("rules: [{name: a, when: {cost: {}}}]", "rule 'a': when.cost: give min, max or both"),
    ("rules: [{name: a, when: {provider: zoom}}]", "rule 'a': when.provider.0: Input should be"),
    ("rules: [{name: a, when: {metadata: {}}}]", "rule 'a': when.metadata: give at least one"),
    ("rules: [{name: a, replay: {modle: x}}]", "rule 'a': replay.modle: unknown key; known: "),
    ("rules: [{name: a, replay: {runs: 0}}]", "rule 'a': replay.runs: Input should be greater"),
    ("rules: [{name: a, replay: {call: x}}]", "rule 'a': replay: call: a rule cannot set it"),
    ("rules: [{name: a, replay: {prompt_file: missing.txt}}]",
     "rule 'a': replay: prompt_file: cannot read the prompt file"),
    ("rules: [{name: a, replay: {prompt_file: p.txt, system_prompt: hi}}]",
     "rule 'a': replay: give prompt_file or system_prompt, not both"),
    ("rules: [{name: a, replay: {checks: [{type: nope}]}}]", "rule 'a': replay.checks.0:"),
    ("rules: [{name: a, notify: [{url: 'ftp://x'}]}]",
     "rule 'a': notify.0.url: a notification URL starts with http:// or https://"),
    ("defaults: {replay: {model: 3}}\nrules: [{name: a}]",
     "defaults.replay.model: Input should be a valid string"),
    ("version: 2\nrules: []", "version: Input should be 1"),
    ("- a\n- b", "expected a mapping of settings, got list"),
    ("rules: [{name: a", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[m[:40] for _, m in ERRORS])
def test_a_bad_file_is_one_error_naming_file_rule_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "p.txt").write_text("a prompt")
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_bad_override_fails_the_load_not_a_later_replay(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules: [{name: a, replay: {set: ['model.temprature=0.3']}}]")
    with pytest.raises(ConfigError, match=r"rule 'a': replay: --set: model\.temprature"):
        load_rules(path)
    (tmp_path / "over.yaml").write_text("model: {name: gpt-4o, bogus: 1}\n")
    path.write_text("rules: [{name: a, replay: {overrides_file: over.yaml}}]")
    with pytest.raises(ConfigError, match=r"rule 'a': replay: overrides: model\.bogus"):
        load_rules(path)
    path.write_text("rules: [{name: a, replay: {temperature: 5}}]")
    with pytest.raises(ConfigError, match=r"replay\.temperature: Input should be less"):
        load_rules(path)


# -- the file: what it reads -----------------------------------------------------------------
def test_files_are_read_relative_to_the_rules_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "config"
    (folder / "prompts").mkdir(parents=True)
    (folder / "prompts" / "candidate.txt").write_text("You are the candidate agent.")
    (folder / "over.yaml").write_text("model: {name: gpt-4o-mini}\n")
    (folder / "checks.yaml").write_text("checks:\n  - {type: tool_not_called, tool: refund}\n")
    (folder / "rules.yaml").write_text(
        "rules:\n  - name: a\n    replay:\n      prompt_file: prompts/candidate.txt\n"
        "      overrides_file: over.yaml\n      checks_file: checks.yaml\n      runs: 2\n")
    monkeypatch.chdir(tmp_path)  # not the rules file's folder
    rule = load_rules(Path("config/rules.yaml")).rules[0]
    assert rule.replay.prompt_file == (folder / "prompts" / "candidate.txt").resolve()
    request = replay_request(rule, vapi_call())
    assert request.system_prompt == "You are the candidate agent."
    assert request.agent_overrides().model is not None
    assert request.agent_overrides().model.name == "gpt-4o-mini"
    assert [c.type for c in request.checks] == ["tool_not_called"]
    assert rule.replay.summary() == ("prompt_file candidate.txt, overrides_file over.yaml, "
                                     "checks_file checks.yaml, runs 2")


def test_replay_request_is_the_rules_replay_for_the_call(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - name: a\n    replay:\n      system_prompt: Be brief.\n      mode: turn\n"
        "      model: gpt-4o-mini\n      seed: 7\n      set: ['model.max_tokens=200']\n"
        "      tool_mocks: {check_status: {status: shipped}}\n"
        "      checks: [{type: agent_ends_call}]\n")
    rule = load_rules(path).rules[0]
    vapi, retell = vapi_call(), retell_call()
    request = replay_request(rule, vapi)
    assert request.call.call_id == vapi.call_id and request.call.provider == "vapi"
    assert (request.mode, request.model, request.seed, request.runs) == (
        "turn", "gpt-4o-mini", 7, 1)
    assert request.system_prompt == "Be brief."
    assert request.agent_overrides().model.max_tokens == 200  # type: ignore[union-attr]
    assert request.tool_mocks == {"check_status": {"status": "shipped"}}
    other = replay_request(rule, retell)
    assert (other.call.call_id, other.call.provider) == (retell.call_id, "retell")
    request.checks.clear()  # each request is its own copy
    assert len(replay_request(rule, vapi).checks) == 1
    # the request survives a job payload round trip
    assert type(request).checked(**json.loads(other.model_dump_json())) == other


def test_defaults_are_laid_under_every_rule(tmp_path: Path) -> None:
    (tmp_path / "candidate.txt").write_text("Candidate prompt.")
    path = tmp_path / "rules.yaml"
    path.write_text(
        "defaults:\n  replay: {prompt_file: candidate.txt, runs: 3}\n"
        "  notify: [{url: 'https://hooks.slack.com/services/T0/B0/secret', format: slack}]\n"
        "rules:\n  - name: plain\n  - name: own\n"
        "    replay: {system_prompt: Own prompt., runs: 1}\n    notify: []\n")
    plain, own = load_rules(path).rules
    assert plain.replay.request.system_prompt == "Candidate prompt."
    assert plain.replay.request.runs == 3
    assert [t.format for t in plain.notify] == ["slack"]
    assert plain.notify_summary() == "slack → hooks.slack.com"  # never the secret path
    assert own.replay.request.system_prompt == "Own prompt." and own.replay.prompt_file is None
    assert own.replay.request.runs == 1 and own.notify == []


def test_the_configured_rules_file(tmp_path: Path) -> None:
    settings = Settings.for_home(tmp_path / "home")
    assert rules_path(settings) == tmp_path / "home" / "rules.yaml"
    assert rules_path(settings, tmp_path / "x.yaml") == tmp_path / "x.yaml"
    assert load_configured_rules(settings) is None
    with pytest.raises(ConfigError, match="cannot read the rules file"):
        load_configured_rules(settings, tmp_path / "missing.yaml")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "rules.yaml").write_text("rules: [{name: all}]")
    loaded = load_configured_rules(settings)
    assert loaded is not None and [r.name for r in loaded.rules] == ["all"]


def test_the_example_file_loads_and_flags_the_demo_call() -> None:
    rules = load_rules(EXAMPLES / "rules.yaml")
    assert [r.name for r in rules.rules] == [
        "failed-calls", "refund-requests", "unhappy-retell-callers", "low-qa-score",
        "flagged-vip-calls", "spot-check"]
    failed = rules.get("failed-calls")
    assert failed is not None
    assert failed.replay.request.system_prompt == (EXAMPLES / "candidate-prompt.txt").read_text()
    demo = vapi_payload.parse_call(json.loads((FIXTURES / "demo/demo-refund.json").read_text()))
    matched = [r.name for r in rules.matching(demo)]
    assert "failed-calls" in matched and "unhappy-retell-callers" not in matched
    # the scorecard fixture scored 70; the example flags 60 or below
    assert "low-qa-score" not in [r.name for r in rules.matching(vapi_call())]
    low = {k: {**v, "scoreNormalized": 55} for k, v in SCORECARDS.items()}
    assert "low-qa-score" in [r.name for r in rules.matching(vapi_report(scorecards=low))]


def test_every_condition_of_the_schema_is_evaluated() -> None:
    from voicereplay.pipeline.rules_conditions import _CHECKS
    from voicereplay.pipeline.rules_schema import When

    assert list(_CHECKS) == list(When.model_fields)
