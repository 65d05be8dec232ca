"""Declarative checks a user attaches to a replay: what each one says (the data, not its
evaluation, which is :mod:`voicereplay.compare.checks`).

They are plain data a stored replay, a request and a scenario file hold, so they live in core.
A checks file is YAML: a mapping with a ``checks`` list, or the bare list (the full syntax is in
:mod:`voicereplay.compare.checks`). :func:`load_checks` / :func:`parse_checks` turn it into
:data:`Check` models or one :class:`~voicereplay.errors.ConfigError` naming what is wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from voicereplay.errors import ConfigError

if TYPE_CHECKING:  # models.py holds checks in a Replay: no import of it at run time
    from voicereplay.models import ToolCall

__all__ = [
    "CHECK_ADAPTER",
    "CHECKS_ADAPTER",
    "CHECK_TYPES",
    "AgentDoesNotSay",
    "AgentEndsCall",
    "AgentSays",
    "ArgumentMatch",
    "Check",
    "CheckBase",
    "SayCheck",
    "ToolCheck",
    "LatencyP90Under",
    "LlmJudge",
    "NoDivergenceBefore",
    "SimilarityAtLeast",
    "ToolCalled",
    "ToolNotCalled",
    "load_checks",
    "parse_checks",
    "scalar_text",
    "same_value",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Only the fields a user gave (and ``type``), so a stored check reads back the same:
        ``equals: null`` stays a match for null, and unset matchers stay unset."""
        data = handler(self)
        if not isinstance(data, dict):
            return data
        keep = self.model_fields_set | {"type"}
        return {key: value for key, value in data.items() if key in keep}


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


class ArgumentMatch(_Strict):
    """How one tool-call argument must look: exactly one of the four. A plain YAML value
    (not a mapping) is ``equals``."""

    equals: Any = None
    regex: str | None = None
    contains: str | None = None
    present: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_value(cls, data: Any) -> Any:
        return data if isinstance(data, Mapping) else {"equals": data}

    @model_validator(mode="after")
    def _exactly_one(self) -> ArgumentMatch:
        if len(self.model_fields_set) != 1:
            raise ValueError("give exactly one of equals, regex, contains, present "
                             "(or a plain value to compare with)")
        if self.regex is not None:
            _compile(self.regex)
        return self

    @property
    def kind(self) -> str:
        return next(iter(self.model_fields_set))

    def describe(self, key: str) -> str:
        if self.kind == "regex":
            return f"{key}~/{self.regex}/"
        if self.kind == "contains":
            return f"{key} contains {self.contains!r}"
        if self.kind == "present":
            return f"{key} present" if self.present else f"{key} absent"
        return f"{key}={self.equals!r}"

    def mismatch(self, key: str, arguments: Mapping[str, Any]) -> str | None:
        """Why ``arguments`` do not match (None: they do)."""
        there = key in arguments and arguments[key] is not None
        value = arguments.get(key)
        if self.kind == "present":
            if there == bool(self.present):
                return None
            return f"{key} is missing" if self.present else f"{key} is {value!r}"
        if not there:
            return f"{key} is missing"
        if self.kind == "equals":
            ok = same_value(value, self.equals)
        elif self.kind == "regex":
            ok = _compile(str(self.regex)).search(scalar_text(value)) is not None
        else:
            ok = str(self.contains).lower() in scalar_text(value).lower()
        return None if ok else f"{key} is {value!r}, expected {self.describe(key)}"


class CheckBase(_Strict):
    type: str
    name: str | None = None

    def describe(self) -> str:  # pragma: no cover - every check overrides it
        return self.type

    @property
    def label(self) -> str:
        return self.name or self.describe()


