"""A Vapi assistant config (+ the call's overrides and variables) → an :class:`AgentSnapshot`.

The assistant comes inline in the call (transient assistants, squads), in the end-of-call-report
(``message.assistant``: the fully resolved assistant), or from ``GET /assistant/{id}``. The
call's ``assistantOverrides`` are deep-merged over it first, as Vapi did for the call, and the
``{{variables}}`` the call used are substituted into the system prompt and first message.
Template tags left after that (Liquid such as ``{{"now" | date: "%A"}}``) are resolved by
taking the text the call actually used, when the call's own system message (or first agent
turn) matches the template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from voicereplay.errors import PayloadError
from voicereplay.models import Call, Role
from voicereplay.providers.vapi_fields import Fields, call_object, join
from voicereplay.snapshot import (
    AgentSnapshot,
    ModelConfig,
    SnapshotSource,
    ToolSpec,
    TranscriberConfig,
    TurnTaking,
    VoiceConfig,
    substitute_variables,
)

__all__ = ["build_snapshot", "embedded_assistant"]

FIRST_MESSAGE_MODES = {
    "assistant-speaks-first": "agent-speaks-first",
    "assistant-speaks-first-with-model-generated-message": "agent-generates-first",
    "assistant-waits-for-user": "user-speaks-first",
}
_TOOL_DESCRIPTIONS = {
    "end_call": "End the call.",
    "transfer_call": "Transfer the call to another number or assistant.",
    "dtmf": "Press keys on the phone keypad (DTMF tones).",
    "voicemail": "Leave a voicemail message and end the call.",
}


def embedded_assistant(payload: Any) -> dict[str, Any] | None:
    """The assistant a payload carries: ``assistant`` of a GET /call body, ``message.assistant``
    of a report, or the first squad member's ``assistant``; None when it has only an id."""
    if not isinstance(payload, Mapping):
        return None
    holders: list[Any] = [payload]
    message = payload.get("message")
    if isinstance(message, Mapping):
        holders = [message, message.get("call")]
    for holder in holders:
        if isinstance(holder, Mapping) and isinstance(holder.get("assistant"), Mapping):
            return dict(holder["assistant"])
    member = _first_member(holders)
    if member is not None and isinstance(member.get("assistant"), Mapping):
        return dict(member["assistant"])
    return None


def _first_member(holders: list[Any]) -> Mapping[str, Any] | None:
    for holder in holders:
        squad = holder.get("squad") if isinstance(holder, Mapping) else None
        members = squad.get("members") if isinstance(squad, Mapping) else None
        if isinstance(members, list) and members and isinstance(members[0], Mapping):
            return members[0]
    return None


