"""The shape of a flag-rules file (``rules.yaml``): what a rule is made of, checked strictly.

Every model forbids unknown keys, so a typo is an error, not a rule that silently matches
everything. The file format, its conditions and their meaning are documented in
:mod:`voicereplay.pipeline.rules` (which loads and evaluates a file) and in the README's
"Flag rules" section; this module holds the models:

- :class:`When` — the conditions of a rule (all given must hold; a list means any of);
- :class:`Range` — an inclusive ``{min, max}`` for duration, cost and scorecard scores;
- :class:`ReplaySpec` — what to run: :class:`~voicereplay.pipeline.request.ReplayRequest`
  fields except ``call`` and ``report``, plus ``prompt_file`` / ``overrides_file`` /
  ``checks_file`` read (relative to the rules file) while the file is validated, so a missing
  prompt or an override that does not fit fails the file, not a replay hours later;
- :class:`Rule` and :class:`Defaults` (``replay`` and ``notify`` shared by every rule).

Validation context: ``{"base": Path}`` — the folder relative paths are read from (the rules
file's folder; the current folder without it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from voicereplay.compare.checks import load_checks
from voicereplay.errors import VoiceReplayError
from voicereplay.models import ProviderName
from voicereplay.pipeline.notify import NotifyTarget
from voicereplay.pipeline.request import CallRef, ReplayRequest, read_prompt, read_yaml

__all__ = ["Defaults", "Range", "ReplaySpec", "Rule", "When"]

RULE_NAME = r"^[A-Za-z0-9_.-]+$"
#: the file keys of a ``replay`` section, each an alternative to an inline field
FILE_KEYS = {"prompt_file": "system_prompt", "overrides_file": "overrides",
             "checks_file": "checks"}
#: ReplayRequest fields a rule may not set: the call is the one that matched; reports are
#: the triggered replay's defaults
NOT_IN_RULES = ("call", "report")
PLACEHOLDER = CallRef(call_id="*")  # the template request's call until a call matches


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _listify(value: Any) -> Any:
    """One value or a list of them (``sentiment: negative`` or ``[negative, neutral]``)."""
    return [value] if isinstance(value, str | int | float) and not isinstance(value, bool) \
        else value


AnyOf = Annotated[list[str], BeforeValidator(_listify), Field(min_length=1)]


class Range(_Strict):
    """Inclusive bounds: ``min`` ≤ value ≤ ``max``; either may be left out."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _sane(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        for bound in (self.min, self.max):
            if bound is not None and not math.isfinite(bound):
                raise ValueError("bounds must be finite numbers")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self