class ToolCheck(CheckBase):
    tool: str = Field(min_length=1)
    turn: int | None = Field(default=None, ge=1)
    arguments: dict[str, ArgumentMatch] = Field(default_factory=dict)

    def _scope(self) -> str:
        parts = [f" in agent turn {self.turn}" if self.turn else ""]
        if self.arguments:
            parts.append(" with " + ", ".join(m.describe(k) for k, m in self.arguments.items()))
        return "".join(parts)

    def mismatches(self, call: ToolCall) -> list[str]:
        if call.raw_arguments is not None and not call.arguments and self.arguments:
            return [f"its arguments are not JSON: {call.raw_arguments!r}"]
        found = (m.mismatch(k, call.arguments) for k, m in self.arguments.items())
        return [m for m in found if m is not None]


class ToolCalled(ToolCheck):
    type: Literal["tool_called"] = "tool_called"

    def describe(self) -> str:
        return f"{self.tool} is called{self._scope()}"


class ToolNotCalled(ToolCheck):
    type: Literal["tool_not_called"] = "tool_not_called"

    def describe(self) -> str:
        return f"{self.tool} is not called{self._scope()}"


class SayCheck(CheckBase):
    phrase: str | None = None
    regex: str | None = None
    turn: int | None = Field(default=None, ge=1)

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @model_validator(mode="after")
    def _phrase_or_regex(self) -> SayCheck:
        if (self.phrase is None) == (self.regex is None):
            raise ValueError("give either phrase or regex (one of them)")
        if self.phrase is not None and not self.phrase.strip():
            raise ValueError("phrase is empty")
        return self

    def pattern(self) -> re.Pattern[str]:
        if self.regex is not None:
            return _compile(self.regex)
        words = str(self.phrase).split()
        return re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)

    def _what(self) -> str:
        what = f"/{self.regex}/" if self.regex is not None else repr(self.phrase)
        return what + (f" in agent turn {self.turn}" if self.turn else "")


class AgentSays(SayCheck):
    type: Literal["agent_says"] = "agent_says"

    def describe(self) -> str:
        return f"agent says {self._what()}"


class AgentDoesNotSay(SayCheck):
    type: Literal["agent_does_not_say"] = "agent_does_not_say"

    def describe(self) -> str:
        return f"agent does not say {self._what()}"


class LatencyP90Under(CheckBase):
    type: Literal["latency_p90_under"] = "latency_p90_under"
    seconds: float = Field(gt=0)

    def describe(self) -> str:
        return f"p90 response latency under {self.seconds:g} s"


class AgentEndsCall(CheckBase):
    type: Literal["agent_ends_call"] = "agent_ends_call"

    def describe(self) -> str:
        return "agent ends the call"


class NoDivergenceBefore(CheckBase):
    type: Literal["no_divergence_before"] = "no_divergence_before"
    turn: int = Field(ge=1)

    def describe(self) -> str:
        return f"no divergence before agent turn {self.turn}"


class SimilarityAtLeast(CheckBase):
    type: Literal["similarity_at_least"] = "similarity_at_least"
    value: float = Field(ge=0, le=1)

    def describe(self) -> str:
        return f"similarity at least {self.value:g}"


class LlmJudge(CheckBase):
    type: Literal["llm_judge"] = "llm_judge"
    rubric: str = Field(min_length=1)
    model: str | None = None
    base_url: str | None = None
    # used for this run only: never serialized (report.json, a stored replay, a job payload)
    api_key: str | None = Field(default=None, exclude=True, repr=False)

    def describe(self) -> str:
        rubric = " ".join(self.rubric.split())
        return f"LLM judge: {rubric if len(rubric) <= 70 else rubric[:69] + '…'}"


Check = Annotated[
    ToolCalled | ToolNotCalled | AgentSays | AgentDoesNotSay | LatencyP90Under | AgentEndsCall
    | NoDivergenceBefore | SimilarityAtLeast | LlmJudge,
    Field(discriminator="type"),
]
CHECK_TYPES: dict[str, type[CheckBase]] = {
    cls.model_fields["type"].default: cls
    for cls in (ToolCalled, ToolNotCalled, AgentSays, AgentDoesNotSay, LatencyP90Under,
                AgentEndsCall, NoDivergenceBefore, SimilarityAtLeast, LlmJudge)
}
CHECK_ADAPTER: TypeAdapter[Check] = TypeAdapter(Check)
CHECKS_ADAPTER: TypeAdapter[list[Check]] = TypeAdapter(list[Check])  # e.g. for a JSON Schema


