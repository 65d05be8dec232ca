"""Snapshots: content ids, overrides (user-written, so strict), and field-level diffs."""

from __future__ import annotations

import pytest

from voicereplay.errors import OverrideError
from voicereplay.snapshot import (
    AgentSnapshot,
    ModelConfig,
    Overrides,
    SnapshotSource,
    ToolSpec,
    diff,
    substitute_variables,
)


def _snapshot(**kw: object) -> AgentSnapshot:
    base: dict[str, object] = {
        "system_prompt": "You are Sam at {{company}}.".replace("{{company}}", "Acme"),
        "first_message": "Hi, this is Sam.",
        "model": ModelConfig(provider="openai", name="gpt-4o-mini", temperature=0.3,
                             max_tokens=250),
        "tools": (ToolSpec(name="check_status", parameters={"type": "object", "properties": {
            "order_id": {"type": "string"}}}),),
        "variables": {"company": "Acme"},
        "source": SnapshotSource(provider="vapi", agent_id="a1", call_id="c1"),
    }
    base.update(kw)
    return AgentSnapshot.model_validate(base)


def test_id_is_content_hash_and_ignores_provenance() -> None:
    a = _snapshot()
    b = _snapshot(source=SnapshotSource(provider="vapi", agent_id="a1", call_id="other-call"))
    assert a.id == b.id
    assert len(a.id) == 16
    assert _snapshot(system_prompt="different").id != a.id


def test_snapshot_is_frozen() -> None:
    snap = _snapshot()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on assignment
        snap.system_prompt = "x"  # type: ignore[misc]


def test_overrides_give_a_new_snapshot_and_keep_the_old() -> None:
    snap = _snapshot()
    new = snap.apply(Overrides.parse({"model": {"temperature": 0.0, "seed": 7},
                                      "system_prompt": "Be brief at {{company}}."}))
    assert snap.model.temperature == 0.3
    assert new.model.temperature == 0.0 and new.model.seed == 7
    assert new.model.name == "gpt-4o-mini"  # untouched fields survive the merge
    assert new.system_prompt == "Be brief at Acme."  # the call's variables apply
    assert new.source.parent_id == snap.id
    assert new.id != snap.id


def test_empty_overrides_return_the_same_snapshot() -> None:
    snap = _snapshot()
    assert snap.apply(Overrides()) is snap


def test_overrides_reject_unknown_fields_with_a_clear_message() -> None:
    with pytest.raises(OverrideError, match="temprature"):
        Overrides.parse({"model": {"temprature": 0.1}})
    with pytest.raises(OverrideError, match="model.temperature"):
        Overrides.parse({"model": {"temperature": 9}})


def test_set_pairs_parse_json_values_and_dotted_keys() -> None:
    ov = Overrides.from_pairs(["model.temperature=0.2", "model.name=gpt-4.1",
                               "turn_taking.end_call_phrases=[\"bye\"]"])
    snap = _snapshot().apply(ov)
    assert snap.model.temperature == 0.2
    assert snap.model.name == "gpt-4.1"
    assert snap.turn_taking.end_call_phrases == ("bye",)
    with pytest.raises(OverrideError, match="key=value"):
        Overrides.from_pairs(["model.temperature"])


def test_set_pairs_build_on_a_base() -> None:
    base = Overrides.parse({"system_prompt": "p"})
    ov = Overrides.from_pairs(["model.seed=3"], base=base)
    assert ov.system_prompt == "p" and ov.model is not None and ov.model.seed == 3


def test_diff_lists_field_level_changes() -> None:
    a = _snapshot()
    b = a.apply(Overrides.parse({"model": {"temperature": 0.0},
                                 "tools": [{"name": "check_status"},
                                           {"name": "issue_refund"}]}))
    changes = {c.path: (c.before, c.after) for c in diff(a, b)}
    assert changes["model.temperature"] == (0.3, 0.0)
    assert changes["tools[issue_refund].name"] == (None, "issue_refund")
    assert changes["tools[check_status].parameters.properties.order_id.type"] == ("string", None)
    assert "source.parent_id" not in changes
    assert diff(a, a) == []


def test_substitute_variables_leaves_unknown_names() -> None:
    text = "Hi {{ name }}, from {{company}} ({{unknown}})"
    assert substitute_variables(text, {"name": "Jo", "company": "Acme"}) == (
        "Hi Jo, from Acme ({{unknown}})")
    assert substitute_variables(None, {"a": 1}) is None


def test_tool_openai_schema() -> None:
    tool = ToolSpec(name="t", description="d")
    assert tool.openai_schema() == {"type": "function", "function": {
        "name": "t", "description": "d", "parameters": {"type": "object", "properties": {}}}}