class When(_Strict):
    """A rule's conditions: every one given must hold (AND); a list means any of its items.

    A condition whose data the call lacks (no success evaluation yet, no cost) does not hold.
    No conditions at all: the rule matches every call.
    """

    provider: Annotated[list[ProviderName], BeforeValidator(_listify),
                        Field(min_length=1)] | None = None
    success: bool | None = Field(
        default=None, description="the provider's success evaluation (Vapi "
                                  "analysis.successEvaluation, Retell call_successful)")
    structured_data: dict[str, Any] | None = Field(
        default=None, description="field (dotted path) → value: Vapi analysis.structuredData, "
                                  "Retell call_analysis.custom_analysis_data")
    structured_outputs: dict[str, Any] | None = Field(
        default=None, description="Vapi artifact.structuredOutputs: output name or id "
                                  "(then an optional dotted path into its result) → value")
    scorecards: dict[str, Range] | None = Field(
        default=None, description="Vapi artifact.scorecards: scorecard name or id → range of "
                                  "its normalized score (0–100)")
    sentiment: AnyOf | None = Field(default=None, description="user sentiment, any of "
                                                              "(case-insensitive)")
    ended_reason: AnyOf | None = Field(
        default=None, description="any of; shell globs allowed (pipeline-error-*)")
    duration: Range | None = Field(default=None, description="seconds")
    cost: Range | None = Field(default=None, description="USD")
    agent: AnyOf | None = Field(default=None, description="Vapi assistant / Retell agent id")
    metadata: dict[str, Any] | None = Field(
        default=None, description="key (dotted path) → value, in the call's metadata")
    tags: AnyOf | None = Field(default=None, description="any of metadata.tags")
    customer_number: AnyOf | None = None
    flagged: bool | None = Field(default=None, description="flagged by hand (or not)")
    sample: float | None = Field(default=None, gt=0, le=1,
                                 description="fraction of calls, decided per call id")

    @field_validator("structured_data", "structured_outputs", "scorecards", "metadata")
    @classmethod
    def _not_empty(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not value:
            raise ValueError("give at least one field, or leave the condition out")
        return value

    def given(self) -> list[str]:
        """The conditions set, in the order they are evaluated."""
        return [name for name in type(self).model_fields if getattr(self, name) is not None]

    def summary(self) -> str:
        """The conditions on one line: ``provider vapi and success false and duration ≥ 30 s``."""
        said = [_condition(name, getattr(self, name)) for name in self.given()]
        return " and ".join(said) if said else "every call"


class ReplaySpec(_Strict):
    """What a rule replays: a :class:`ReplayRequest` template (its ``call`` a placeholder)
    and the files it was read from (absolute paths)."""

    prompt_file: Path | None = None
    overrides_file: Path | None = None
    checks_file: Path | None = None
    request: ReplayRequest

    @model_validator(mode="before")
    @classmethod
    def _read_files(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a mapping of replay settings, got "
                             f"{type(data).__name__}")
        if "request" in data and isinstance(data["request"], ReplayRequest):
            return data  # built in code, not read from a file
        fields = dict(data)
        for key in NOT_IN_RULES:
            if key in fields:
                raise ValueError(f"{key}: a rule cannot set it (the call is the one that "
                                 "matched; reports use the defaults)")
        base = Path((info.context or {}).get("base", "."))
        files: dict[str, Path] = {}
        for key, inline in FILE_KEYS.items():
            if fields.get(key) is None:
                fields.pop(key, None)
                continue
            if fields.get(inline) is not None:
                raise ValueError(f"give {key} or {inline}, not both")
            raw = fields.pop(key)
            if not isinstance(raw, str | Path):
                raise ValueError(f"{key}: expected a file path, got {type(raw).__name__}")
            path = files[key] = (base / Path(raw).expanduser()).resolve()
            try:
                fields[inline] = _read(key, path)
            except VoiceReplayError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return {**files, "request": {"call": PLACEHOLDER, **fields}}

    @model_validator(mode="after")
    def _overrides_fit(self) -> ReplaySpec:
        try:
            self.request.agent_overrides()
        except VoiceReplayError as exc:
            raise ValueError(str(exc)) from None
        return self

    def summary(self) -> str:
        """What the replay changes, on one line (file names, not their contents)."""
        said = [f"{key} {path.name}" for key, path in
                (("prompt_file", self.prompt_file), ("overrides_file", self.overrides_file),
                 ("checks_file", self.checks_file)) if path is not None]
        for key, value in self.request.model_dump(
                mode="json", exclude_defaults=True, exclude={"call", "report"}).items():
            if key == "system_prompt" and self.prompt_file is None:
                said.append("inline system_prompt")
            elif key == "checks" and self.checks_file is None:
                said.append(f"{len(value)} check(s)")
            elif key == "overrides" and self.overrides_file is None:
                said.append("overrides of " + ", ".join(value))
            elif key in ("set", "tool_mocks"):
                said.append(f"{key} " + ", ".join(value))
            elif key not in ("system_prompt", "checks", "overrides"):
                said.append(f"{key} {value}")
        return ", ".join(said) if said else "the call's own agent, unchanged"


def _condition(name: str, value: Any) -> str:
    if isinstance(value, Range):
        return f"{name} {_bounds(value)}" + {"duration": " s", "cost": " USD"}.get(name, "")
    if isinstance(value, list):
        return f"{name} " + "|".join(map(str, value))
    if isinstance(value, dict):
        return f"{name} " + ", ".join(
            f"{k} {_bounds(v)}" if isinstance(v, Range)
            else f"{k}=" + ("|".join(map(str, v)) if isinstance(v, list) else str(v))
            for k, v in value.items())
    if name == "flagged":
        return "flagged" if value else "not flagged"
    if name == "sample":
        return f"sample {value:.0%}" if value * 100 == int(value * 100) else f"sample {value}"
    return f"{name} {str(value).lower() if isinstance(value, bool) else value}"


def _bounds(bounds: Range) -> str:
    if bounds.min is not None and bounds.max is not None:
        return f"{bounds.min:g}–{bounds.max:g}"
    return f"≥ {bounds.min:g}" if bounds.min is not None else f"≤ {bounds.max:g}"


def _read(key: str, path: Path) -> Any:
    if key == "prompt_file":
        return read_prompt(path)
    if key == "overrides_file":
        return read_yaml(path, "overrides")
    return load_checks(path)


def _empty_replay() -> ReplaySpec:
    return ReplaySpec.model_validate({})


class Defaults(_Strict):
    """``replay`` and ``notify`` every rule starts from: a rule's own ``replay`` keys replace
    the default's (``prompt_file`` also replaces ``system_prompt`` and so on), and its own
    ``notify`` list replaces the default list."""

    replay: ReplaySpec = Field(default_factory=_empty_replay)
    notify: list[NotifyTarget] = Field(default_factory=list)


class Rule(_Strict):
    """One rule: when a call matches, which replay to run and where to tell."""


    name: str = Field(pattern=RULE_NAME, max_length=100,
                      description="unique in the file; part of the replay's job key")
    description: str | None = None
    when: When = Field(default_factory=When)
    replay: ReplaySpec = Field(default_factory=_empty_replay)
    notify: list[NotifyTarget] = Field(default_factory=list)

    def notify_summary(self) -> str:
        """Where the outcome goes: format and host only (webhook URLs hold secrets)."""
        return ", ".join(f"{t.format} → {urlsplit(t.url).hostname}" for t in self.notify) \
            or "nowhere"


def merge_defaults(defaults: Any, rule: Any) -> Any:
    """A raw rule (as read from YAML) with the raw ``defaults`` laid under it."""
    if not isinstance(defaults, Mapping) or not isinstance(rule, Mapping):
        return rule
    merged = dict(rule)
    base = defaults.get("replay")
    own = rule.get("replay", {})
    if isinstance(base, Mapping) and isinstance(own, Mapping):
        shared = {k: v for k, v in base.items() if k not in own}
        for key, inline in FILE_KEYS.items():  # a rule's inline prompt replaces a default file
            if key in own or inline in own:
                shared.pop(key, None)
                shared.pop(inline, None)
        merged["replay"] = {**shared, **own}
    if "notify" not in rule and "notify" in defaults:
        merged["notify"] = defaults["notify"]
    return merged
