"""Scenario files: a replayed call saved as a permanent regression test (plain data, no store).

A scenario is ``<name>.voicereplay.yaml`` plus the folder ``<name>.voicereplay/`` beside it
holding the caller's audio segments (WAV). ``voicereplay save`` writes both
(:mod:`voicereplay.pipeline.scenarios`); ``voicereplay test`` runs them. Every mapping is strict
(an unknown key is an error) and the file is versioned::

    schema_version: 1              # required; a version this voicereplay does not know is an error
    name: vapi-dfed92e7            # the scenario's name (-k matches it; default: from the call)
    description: ...               # optional, free text
    source:                        # the production call it was saved from
      provider: vapi               #   vapi or retell
      call_id: dfed92e7-...        #   the provider's call id
      started_at: 2025-06-12T16:41:07Z
      replay_id: 3f2a...           #   optional: the replay it was saved from
    checks:                        # the comparison's checks (same YAML as a checks file, see
      - type: tool_not_called      #   voicereplay.compare.checks); their turns are agent
        tool: issue_refund         #   turn numbers
    agent: agents/support.yaml     # the agent under test: an agent file (path relative to this
                                   #   file), or the agent inline (the agent file's fields)
    mode: scripted                 # scripted, turn or adaptive
    seed: null                     # seed for every stage (null: none)
    runs: 1                        # replays per run of the scenario (--runs overrides)
    mocks: {}                      # optional: tool name → result for tool calls that have no
                                   #   recorded result (the recorded ones are served first)
    redaction: {...}               # written by `save --redact`: what was redacted, where and
                                   #   by which detector (values masked), muted audio ranges
    turns:                         # the baseline call, in order; each entry is one of:
      - agent: Thank you for calling ...      # what the production agent said
        start: 0.904                          #   seconds from the call's start (optional)
        end: 4.904
      - caller: Hi, I ordered ...             # the caller's script: the text, its times and
        start: 5.777                          #   its audio segment (relative to this file;
        end: 9.412                            #   no audio: the text is synthesized)
        audio: vapi-dfed92e7.voicereplay/caller-01.wav
      - tool_calls:                           # the agent's tool calls ...
          - {id: call_1, name: issue_refund, arguments: {order_id: '4417'}}
        start: 21.828
      - tool_result: {id: call_1, name: issue_refund, result: '{"status":"refunded"}'}
        start: 22.277                         # ... and the recorded results, served as mocks

The agent turns are the baseline the similarity, divergence and tool checks compare with; an
agent reply (agent turn N of the checks) is every agent/tool entry between two caller entries.

An **agent file** (:class:`AgentFile`) has the snapshot's shape (:class:`AgentSnapshot`):
``system_prompt`` (or ``prompt_file``, relative to the agent file), ``first_message``,
``first_message_mode``, ``model`` {provider, name, temperature, max_tokens, seed}, ``tools``
(name, description, parameters, kind, server_url), ``voice``, ``transcriber``, ``turn_taking``,
``variables``, ``states`` and ``source`` (provenance, optional).

:func:`load_scenario` reads a file into a :class:`Scenario` with its path and the YAML line of
every check (:attr:`Scenario.check_lines`, for "file:line of the failing check"); anything wrong
is one :class:`~voicereplay.errors.ConfigError` naming the file, the line and the field.
:func:`dump_scenario` writes one back (checks near the top, multi-line text as block scalars).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from voicereplay.checks import Check, _parse_one
from voicereplay.errors import ConfigError
from voicereplay.models import (
    Call,
    KnowledgeContext,
    ProviderName,
    ReplayMode,
    ToolCall,
    ToolResult,
    Turn,
)
from voicereplay.snapshot import (
    AgentSnapshot,
    FirstMessageMode,
    ModelConfig,
    SnapshotSource,
    ToolSpec,
    TranscriberConfig,
    TurnTaking,
    VoiceConfig,
    substitute_variables,
)
from voicereplay.turns import AgentReply, units
from voicereplay.yaml_files import (
    dump_yaml,
    line_of,
    parse_yaml,
    read_text,
    validation_error,
)

__all__ = ["SCHEMA_VERSION", "SUFFIX", "AgentFile", "Scenario", "ScenarioToolCall",
           "ScenarioToolResult", "ScenarioTurn", "SourceCall", "agent_yaml", "dump_scenario",
           "dump_yaml", "load_agent_file", "load_scenario", "safe_name"]

SCHEMA_VERSION: Literal[1] = 1
SUFFIX = ".voicereplay.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceCall(_Strict):
    provider: ProviderName
    call_id: str = Field(min_length=1)
    started_at: datetime | None = None
    replay_id: str | None = Field(default=None, description="the replay it was saved from")


class ScenarioToolCall(_Strict):
    id: str | None = None
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str | None = Field(default=None,
                                      description="the arguments as sent, when not JSON")


class ScenarioToolResult(_Strict):
    id: str | None = None
    name: str | None = None
    result: str = ""
    success: bool | None = None


class ScenarioTurn(_Strict):
    """One turn of the baseline call: exactly one of caller, agent, tool_calls, tool_result."""

    caller: str | None = None
    agent: str | None = None
    tool_calls: list[ScenarioToolCall] | None = None
    tool_result: ScenarioToolResult | None = None
    start: float | None = Field(default=None, ge=0, description="seconds from call start")
    end: float | None = Field(default=None, ge=0, description="seconds from call start")
    audio: str | None = Field(default=None, description="caller: WAV relative to the YAML")
    speaker: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ScenarioTurn:
        given = [k for k in ("caller", "agent", "tool_calls", "tool_result")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of caller, agent, tool_calls, tool_result "
                             f"(got {', '.join(given) or 'none'})")
        if self.audio is not None and self.caller is None:
            raise ValueError("audio belongs to a caller turn")
        if self.audio is not None and (self.start is None or self.end is None):
            raise ValueError("a caller turn with audio needs its start and end (the seconds "
                             "it was cut from)")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def to_turn(self, number: int) -> Turn:
        """The :class:`~voicereplay.models.Turn` this entry stands for (``number``: its index,
        naming tool calls that have no id)."""
        times = {"start": self.start, "end": self.end, "speaker": self.speaker}
        if self.caller is not None:
            return Turn(role="user", text=self.caller, **times)
        if self.agent is not None:
            return Turn(role="agent", text=self.agent, **times)
        if self.tool_calls is not None:
            calls = [ToolCall(id=c.id or f"call_{number}_{n}", name=c.name,
                              arguments=c.arguments, raw_arguments=c.raw_arguments)
                     for n, c in enumerate(self.tool_calls)]
            return Turn(role="tool_call", tool_calls=calls, **times)
        result = self.tool_result or ScenarioToolResult()
        return Turn(role="tool_result", text=result.result, **times,
                    tool_result=ToolResult(**result.model_dump()))

    @classmethod
    def from_turn(cls, turn: Turn, audio: str | None = None) -> ScenarioTurn | None:
        """The entry for a call's turn (None for system turns: the agent holds the prompt)."""
        times = {"start": turn.start, "end": turn.end, "speaker": turn.speaker}
        if turn.role == "user":
            return cls(caller=turn.text, audio=audio, **times)
        if turn.role == "agent":
            return cls(agent=turn.text, **times)
        if turn.role == "tool_call":
            return cls(tool_calls=[ScenarioToolCall(
                id=c.id, name=c.name, arguments=c.arguments, raw_arguments=c.raw_arguments)
                for c in turn.tool_calls], **times)
        if turn.role == "tool_result":
            result = turn.tool_result or ToolResult(result=turn.text)
            return cls(tool_result=ScenarioToolResult(
                id=result.id, name=result.name, result=result.result, success=result.success),
                **times)
        return None


