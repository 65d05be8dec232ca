"""Flag rules: which calls trigger a replay, what it runs, and where the outcome is posted.

A rules file is YAML (``$VOICEREPLAY_HOME/rules.yaml``, or a path given with ``--rules``)::

    version: 1
    defaults:                        # optional: replay/notify every rule starts from
      notify: [{url: "https://hooks.slack.com/services/…", format: slack}]
    rules:
      - name: refund-failures        # unique, [A-Za-z0-9_.-]+ (used in job keys)
        description: failed calls that mention a refund
        when:                        # every condition given must hold; a list means any of
          provider: vapi
          success: false
          structured_data: {intent: refund}
          duration: {min: 30}
        replay:                      # ReplayRequest fields except call and report
          prompt_file: candidate.txt # relative to this file, read when the file is loaded
          model: gpt-4o-mini
          runs: 3
          checks_file: refund-checks.yaml
        notify:
          - {url: "https://ci.example.com/hook", format: json}

Conditions (``when``), each optional; one the call has no data for does not hold:

- ``provider``: ``vapi`` / ``retell`` (or a list).
- ``success``: the provider's pass/fail verdict — Vapi ``analysis.successEvaluation``
  (``"true"``/``"false"``; a numeric rubric score is not a verdict), Retell
  ``call_analysis.call_successful``.
- ``structured_data``: field → value in Vapi ``analysis.structuredData`` / Retell
  ``call_analysis.custom_analysis_data``; dotted paths reach into objects; a list of values
  means any of them; scalars compare as text (``"true"`` equals ``true``, ``"3"`` equals 3).
- ``structured_outputs`` (Vapi): output name or id → value of its ``result`` in
  ``artifact.structuredOutputs``; ``"Support Ticket.issue.category"`` reaches into a result.
- ``scorecards`` (Vapi): scorecard name or id → ``{min, max}`` of its ``scoreNormalized``
  (0–100) in ``artifact.scorecards``.
- ``sentiment``: Retell ``user_sentiment``, any of, case-insensitive (Vapi reports none: use
  ``structured_data`` or ``structured_outputs``).
- ``ended_reason``: any of, shell globs allowed (``pipeline-error-*``); Vapi ``endedReason``,
  Retell ``disconnection_reason``.
- ``duration`` (seconds), ``cost`` (USD): ``{min, max}``, inclusive.
- ``agent``: Vapi assistant id / Retell agent id, any of.
- ``metadata``: key (dotted path) → value in the call's metadata, as ``structured_data``.
- ``tags``: any of the strings in ``metadata.tags``.
- ``customer_number``: any of (spaces, dashes, dots and brackets ignored).
- ``flagged``: the call was flagged by hand (``true``) or not (``false``).
- ``sample``: a fraction of calls (0 < sample ≤ 1), decided by sha256 of the rule name,
  provider and call id, so a redelivered webhook decides the same way every time.

A rule without conditions matches every call. :meth:`RuleSet.evaluate` says for every rule
whether it matched and why, condition by condition; :func:`replay_request` builds the
:class:`~voicereplay.pipeline.request.ReplayRequest` of a rule for a call. The schema lives
in :mod:`voicereplay.pipeline.rules_schema`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from voicereplay.config import Settings
from voicereplay.errors import ConfigError
from voicereplay.models import Call
from voicereplay.pipeline.notify import NotifyTarget
from voicereplay.pipeline.request import CallRef, ReplayRequest, read_yaml
from voicereplay.pipeline.rules_conditions import Condition, evaluate_when, sample_point
from voicereplay.pipeline.rules_schema import (
    FILE_KEYS,
    NOT_IN_RULES,
    Defaults,
    Range,
    Rule,
    When,
    merge_defaults,
)

__all__ = ["Condition", "Rule", "RuleMatch", "RuleSet", "load_configured_rules", "load_rules",
           "replay_request", "rules_path", "sample_point"]

RULES_FILE = "rules.yaml"


@dataclass(frozen=True)
class RuleMatch:
    """Whether ``rule`` matched a call, and why (one :class:`Condition` per condition)."""

    rule: Rule
    matched: bool
    conditions: tuple[Condition, ...]

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.conditions]

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule.name, "matched": self.matched,
                "conditions": [{"condition": c.name, "held": c.held, "reason": c.reason}
                               for c in self.conditions]}


class RuleSet(BaseModel):
    """A validated rules file (see the module docs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = Field(default=1, description="the file format's version")
    defaults: Defaults | None = None
    rules: list[Rule]

    @model_validator(mode="before")
    @classmethod
    def _lay_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("rules"), list) \
                and data.get("defaults") is not None:
            return {**data, "rules": [merge_defaults(data["defaults"], rule)
                                      for rule in data["rules"]]}
        return data

    @model_validator(mode="after")
    def _unique_names(self) -> RuleSet:
        seen: dict[str, int] = {}
        for number, rule in enumerate(self.rules, start=1):
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used by rules {seen[rule.name]} "
                                 f"and {number}; names must be unique")
            seen[rule.name] = number
        return self

    def get(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def evaluate(self, call: Call, *, flagged: bool = False) -> list[RuleMatch]:
        """Every rule, in file order, with whether it matched ``call`` and why."""
        return [evaluate_rule(rule, call, flagged=flagged) for rule in self.rules]

    def matching(self, call: Call, flagged: bool = False) -> list[Rule]:
        """The rules ``call`` matches, in file order."""
        return [m.rule for m in self.evaluate(call, flagged=flagged) if m.matched]


# -- loading ---------------------------------------------------------------------------------
def rules_path(settings: Settings, explicit: Path | None = None) -> Path:
    """The rules file: ``explicit``, else ``VOICEREPLAY_RULES`` (``settings.rules_file``),
    else ``$VOICEREPLAY_HOME/rules.yaml``."""
    return explicit or settings.rules_file or settings.home / RULES_FILE


def load_configured_rules(settings: Settings, explicit: Path | None = None) -> RuleSet | None:
    """The configured rules; None when none is named and the default file does not exist (a
    named file that is missing is a ConfigError)."""
    path = rules_path(settings, explicit)
    if explicit is None and settings.rules_file is None and not path.exists():
        return None
    return load_rules(path)


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file; anything wrong is one ConfigError naming the file,
    the rule and the field."""
    data = read_yaml(path, "rules")
    try:
        return RuleSet.model_validate(data, context={"base": Path(path).parent})
    except ValidationError as exc:
        raise _error(path, data, exc) from None


def _error(path: Path, data: Mapping[str, Any], exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    loc = list(first["loc"])
    parts = [str(path)]
    section: str | None = None
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        section = "rule"
        raw = data["rules"][loc[1]]
        name = raw.get("name") if isinstance(raw, Mapping) else None
        parts.append(f"rule {name!r}" if isinstance(name, str) and name
                     else f"rule {loc[1] + 1}")
        loc = loc[2:]
    if "replay" in loc and loc[loc.index("replay") + 1:][:1] == ["request"]:
        loc.remove("request")  # the template request is the replay section itself
    if loc:
        parts.append(".".join(str(p) for p in loc))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        known = known_keys(_section(loc[:-1], section))
        message = "unknown key" + (f"; known: {', '.join(known)}" if known else "")
    return ConfigError(": ".join(parts + [message]))


def known_keys(section: str | None) -> list[str]:
    """The keys a section of the file takes: ``None`` (the top level), ``rule``, ``when``,
    ``replay``, ``defaults``, ``notify``, ``range``; [] for anything else."""
    models: dict[str | None, type[BaseModel]] = {
        None: RuleSet, "rule": Rule, "when": When, "defaults": Defaults,
        "notify": NotifyTarget, "range": Range}
    if section == "replay":
        return sorted([*FILE_KEYS, *(k for k in ReplayRequest.model_fields
                                     if k not in NOT_IN_RULES)])
    model = models.get(section)
    return list(model.model_fields) if model is not None else []


def _section(loc: list[Any], section: str | None) -> str | None:
    """Which part of the file ``loc`` (the path of a mapping) is, for :func:`known_keys`."""
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return section
    last = names[-1]
    if last in ("duration", "cost") or (len(names) >= 2 and names[-2] == "scorecards"):
        return "range"
    return last if last in ("when", "replay", "defaults", "notify") else "?"


def replay_request(rule: Rule, call: Call) -> ReplayRequest:
    """The replay ``rule`` runs for ``call``."""
    return rule.replay.request.model_copy(
        deep=True, update={"call": CallRef(call_id=call.call_id, provider=call.provider)})


# -- evaluation ------------------------------------------------------------------------------
def evaluate_rule(rule: Rule, call: Call, *, flagged: bool = False) -> RuleMatch:
    when = rule.when
    names = when.given()
    if not names:
        return RuleMatch(rule, True, (Condition("always", True,
                                                "no conditions: every call matches"),))
    conditions = evaluate_when(when, call, flagged=flagged, rule_name=rule.name)
    return RuleMatch(rule, all(c.held for c in conditions), conditions)