def build_snapshot(call: Call, assistant: Mapping[str, Any] | None) -> AgentSnapshot:
    """Freeze the assistant that handled ``call`` (None: use the one inline in the call)."""
    if assistant is None:
        assistant = embedded_assistant(call.raw)
    if assistant is None:
        named = f" (assistant {call.agent_id} is not inline in the call)" if call.agent_id else ""
        raise PayloadError(
            f"Vapi call {call.call_id}: the assistant config is missing{named}; pass a Vapi API "
            "key (VAPI_API_KEY or --api-key) so it can be fetched, or put the assistant JSON in "
            "a <call>.assistant.json file beside the call"
        )
    r = Fields(None, f"Vapi assistant for call {call.call_id}")
    config = r.item(assistant, "assistant")
    view = call_object(call.raw, r)
    data = view.data

    # Overrides as Vapi applied them: the squad member's, then the call's.
    overrides: list[dict[str, Any]] = []
    member = _first_member([data])
    if member is not None:
        overrides.append(r.mapping(member, "assistantOverrides", "squad.members[0]") or {})
    overrides.append(r.mapping(data, "assistantOverrides", view.where("assistantOverrides")) or {})
    for extra in overrides:
        config = _deep_merge(config, {k: v for k, v in extra.items() if k != "variableValues"})

    # The values the call used: what was passed in, then what the artifact recorded.
    variables: dict[str, str] = {}
    artifact = r.mapping(data, "artifact", view.where("artifact")) or {}
    for holder, key, where in (
        *((o, "variableValues", "assistantOverrides") for o in overrides),
        (artifact, "variables", view.path("artifact")),
        (artifact, "variableValues", view.path("artifact")),
    ):
        variables.update(_flatten(r.mapping(holder, key, where) or {}))

    model = r.mapping(config, "model", "") or {}
    voice = r.mapping(config, "voice", "") or {}
    transcriber = r.mapping(config, "transcriber", "") or {}
    mode = r.text(config, "firstMessageMode", "")
    try:
        return AgentSnapshot(
            system_prompt=_rendered(
                substitute_variables(_system_prompt(r, model), variables), call, "system"
            ),
            first_message=_rendered(
                substitute_variables(r.text(config, "firstMessage", ""), variables), call, "agent"
            ),
            first_message_mode=FIRST_MESSAGE_MODES.get(mode or "", "agent-speaks-first"),
            model=ModelConfig(
                provider=r.text(model, "provider", "model"),
                name=r.text(model, "model", "model"),
                temperature=r.number(model, "temperature", "model"),
                max_tokens=r.integer(model, "maxTokens", "model"),
            ),
            tools=tuple(_tools(r, config, model)),
            voice=VoiceConfig(
                provider=r.text(voice, "provider", "voice"),
                voice_id=r.ident(voice, "voiceId", "voice"),
                model=r.text(voice, "model", "voice"),
                speed=r.number(voice, "speed", "voice"),
            ),
            transcriber=TranscriberConfig(
                provider=r.text(transcriber, "provider", "transcriber"),
                model=r.text(transcriber, "model", "transcriber"),
                language=r.text(transcriber, "language", "transcriber"),
            ),
            turn_taking=_turn_taking(r, config, transcriber),
            variables=variables,
            source=SnapshotSource(
                provider="vapi",
                agent_id=call.agent_id or r.ident(config, "id", ""),
                agent_version=call.agent_version,
                call_id=call.call_id,
            ),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        r.fail(".".join(str(part) for part in err["loc"]), f"is not valid: {err['msg']}")


_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def _rendered(text: str | None, call: Call, role: Role) -> str | None:
    """``text`` as the call rendered it, when template tags (``{{"now" | date: …}}``) are left.

    The call's first ``role`` turn is used only if it matches ``text`` with every tag as a
    wildcard, so a prompt is never swapped for an unrelated message.
    """
    if text is None or not _TEMPLATE_TAG.search(text):
        return text
    said = next((t.text for t in call.turns if t.role == role and t.text), None)
    if said is None:
        return text
    literal = [re.escape(part) for part in _TEMPLATE_TAG.split(text)]
    return said if re.fullmatch(".*?".join(literal), said, re.DOTALL) else text


def _deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"customer": {"number": "+1…"}}`` → ``{"customer.number": "+1…"}``, values as text."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, str):
            out[name] = value
        elif value is not None:
            out[name] = json.dumps(value, ensure_ascii=False)
    return out


def _system_prompt(r: Fields, model: Mapping[str, Any]) -> str | None:
    parts = []
    for index, raw in enumerate(r.sequence(model, "messages", "model") or []):
        where = f"model.messages[{index}]"
        message = r.item(raw, where)
        if r.text(message, "role", where) == "system":
            content = message.get("content")
            if isinstance(content, list):  # OpenAI content parts: [{type: "text", text}]
                content = "".join(
                    part.get("text", "") for part in content
                    if isinstance(part, Mapping) and isinstance(part.get("text"), str)
                )
            elif content is not None and not isinstance(content, str):
                r.fail(join(where, "content"), "should be text")
            if content:
                parts.append(content)
    if parts:
        return "\n\n".join(parts)
    return r.text(model, "systemPrompt", "model") or None