class AgentFile(_Strict):
    """An agent a user maintains: the snapshot's shape, the prompt inline or in a file."""

    system_prompt: str | None = None
    prompt_file: str | None = Field(default=None,
                                    description="the system prompt's file, relative to here")
    first_message: str | None = None
    first_message_mode: FirstMessageMode = "agent-speaks-first"
    model: ModelConfig = ModelConfig()
    tools: list[ToolSpec] = Field(default_factory=list)
    voice: VoiceConfig = VoiceConfig()
    transcriber: TranscriberConfig = TranscriberConfig()
    turn_taking: TurnTaking = TurnTaking()
    variables: dict[str, str] = Field(default_factory=dict)
    states: list[dict[str, Any]] = Field(default_factory=list)
    source: SnapshotSource = SnapshotSource()

    @model_validator(mode="after")
    def _one_prompt(self) -> AgentFile:
        if self.system_prompt is not None and self.prompt_file is not None:
            raise ValueError("give system_prompt or prompt_file, not both")
        return self

    def snapshot(self, base: Path) -> AgentSnapshot:
        """The agent as a snapshot; ``prompt_file`` is read relative to the folder ``base``."""
        data = self.model_dump(mode="python", exclude={"prompt_file"})
        if self.prompt_file is not None:
            prompt_path = base / self.prompt_file
            data["system_prompt"] = read_text(prompt_path, "prompt file")
            if not data["system_prompt"].strip():
                raise ConfigError(f"{prompt_path}: the prompt file is empty")
        for key in ("system_prompt", "first_message"):  # {{variables}}, as production did
            data[key] = substitute_variables(data[key], self.variables)
        return AgentSnapshot.model_validate(data)

    @classmethod
    def of(cls, snapshot: AgentSnapshot) -> AgentFile:
        return cls.model_validate(snapshot.model_dump(mode="python"))


