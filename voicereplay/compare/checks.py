"""Declarative checks a user attaches to a replay, and their evaluation.

A checks file is YAML: a mapping with a ``checks`` list, or the bare list::

    checks:
      - type: tool_called              # a call to the tool (optionally in one agent turn,
        tool: check_status             #   with arguments that match)
        turn: 4
        arguments:
          order_id: "4417"             # a plain value: equal (scalars compare as text)
          reason: {regex: "status|where"}   # or {contains: "..."}, {present: true}, {equals: V}
      - type: tool_not_called          # no call to the tool that matches (turn/arguments
        tool: issue_refund             #   optional, as above)
      - type: agent_says               # phrase (case- and whitespace-insensitive) or regex;
        phrase: "order number"         #   optional turn
      - type: agent_does_not_say
        regex: "refund(ed)?"
      - type: latency_p90_under        # the replay's p90 response latency, seconds
        seconds: 1.5
      - type: agent_ends_call
      - type: no_divergence_before     # the first divergence (if any) is at this turn or later
        turn: 4
      - type: similarity_at_least      # mean agent-turn similarity to the baseline
        value: 0.6
      - type: llm_judge
        rubric: "The agent never issues a refund the caller did not ask for."
        model: local                   # optional: local, a .gguf path or a model name;
                                       #   base_url and api_key optional

Every check takes an optional ``name``. Turns are **agent turn numbers of the replay** (the
N-th agent reply, the opening is 1; see :mod:`voicereplay.turns`). Regular expressions
are Python's, searched case-insensitively (``(?-i:...)`` makes a part case-sensitive);
``contains`` is case-insensitive too; ``present: false`` means the argument is absent or null.

:func:`evaluate` gives every check a :class:`~voicereplay.compare.model.CheckResult` — pass,
fail, or error when it cannot be evaluated (e.g. an ``llm_judge`` with no judge model) — and
never raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from voicereplay import turns as turn_units
from voicereplay.compare.judge import Judge, format_tool_call
from voicereplay.compare.model import CheckResult, Comparison, Evidence
from voicereplay.errors import ConfigError, VoiceReplayError
from voicereplay.models import Call, Replay, ToolCall, Turn

if TYPE_CHECKING:
    from voicereplay.snapshot import AgentSnapshot

__all__ = [
    "CHECK_TYPES",
    "AgentEndsCall",
    "AgentDoesNotSay",
    "AgentSays",
    "ArgumentMatch",
    "Check",
    "LatencyP90Under",
    "LlmJudge",
    "NoDivergenceBefore",
    "SimilarityAtLeast",
    "ToolCalled",
    "ToolNotCalled",
    "evaluate",
    "load_checks",
    "parse_checks",
]

_EXCERPT = 200  # characters of a reply shown as evidence


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


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
            ok = _same(value, self.equals)
        elif self.kind == "regex":
            ok = _compile(str(self.regex)).search(_text(value)) is not None
        else:
            ok = str(self.contains).lower() in _text(value).lower()
        return None if ok else f"{key} is {value!r}, expected {self.describe(key)}"


class _Check(_Strict):
    type: str
    name: str | None = None

    def describe(self) -> str:  # pragma: no cover - every check overrides it
        return self.type

    @property
    def label(self) -> str:
        return self.name or self.describe()


class _ToolCheck(_Check):
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


class ToolCalled(_ToolCheck):
    type: Literal["tool_called"] = "tool_called"

    def describe(self) -> str:
        return f"{self.tool} is called{self._scope()}"


class ToolNotCalled(_ToolCheck):
    type: Literal["tool_not_called"] = "tool_not_called"

    def describe(self) -> str:
        return f"{self.tool} is not called{self._scope()}"


class _SayCheck(_Check):
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
    def _phrase_or_regex(self) -> _SayCheck:
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


class AgentSays(_SayCheck):
    type: Literal["agent_says"] = "agent_says"

    def describe(self) -> str:
        return f"agent says {self._what()}"


class AgentDoesNotSay(_SayCheck):
    type: Literal["agent_does_not_say"] = "agent_does_not_say"

    def describe(self) -> str:
        return f"agent does not say {self._what()}"


class LatencyP90Under(_Check):
    type: Literal["latency_p90_under"] = "latency_p90_under"
    seconds: float = Field(gt=0)

    def describe(self) -> str:
        return f"p90 response latency under {self.seconds:g} s"


class AgentEndsCall(_Check):
    type: Literal["agent_ends_call"] = "agent_ends_call"

    def describe(self) -> str:
        return "agent ends the call"


class NoDivergenceBefore(_Check):
    type: Literal["no_divergence_before"] = "no_divergence_before"
    turn: int = Field(ge=1)

    def describe(self) -> str:
        return f"no divergence before agent turn {self.turn}"


class SimilarityAtLeast(_Check):
    type: Literal["similarity_at_least"] = "similarity_at_least"
    value: float = Field(ge=0, le=1)

    def describe(self) -> str:
        return f"similarity at least {self.value:g}"


class LlmJudge(_Check):
    type: Literal["llm_judge"] = "llm_judge"
    rubric: str = Field(min_length=1)
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None

    def describe(self) -> str:
        rubric = " ".join(self.rubric.split())
        return f"LLM judge: {rubric if len(rubric) <= 70 else rubric[:69] + '…'}"


Check = Annotated[
    ToolCalled | ToolNotCalled | AgentSays | AgentDoesNotSay | LatencyP90Under | AgentEndsCall
    | NoDivergenceBefore | SimilarityAtLeast | LlmJudge,
    Field(discriminator="type"),
]
CHECK_TYPES: dict[str, type[_Check]] = {
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


def _fields(cls: type[_Check]) -> list[str]:
    names = [n for n in cls.model_fields if n not in ("type", "name")]
    return [*names, "name"]


def _problem(error: Mapping[str, Any], cls: type[_Check]) -> str:
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


# ---- evaluation ---------------------------------------------------------------------------

def evaluate(
    checks: Sequence[Check],
    call: Call,
    replay: Replay,
    comparison: Comparison,
    *,
    judge: Judge | None = None,
    snapshot: AgentSnapshot | None = None,
) -> list[CheckResult]:
    """One result per check, in order. An ``llm_judge`` check that names a ``model`` or
    ``base_url`` gets its own judge (resolved with ``snapshot``'s model provider for a bare
    model name); otherwise it uses ``judge``, and is an error without one."""
    context = _Context(call, replay, comparison, judge, snapshot)
    results: list[CheckResult] = []
    for check in checks:
        try:
            result = context.run(check)
        except Exception as exc:  # a check that cannot be evaluated is an error, not a crash
            detail = exc.message if isinstance(exc, VoiceReplayError) else (
                f"{type(exc).__name__}: {exc}")
            result = _result(check, "error", f"could not be evaluated: {detail}")
        results.append(result)
    return results


def _result(check: _Check, status: Literal["pass", "fail", "error"], message: str,
            evidence: Sequence[Evidence] = (), **extra: Any) -> CheckResult:
    return CheckResult(name=check.label, type=check.type, status=status, message=message,
                       evidence=list(evidence), **extra)


class _Context:
    def __init__(self, call: Call, replay: Replay, comparison: Comparison,
                 judge: Judge | None, snapshot: AgentSnapshot | None) -> None:
        self.call = call
        self.replay = replay
        self.comparison = comparison
        self.judge = judge
        self.snapshot = snapshot
        self.turns: list[Turn] = list(replay.turns)
        self.replies = turn_units.agent_replies(self.turns)
        self._judges: dict[tuple[str | None, str | None, str | None], Judge] = {}
        self._runners: dict[str, Callable[[Any], CheckResult]] = {
            "tool_called": self._tool_called,
            "tool_not_called": self._tool_not_called,
            "agent_says": self._agent_says,
            "agent_does_not_say": self._agent_does_not_say,
            "latency_p90_under": self._latency,
            "agent_ends_call": self._agent_ends_call,
            "no_divergence_before": self._no_divergence_before,
            "similarity_at_least": self._similarity,
            "llm_judge": self._llm_judge,
        }

    def run(self, check: _Check) -> CheckResult:
        return self._runners[check.type](check)

    # -- helpers --

    def _in_scope(self, turn: int | None) -> list[turn_units.AgentReply]:
        return [r for r in self.replies if turn is None or r.number == turn]

    def _missing_turn(self, turn: int | None) -> str:
        if turn is None or turn <= len(self.replies):
            return ""
        return f" (the replay has only {len(self.replies)} agent turns)"

    def _calls(self, check: _ToolCheck) -> list[tuple[int, ToolCall]]:
        return [(reply.number, c) for reply in self._in_scope(check.turn)
                for c in reply.tool_calls(self.turns) if c.name == check.tool]

    # -- tools --

    def _tool_called(self, check: ToolCalled) -> CheckResult:
        calls = self._calls(check)
        where = f" in agent turn {check.turn}" if check.turn else ""
        for number, call in calls:
            if not check.mismatches(call):
                return _result(check, "pass", f"{check.tool} was called in agent turn {number}",
                               [Evidence(turn=number, text=format_tool_call(call))])
        if not calls:
            evidence = [Evidence(turn=r.number, text=", ".join(map(format_tool_call, c)))
                        for r in self._in_scope(check.turn) if (c := r.tool_calls(self.turns))]
            others = "" if not evidence else " (other tools were)"
            return _result(check, "fail", f"{check.tool} was never called{where}"
                           f"{self._missing_turn(check.turn)}{others}", evidence)
        number, first = calls[0]
        why = "; ".join(check.mismatches(first))
        return _result(check, "fail", f"{check.tool} was called{where} but not with matching "
                       f"arguments: agent turn {number}: {why}",
                       [Evidence(turn=n, text=format_tool_call(c)) for n, c in calls])

    def _tool_not_called(self, check: ToolNotCalled) -> CheckResult:
        hits = [(n, c) for n, c in self._calls(check) if not check.mismatches(c)]
        where = f" in agent turn {check.turn}" if check.turn else ""
        if not hits:
            return _result(check, "pass", f"{check.tool} was not called{where}"
                           + (" with those arguments" if check.arguments else ""))
        turns = ", ".join(str(n) for n, _ in hits)
        return _result(check, "fail", f"{check.tool} was called in agent turn "
                       f"{turns}: {format_tool_call(hits[0][1])}",
                       [Evidence(turn=n, text=format_tool_call(c)) for n, c in hits])

    # -- speech --

    def _matches(self, check: _SayCheck) -> list[Evidence]:
        pattern = check.pattern()
        found: list[Evidence] = []
        for reply in self._in_scope(check.turn):
            text = reply.text(self.turns)
            match = pattern.search(text)
            if match:
                found.append(Evidence(turn=reply.number,
                                      text=_excerpt(text, match.start(), match.end())))
        return found

    def _agent_says(self, check: AgentSays) -> CheckResult:
        found = self._matches(check)
        what = f"/{check.regex}/" if check.regex is not None else repr(check.phrase)
        if found:
            return _result(check, "pass", f"the agent said {what} in agent turn "
                           f"{found[0].turn}", found[:1])
        if check.turn is None:
            return _result(check, "fail", f"the agent never said {what}")
        said = [Evidence(turn=r.number, text=_excerpt(r.text(self.turns)))
                for r in self._in_scope(check.turn)]
        return _result(check, "fail", f"the agent did not say {what} in agent turn {check.turn}"
                       f"{self._missing_turn(check.turn)}", said)

    def _agent_does_not_say(self, check: AgentDoesNotSay) -> CheckResult:
        found = self._matches(check)
        what = f"/{check.regex}/" if check.regex is not None else repr(check.phrase)
        where = f" in agent turn {check.turn}" if check.turn else ""
        if not found:
            return _result(check, "pass", f"the agent did not say {what}{where}")
        turns = ", ".join(str(e.turn) for e in found)
        return _result(check, "fail", f"the agent said {what} in agent turn {turns}", found)

    # -- metrics --

    def _latency(self, check: LatencyP90Under) -> CheckResult:
        stats = self.comparison.replay_metrics.latency
        if stats.p90 is None:
            return _result(check, "fail", "no response latencies were measured in the replay, "
                                          "so its p90 cannot be under "
                                          f"{check.seconds:g} s")
        timed = [t for t in self.comparison.latency if t.replay is not None]
        evidence = []
        if timed:
            slowest = max(timed, key=lambda t: t.replay or 0.0)
            evidence = [Evidence(turn=slowest.turn,
                                 text=f"slowest response {slowest.replay:.2f} s")]
        status: Literal["pass", "fail"] = "pass" if stats.p90 < check.seconds else "fail"
        relation = "<" if status == "pass" else ">="
        return _result(check, status, f"p90 response latency {stats.p90:.2f} s {relation} "
                       f"{check.seconds:g} s (over {stats.count} turns)", evidence)

    def _agent_ends_call(self, check: AgentEndsCall) -> CheckResult:
        last = self.replies[-1] if self.replies else None
        evidence = []
        if last is not None:
            calls = last.tool_calls(self.turns)
            text = last.text(self.turns) or ", ".join(map(format_tool_call, calls))
            evidence = [Evidence(turn=last.number, text=_excerpt(text))]
        reason = self.replay.ended_reason
        if reason == "agent-ended-call":
            return _result(check, "pass", "the agent ended the call", evidence)
        if reason is None:
            return _result(check, "fail", "the replay records no reason the call ended",
                           evidence)
        return _result(check, "fail", f"the call ended with {reason!r}, not by the agent",
                       evidence)

    def _no_divergence_before(self, check: NoDivergenceBefore) -> CheckResult:
        divergence = self.comparison.divergence
        if divergence is None:
            return _result(check, "pass", "the replay never diverged from the baseline")
        evidence = [Evidence(turn=divergence.turn, text=divergence.detail)]
        if divergence.turn >= check.turn:
            return _result(check, "pass", f"the replay first diverged at agent turn "
                           f"{divergence.turn} ({divergence.reason})", evidence)
        return _result(check, "fail", f"the replay diverged at agent turn {divergence.turn}, "
                       f"before turn {check.turn} ({divergence.reason}: {divergence.detail})",
                       evidence)

    def _similarity(self, check: SimilarityAtLeast) -> CheckResult:
        similarity = self.comparison.similarity
        if similarity is None:
            return _result(check, "fail", "no similarity was measured (no agent turns to "
                                          f"compare), so it cannot be at least {check.value:g}")
        scored = [a for a in self.comparison.alignment
                  if a.kind == "agent" and a.similarity is not None]
        evidence = []
        if scored:
            worst = min(scored, key=lambda a: a.similarity or 0.0)
            evidence = [Evidence(turn=worst.number, text=f"least similar turn "
                                 f"({worst.similarity:.2f}): {_excerpt(worst.replay_text)}")]
        status: Literal["pass", "fail"] = "pass" if similarity >= check.value else "fail"
        relation = ">=" if status == "pass" else "<"
        return _result(check, status, f"similarity {similarity:.2f} {relation} "
                       f"{check.value:g} ({self.comparison.similarity_method})", evidence)

    # -- judge --

    def _llm_judge(self, check: LlmJudge) -> CheckResult:
        judge = self.judge
        if check.model is not None or check.base_url is not None:
            key = (check.model, check.base_url, check.api_key)
            if key not in self._judges:
                try:
                    self._judges[key] = Judge.from_choice(check.model, check.base_url,
                                                          check.api_key, self.snapshot)
                except VoiceReplayError as exc:
                    return _result(check, "error", f"the judge model cannot be used: "
                                                   f"{exc.message}")
            judge = self._judges[key]
        if judge is None:
            return _result(check, "error", "no judge model: add 'model: local' (the embedded "
                                           "SmolLM2), a .gguf path, or a model name (with "
                                           "'base_url' for an OpenAI-compatible server) to "
                                           "the check, or pass a judge")
        try:
            verdict = judge.judge(check.rubric, self.call, self.replay)
        except VoiceReplayError as exc:
            return _result(check, "error", f"the judge failed: {exc.message}",
                           judge_model=judge.model)
        if verdict.passed is None:
            return _result(check, "error", f"{verdict.model} gave no JSON verdict",
                           reasoning=verdict.reasoning, judge_model=verdict.model)
        status: Literal["pass", "fail"] = "pass" if verdict.passed else "fail"
        return _result(check, status, f"{verdict.model} judged the replay to "
                       f"{'meet' if verdict.passed else 'miss'} the rubric",
                       reasoning=verdict.reasoning, judge_model=verdict.model)


# ---- values -------------------------------------------------------------------------------

def _text(value: Any) -> str:
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


def _same(value: Any, expected: Any) -> bool:
    if isinstance(value, Mapping) and isinstance(expected, Mapping):
        return value.keys() == expected.keys() and all(
            _same(value[k], expected[k]) for k in value)
    if isinstance(value, list) and isinstance(expected, list):
        return len(value) == len(expected) and all(map(_same, value, expected))
    return _text(value) == _text(expected)


def _excerpt(text: str, start: int | None = None, end: int | None = None,
             width: int = _EXCERPT) -> str:
    """``text`` on one line, cut to ``width`` characters around ``start:end`` when long."""
    if len(text) <= width:
        return " ".join(text.split())
    if start is None or end is None:
        lo, hi = 0, width
    else:
        margin = max(0, (width - (end - start)) // 2)
        lo, hi = max(0, start - margin), min(len(text), end + margin)
    piece = " ".join(text[lo:hi].split())
    return ("…" if lo > 0 else "") + piece + ("…" if hi < len(text) else "")
