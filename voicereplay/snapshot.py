"""Agent snapshots: the agent that handled a call, frozen and content-addressed.

An :class:`AgentSnapshot` holds everything a replay needs to stand in for the production agent
(system prompt, first message, model, tools, voice, transcriber, turn-taking). Its ``id`` is the
sha256 of its canonical JSON without ``source`` (the provenance), so every call handled by the
same agent configuration shares one snapshot id. :class:`Overrides` (written by users, so
``extra="forbid"``) apply to a snapshot to give a new one; :func:`diff` lists field-level changes.

Provider adapters build snapshots from provider configs (``voicereplay.providers``); this module
knows no provider shape.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voicereplay.errors import OverrideError

__all__ = [
    "AgentSnapshot",
    "FieldChange",
    "ModelConfig",
    "Overrides",
    "SnapshotSource",
    "ToolSpec",
    "TranscriberConfig",
    "TurnTaking",
    "VoiceConfig",
    "diff",
    "substitute_variables",
]

FirstMessageMode = Literal["agent-speaks-first", "agent-generates-first", "user-speaks-first"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelConfig(_Frozen):
    provider: str | None = None
    name: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None


class ToolSpec(_Frozen):
    """A tool the agent may call, in OpenAI function terms plus what the provider added."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    kind: str = Field(default="function", description="function, end_call, transfer_call, …")
    server_url: str | None = None

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class VoiceConfig(_Frozen):
    provider: str | None = None
    voice_id: str | None = None
    model: str | None = None
    speed: float | None = None


class TranscriberConfig(_Frozen):
    provider: str | None = None
    model: str | None = None
    language: str | None = None


class TurnTaking(_Frozen):
    endpointing: float | None = Field(default=None, description="seconds of silence ending a turn")
    response_delay: float | None = Field(default=None, description="seconds before replying")
    silence_timeout: float | None = Field(default=None, description="seconds")
    max_duration: float | None = Field(default=None, description="seconds")
    end_call_phrases: tuple[str, ...] = ()


class SnapshotSource(_Frozen):
    provider: str | None = None
    agent_id: str | None = None
    agent_version: str | None = None
    llm_id: str | None = None
    llm_version: str | None = None
    call_id: str | None = None
    parent_id: str | None = Field(default=None, description="snapshot this one was derived from")


class AgentSnapshot(_Frozen):
    system_prompt: str | None = None
    first_message: str | None = None
    first_message_mode: FirstMessageMode = "agent-speaks-first"
    model: ModelConfig = ModelConfig()
    tools: tuple[ToolSpec, ...] = ()
    voice: VoiceConfig = VoiceConfig()
    transcriber: TranscriberConfig = TranscriberConfig()
    turn_taking: TurnTaking = TurnTaking()
    variables: dict[str, str] = Field(default_factory=dict)
    states: tuple[dict[str, Any], ...] = Field(
        default=(), description="Retell LLM states, kept as the provider gave them"
    )
    source: SnapshotSource = SnapshotSource()

    @property
    def id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def canonical_json(self) -> str:
        body = self.model_dump(mode="json", exclude={"source"})
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)

    def apply(self, overrides: Overrides) -> AgentSnapshot:
        """A new snapshot with ``overrides`` applied; ``self`` is unchanged."""
        data = self.model_dump(mode="python")
        changes = overrides.model_dump(exclude_unset=True, mode="python")
        if not changes:
            return self
        _deep_merge(data, changes)
        # A prompt written by the user may use the call's {{variables}}, as production did.
        for key in ("system_prompt", "first_message"):
            if key in changes:
                data[key] = substitute_variables(data[key], data["variables"])
        data["source"] = {**data["source"], "parent_id": self.id}
        try:
            return AgentSnapshot.model_validate(data)
        except ValidationError as exc:
            raise OverrideError(f"overrides do not fit the snapshot: {_first_error(exc)}") from exc


class _Partial(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelOverrides(_Partial):
    provider: str | None = None
    name: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    seed: int | None = None


class VoiceOverrides(_Partial):
    provider: str | None = None
    voice_id: str | None = None
    model: str | None = None
    speed: float | None = Field(default=None, gt=0)


class TranscriberOverrides(_Partial):
    provider: str | None = None
    model: str | None = None
    language: str | None = None


class TurnTakingOverrides(_Partial):
    endpointing: float | None = Field(default=None, ge=0)
    response_delay: float | None = Field(default=None, ge=0)
    silence_timeout: float | None = Field(default=None, ge=0)
    max_duration: float | None = Field(default=None, gt=0)
    end_call_phrases: tuple[str, ...] | None = None


class Overrides(_Partial):
    """What a user changes for a replay. Only the fields set are applied."""

    system_prompt: str | None = None
    first_message: str | None = None
    first_message_mode: FirstMessageMode | None = None
    model: ModelOverrides | None = None
    tools: tuple[ToolSpec, ...] | None = None
    voice: VoiceOverrides | None = None
    transcriber: TranscriberOverrides | None = None
    turn_taking: TurnTakingOverrides | None = None
    variables: dict[str, str] | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, source: str = "overrides") -> Overrides:
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise OverrideError(f"{source}: {_first_error(exc)}") from exc

    @classmethod
    def from_pairs(cls, pairs: Iterable[str], base: Overrides | None = None) -> Overrides:
        """Build from ``key=value`` strings with dotted keys (``model.temperature=0.2``).

        Values are read as JSON when they parse (numbers, booleans, lists), else as text.
        """
        data: dict[str, Any] = base.model_dump(exclude_unset=True) if base else {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            if not sep or not key.strip():
                raise OverrideError(
                    f"--set {pair!r}: expected key=value, e.g. model.temperature=0.2"
                )
            try:
                value: Any = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            node = data
            parts = key.strip().split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise OverrideError(f"--set {pair!r}: {part} is not a group of settings")
            node[parts[-1]] = value
        return cls.parse(data, source="--set")


class FieldChange(BaseModel):
    path: str
    before: Any = None
    after: Any = None


def diff(a: AgentSnapshot, b: AgentSnapshot, *, include_source: bool = False) -> list[FieldChange]:
    """Field-level changes from ``a`` to ``b``, as dotted paths in a stable order."""
    exclude = None if include_source else {"source"}
    left = _flatten(a.model_dump(mode="json", exclude=exclude))
    right = _flatten(b.model_dump(mode="json", exclude=exclude))
    return [
        FieldChange(path=path, before=left.get(path), after=right.get(path))
        for path in sorted(left.keys() | right.keys())
        if left.get(path) != right.get(path)
    ]


_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


def substitute_variables(text: str | None, values: Mapping[str, Any]) -> str | None:
    """Replace ``{{name}}`` with its value; unknown names stay as written."""
    if text is None or not values:
        return text
    return _VARIABLE.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(
        isinstance(v, dict) and "name" in v for v in value
    ):
        out = {}
        for item in value:
            out.update(_flatten(item, f"{prefix}[{item['name']}]"))
        return out
    return {prefix: value}


def _deep_merge(base: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict) and key != "variables":
            _deep_merge(base[key], value)
        elif key == "variables" and isinstance(value, Mapping):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{where}: {err['msg']}"