# ---- loading ------------------------------------------------------------------------------

def load_checks(path: Path) -> list[Check]:
    """The checks in the YAML file at ``path``; a :class:`ConfigError` names what is wrong."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the checks file: "
                          f"{exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: the checks file is not UTF-8 text") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from exc
    return parse_checks(data, source)


def parse_checks(data: Any, source: str) -> list[Check]:
    """Checks from parsed YAML/JSON: ``{"checks": [...]}`` or the bare list."""
    if isinstance(data, Mapping):
        unknown = [str(k) for k in data if k != "checks"]
        if unknown:
            raise ConfigError(f"{source}: unknown top-level key {unknown[0]!r}; the file holds "
                              "'checks' (a list) or is the list itself")
        if "checks" not in data:
            raise ConfigError(f"{source}: no 'checks' list")
        data = data["checks"]
        if data is None:
            return []
    if not isinstance(data, list):
        raise ConfigError(f"{source}: expected a list of checks (or a mapping with a 'checks' "
                          f"list), got {_kind(data)}")
    return [_parse_one(item, f"{source}: check {number}")
            for number, item in enumerate(data, start=1)]


def _parse_one(item: Any, where: str) -> Check:
    valid = ", ".join(CHECK_TYPES)
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a mapping with a 'type', got {_kind(item)}")
    kind = item.get("type")
    if kind is None:
        raise ConfigError(f"{where}: missing 'type'; valid types are {valid}")
    cls = CHECK_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConfigError(f"{where}: unknown type {kind!r}; valid types are {valid}")
    try:
        return CHECK_ADAPTER.validate_python(dict(item))
    except ValidationError as exc:
        errors = sorted(exc.errors(include_url=False),  # an unknown field explains the rest
                        key=lambda e: e.get("type") != "extra_forbidden")
        problems = "; ".join(_problem(error, cls) for error in errors)
        raise ConfigError(f"{where} ({kind}): {problems}") from None


def _fields(cls: type[CheckBase]) -> list[str]:
    names = [n for n in cls.model_fields if n not in ("type", "name")]
    return [*names, "name"]


def _problem(error: Mapping[str, Any], cls: type[CheckBase]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    if loc and loc[0] == cls.model_fields["type"].default:
        loc = loc[1:]  # the union's tag
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        if len(loc) == 1:
            return f"unknown field {loc[0]!r}; fields are {', '.join(_fields(cls))}"
        return (f"{'.'.join(loc[:-1])}: unknown key {loc[-1]!r}; use one of equals, regex, "
                "contains, present")
    if kind == "missing":
        return f"missing field {'.'.join(loc)!r}"
    field = ".".join(loc)
    shown = ""
    if kind.endswith("_type") or kind.endswith("_parsing") or kind in (
            "greater_than", "greater_than_equal", "less_than_equal", "string_too_short"):
        shown = f" (got {_short(error.get('input'))})"
    return f"{field}: {message}{shown}" if field else f"{message}{shown}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- values -------------------------------------------------------------------------------

def scalar_text(value: Any) -> str:
    """A value as text for comparing: scalars as YAML/JSON would write them."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def same_value(value: Any, expected: Any) -> bool:
    if isinstance(value, Mapping) and isinstance(expected, Mapping):
        return value.keys() == expected.keys() and all(
            same_value(value[k], expected[k]) for k in value)
    if isinstance(value, list) and isinstance(expected, list):
        return len(value) == len(expected) and all(map(same_value, value, expected))
    return scalar_text(value) == scalar_text(expected)