class Scenario(_Strict):
    """A ``*.voicereplay.yaml`` file (see the module docstring)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(min_length=1)
    description: str | None = None
    source: SourceCall
    checks: list[Check] = Field(default_factory=list)
    agent: AgentFile | str
    mode: ReplayMode = "scripted"
    seed: int | None = None
    runs: int = Field(default=1, ge=1, le=50)
    mocks: dict[str, Any] = Field(default_factory=dict)
    turns: list[ScenarioTurn] = Field(min_length=1)
    knowledge: list[KnowledgeContext] = Field(
        default_factory=list, description="knowledge-base context the production agent got; "
                                          "``turn`` is an index in ``turns``")
    redaction: dict[str, Any] | None = Field(
        default=None, description="what `save --redact` redacted (values masked, never kept)")

    _path: Path | None = PrivateAttr(default=None)
    _check_lines: list[int] = PrivateAttr(default_factory=list)

    @property
    def path(self) -> Path | None:
        """The file it was loaded from (None: built in memory)."""
        return self._path

    @property
    def folder(self) -> Path:
        """The folder relative paths (audio, agent file) are read from."""
        return self._path.parent if self._path is not None else Path.cwd()

    @property
    def check_lines(self) -> list[int]:
        """The 1-based YAML line of each check (empty when built in memory)."""
        return list(self._check_lines)

    def check_location(self, index: int) -> str:
        """``file:line`` of check ``index`` (0-based), or the file alone."""
        where = str(self._path) if self._path else self.name
        lines = self._check_lines
        return f"{where}:{lines[index]}" if index < len(lines) else where

    def agent_snapshot(self) -> AgentSnapshot:
        """The agent under test: the inline agent, or the agent file it names."""
        if isinstance(self.agent, AgentFile):
            return self.agent.snapshot(self.folder)
        return load_agent_file(self.folder / self.agent)

    def call(self) -> Call:
        """The baseline call the turns describe (no recordings: the caller's audio segments
        are the pipeline's to place, see :mod:`voicereplay.pipeline.scenarios`)."""
        ended = max((t.end or t.start or 0.0 for t in self.turns), default=0.0)
        return Call(provider=self.source.provider, call_id=self.source.call_id,
                    started_at=self.source.started_at, status="ended", duration=ended or None,
                    turns=[t.to_turn(n) for n, t in enumerate(self.turns)],
                    knowledge=list(self.knowledge), metadata={"scenario": self.name})


# ---- reading ------------------------------------------------------------------------------

def load_scenario(path: Path | str) -> Scenario:
    """The scenario in ``path``; one :class:`ConfigError` (file:line: field: problem) when it
    is not a valid scenario of a known schema version."""
    path = Path(path)
    data, root = parse_yaml(path, read_text(path, "scenario file"), "scenario")
    version = data.get("schema_version")
    if version is None:
        raise ConfigError(f"{path}: no schema_version (this voicereplay writes and reads "
                          f"schema_version: {SCHEMA_VERSION})")
    if version != SCHEMA_VERSION:
        raise ConfigError(f"{path}:{line_of(root, ('schema_version',))}: unknown schema_version "
                          f"{version!r}; this voicereplay reads version {SCHEMA_VERSION} "
                          "(a newer voicereplay may have written it)")
    raw_checks = data.pop("checks", None) or []
    if not isinstance(raw_checks, list):
        raise ConfigError(f"{path}:{line_of(root, ('checks',))}: checks: expected a list")
    lines = [line_of(root, ("checks", n)) for n in range(len(raw_checks))]
    checks = [_parse_one(item, f"{path}:{line}: check {n}")
              for n, (item, line) in enumerate(zip(raw_checks, lines, strict=True), start=1)]
    try:
        scenario = Scenario.model_validate({**data, "checks": []})
    except ValidationError as exc:
        raise validation_error(path, root, exc, "scenario") from None
    scenario.checks = checks
    scenario._path = path
    scenario._check_lines = lines
    return scenario


def load_agent_file(path: Path | str) -> AgentSnapshot:
    """The agent in an agent file, as a snapshot (its ``prompt_file`` read beside it)."""
    path = Path(path)
    data, root = parse_yaml(path, read_text(path, "agent file"), "agent file")
    try:
        agent = AgentFile.model_validate(data)
    except ValidationError as exc:
        raise validation_error(path, root, exc, "agent") from None
    return agent.snapshot(path.parent)


# ---- writing ------------------------------------------------------------------------------

def dump_scenario(scenario: Scenario) -> str:
    """The scenario as YAML (the order of the module docstring; defaults left out)."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    data["checks"] = [c.model_dump(mode="json") for c in scenario.checks]
    if isinstance(scenario.agent, AgentFile):
        data["agent"] = _agent_data(scenario.agent)
    data["seed"] = scenario.seed
    order = ["schema_version", "name", "description", "source", "checks", "agent", "mode",
             "seed", "runs", "mocks", "redaction", "knowledge", "turns"]
    body = {key: data[key] for key in order if key in data and data[key] != {}}
    if not scenario.knowledge:
        body.pop("knowledge", None)
    body["turns"] = [t.model_dump(mode="json", exclude_none=True) for t in scenario.turns]
    text = dump_yaml(body)
    labels = _turn_labels(scenario)
    lines, out, index = text.splitlines(keepends=True), [], -1
    in_turns = False
    for line in lines:
        if line.startswith("turns:"):
            in_turns = True
        elif in_turns and line.startswith("- "):
            index += 1
            if labels.get(index):
                out.append(f"# {labels[index]}\n")
        out.append(line)
    header = ("# A voicereplay scenario: run it with `voicereplay test`. The format is in the "
              "README\n# ('Regression suites') and voicereplay/scenario.py.\n")
    return header + "".join(out)


def _turn_labels(scenario: Scenario) -> dict[int, str]:
    """Entry index → ``caller turn N`` / ``agent turn N`` at the first entry of each, so a
    check's ``turn:`` is easy to find in the file."""
    labels: dict[int, str] = {}
    for unit in units(scenario.call().turns):
        if isinstance(unit, AgentReply):
            labels[unit.indices[0]] = f"agent turn {unit.number}"
        else:
            labels[unit.index] = f"caller turn {unit.number}"
    return labels


def _agent_data(agent: AgentFile) -> dict[str, Any]:
    return agent.model_dump(mode="json", exclude_defaults=True)


def agent_yaml(snapshot: AgentSnapshot) -> str:
    """A starting agent file for ``snapshot`` (the prompt as a block scalar)."""
    return ("# A voicereplay agent file: `voicereplay test --agent` replays every scenario "
            "against it.\n") + dump_yaml(_agent_data(AgentFile.of(snapshot)))


def safe_name(text: str) -> str:
    """``text`` as a scenario name: letters, digits, ``._-`` (others become ``-``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return name[:80] or "scenario"