def _tools(r: Fields, config: Mapping[str, Any], model: Mapping[str, Any]) -> list[ToolSpec]:
    server = r.mapping(config, "server", "") or {}
    default_url = r.text(server, "url", "server") or r.text(config, "serverUrl", "")
    tools = [
        _tool(r, raw, f"model.tools[{i}]", default_url)
        for i, raw in enumerate(r.sequence(model, "tools", "model") or [])
    ]
    for index, raw in enumerate(r.sequence(model, "functions", "model") or []):
        where = f"model.functions[{index}]"
        function = r.item(raw, where)
        tools.append(_spec(r, function, where, kind="function",
                           server_url=r.text(function, "serverUrl", where) or default_url))
    if r.boolean(config, "endCallFunctionEnabled", "") and not any(
        t.kind == "end_call" for t in tools
    ):
        tools.append(ToolSpec(name="endCall", kind="end_call",
                              description=_TOOL_DESCRIPTIONS["end_call"]))
    return tools


def _tool(r: Fields, raw: Any, where: str, default_url: str | None) -> ToolSpec:
    item = r.item(raw, where)
    tool_type = r.text(item, "type", where) or "function"
    function = r.mapping(item, "function", where)
    server = r.mapping(item, "server", where) or {}
    url = r.text(server, "url", join(where, "server"))
    if tool_type == "function":
        holder, at = (function, join(where, "function")) if function is not None else (item, where)
        return _spec(r, holder, at, kind="function", server_url=url or default_url)
    kind = _snake(tool_type)
    holder, at = (function, join(where, "function")) if function else (item, where)
    parameters = r.mapping(holder, "parameters", at)
    if tool_type == "transferCall" and not parameters:
        parameters = _transfer_parameters(r, item, where)
    if tool_type == "apiRequest":
        url = url or r.text(item, "url", where)
    return ToolSpec(
        name=r.text(holder, "name", at) or r.text(item, "name", where) or tool_type,
        description=(r.text(holder, "description", at) or r.text(item, "description", where)
                     or _TOOL_DESCRIPTIONS.get(kind, "")),
        parameters=_schema(parameters),
        kind=kind,
        server_url=url,
    )


def _spec(r: Fields, fn: Mapping[str, Any], where: str, *, kind: str,
          server_url: str | None) -> ToolSpec:
    name = r.text(fn, "name", where)
    if not name:
        r.fail(join(where, "name"), "is missing; a function tool must have a name")
    return ToolSpec(
        name=name,
        description=r.text(fn, "description", where) or "",
        parameters=_schema(r.mapping(fn, "parameters", where)),
        kind=kind,
        server_url=server_url,
    )


def _schema(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-schema object; a tool without parameters takes an empty object."""
    return {"type": "object", "properties": {}, **(parameters or {})}


def _transfer_parameters(r: Fields, item: Mapping[str, Any], where: str) -> dict[str, Any] | None:
    targets = []
    for index, raw in enumerate(r.sequence(item, "destinations", where) or []):
        at = f"{where}.destinations[{index}]"
        dest = r.item(raw, at)
        target = (r.text(dest, "number", at) or r.text(dest, "sipUri", at)
                  or r.text(dest, "assistantName", at))
        if target:
            targets.append(target)
    if not targets:
        return None
    return {
        "type": "object",
        "properties": {"destination": {"type": "string", "enum": targets,
                                       "description": "where to transfer the call"}},
        "required": ["destination"],
    }


def _turn_taking(r: Fields, config: Mapping[str, Any],
                 transcriber: Mapping[str, Any]) -> TurnTaking:
    endpointing_ms = r.number(transcriber, "endpointing", "transcriber")
    endpointing = None if endpointing_ms is None else round(endpointing_ms / 1000, 4)
    if endpointing is None:
        plan = r.mapping(config, "startSpeakingPlan", "") or {}
        endpointing = r.number(plan, "waitSeconds", "startSpeakingPlan")
    return TurnTaking(
        endpointing=endpointing,
        response_delay=r.number(config, "responseDelaySeconds", ""),
        silence_timeout=r.number(config, "silenceTimeoutSeconds", ""),
        max_duration=r.number(config, "maxDurationSeconds", ""),
        end_call_phrases=tuple(r.strings(config, "endCallPhrases", "")),
    )


def _snake(name: str) -> str:
    out = "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in name)
    return out.lstrip("_").replace("-", "_").replace(".", "_")
