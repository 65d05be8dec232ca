"""A Vapi assistant config (+ the call's overrides and variables) → an :class:`AgentSnapshot`.

The assistant comes inline in the call (transient assistants, squads), in the end-of-call-report
(``message.assistant``: the fully resolved assistant), or from ``GET /assistant/{id}``. The
call's ``assistantOverrides`` are deep-merged over it first, as Vapi did for the call, and the
``{{variables}}`` the call used are substituted into the system prompt and first message.
Template tags left after that (Liquid such as ``{{"now" | date: "%A"}}``) are resolved by
taking the text the call actually used, when the call's own system message (or first agent
turn) matches the template.

The current schema's fields are read first, the 2024 ones as fallbacks:

=================================  ==========================================================
current                            legacy (2024)
=================================  ==========================================================
``model.messages`` (system)        ``model.systemPrompt``
``model.tools``, ``model.toolIds`` ``model.functions``
``server.url``                     ``serverUrl``
``startSpeakingPlan.waitSeconds``  ``responseDelaySeconds``
an ``endCall`` tool                ``endCallFunctionEnabled``
(none)                             ``silenceTimeoutSeconds`` (still documented)
=================================  ==========================================================

``model.toolIds`` name tools stored apart (``GET /tool/{id}``); the caller passes them in
``tools_by_id`` (:func:`referenced_tool_ids` lists the ids to fetch).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from voicereplay.errors import PayloadError
from voicereplay.models import Call, Role
from voicereplay.providers.fields import Obj, check_depth
from voicereplay.providers.vapi_fields import call_object
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

__all__ = ["build_snapshot", "embedded_assistant", "referenced_tool_ids"]

log = logging.getLogger(__name__)

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


def referenced_tool_ids(call: Call, assistant: Mapping[str, Any] | None) -> list[str]:
    """The ``model.toolIds`` of the assistant and of the call's overrides, in order."""
    models: list[Any] = []
    if isinstance(assistant, Mapping):
        models.append(assistant.get("model"))
    holders: list[Any] = [call.raw]
    message = call.raw.get("message")
    if isinstance(message, Mapping):
        holders = [message, message.get("call")]
    member = _first_member(holders)
    for holder in [*holders, member]:
        overrides = holder.get("assistantOverrides") if isinstance(holder, Mapping) else None
        if isinstance(overrides, Mapping):
            models.append(overrides.get("model"))
    ids: list[str] = []
    for model in models:
        listed = model.get("toolIds") if isinstance(model, Mapping) else None
        for tool_id in listed if isinstance(listed, list) else []:
            if isinstance(tool_id, str) and tool_id and tool_id not in ids:
                ids.append(tool_id)
    return ids


def build_snapshot(
    call: Call,
    assistant: Mapping[str, Any] | None,
    tools_by_id: Mapping[str, Mapping[str, Any]] | None = None,
) -> AgentSnapshot:
    """Freeze the assistant that handled ``call`` (None: use the one inline in the call).

    ``tools_by_id`` holds the tools ``model.toolIds`` names (``GET /tool/{id}`` bodies); an id
    not in it is left out with a warning.
    """
    if assistant is None:
        assistant = embedded_assistant(call.raw)
    if assistant is None:
        named = f" (assistant {call.agent_id} is not inline in the call)" if call.agent_id else ""
        raise PayloadError(
            f"Vapi call {call.call_id}: the assistant config is missing{named}; pass a Vapi API "
            "key (VAPI_API_KEY or --api-key) so it can be fetched, or put the assistant JSON in "
            "a <call>.assistant.json file beside the call"
        )
    what = f"Vapi assistant for call {call.call_id}"
    check_depth(assistant, source=what)
    config = Obj.of(assistant, what=what)
    view = call_object(call.raw, None, what)

    # Overrides as Vapi applied them: the squad member's, then the call's.
    overrides: list[Obj] = []
    member = _first_member([view.data])
    if member is not None:
        at = f"{view.where('squad')}.members[0]"
        overrides.append(view.child(member, at).section("assistantOverrides"))
    overrides.append(view.section("assistantOverrides"))
    merged = dict(config.data)
    for extra in overrides:
        merged = _deep_merge(merged, {k: v for k, v in extra.data.items() if k != "variableValues"})
    config = replace(config, data=merged)

    # The values the call used: what was passed in, then what the artifact recorded.
    variables: dict[str, str] = {}
    artifact = view.section("artifact")
    for holder, key in (
        *((o, "variableValues") for o in overrides),
        (artifact, "variables"),
        (artifact, "variableValues"),
    ):
        variables.update(_flatten(holder.mapping(key)))

    model = config.section("model")
    voice = config.section("voice")
    transcriber = config.section("transcriber")
    mode = config.string("firstMessageMode")
    try:
        return AgentSnapshot(
            system_prompt=_rendered(
                substitute_variables(_system_prompt(model), variables), call, "system"
            ),
            first_message=_rendered(
                substitute_variables(config.string("firstMessage"), variables), call, "agent"
            ),
            first_message_mode=FIRST_MESSAGE_MODES.get(mode or "", "agent-speaks-first"),
            model=ModelConfig(
                provider=model.string("provider"),
                name=model.string("model"),
                temperature=model.number("temperature"),
                max_tokens=model.integer("maxTokens"),
            ),
            tools=tuple(_tools(config, model, tools_by_id or {}, call.call_id)),
            voice=VoiceConfig(
                provider=voice.string("provider"),
                voice_id=voice.ident("voiceId"),
                model=voice.string("model"),
                speed=voice.number("speed"),
            ),
            transcriber=TranscriberConfig(
                provider=transcriber.string("provider"),
                model=transcriber.string("model"),
                language=transcriber.string("language"),
            ),
            turn_taking=_turn_taking(config, transcriber),
            variables=variables,
            source=SnapshotSource(
                provider="vapi",
                agent_id=call.agent_id or config.ident("id"),
                agent_version=call.agent_version,
                call_id=call.call_id,
            ),
        )
    except ValidationError as exc:
        config.invalid(exc)


def _rendered(text: str | None, call: Call, role: Role) -> str | None:
    """``text`` as the call rendered it, when template tags (``{{"now" | date: …}}``) are left.

    The call's first ``role`` turn is used only if it matches ``text`` with every tag as a
    wildcard, so a prompt is never swapped for an unrelated message.
    """
    if text is None:
        return None
    pieces = _untagged(text)
    if len(pieces) < 2:
        return text
    said = next((t.text for t in call.turns if t.role == role and t.text), None)
    if said is None:
        return text
    return said if _fits(pieces, said) else text


_TAGS = (("{{", "}}"), ("{%", "%}"))


def _untagged(text: str) -> list[str]:
    """The text between template tags (``{{…}}``, ``{%…%}``): one piece when there is none.

    The same pieces as splitting on the lazy regex ``{{.*?}}|{%.*?%}``, found in one pass: the
    regex retries its ``.*?`` from every unclosed ``{{``, which is quadratic on a long prompt.
    """
    pieces: list[str] = []
    start = at = 0
    opens = [text.find(opener) for opener, _ in _TAGS]  # the next of each opener; -1: none
    while True:
        for kind, (opener, _) in enumerate(_TAGS):
            if 0 <= opens[kind] < at:
                opens[kind] = text.find(opener, at)
        live = [(where, kind) for kind, where in enumerate(opens) if where >= 0]
        if not live:
            break
        where, kind = min(live)
        close = text.find(_TAGS[kind][1], where + 2)
        if close < 0:  # never closed: no later opener of this kind is either
            opens[kind] = -1
            continue
        pieces.append(text[start:where])
        start = at = close + 2
    pieces.append(text[start:])
    return pieces


def _fits(pieces: list[str], said: str) -> bool:
    """Whether ``said`` is ``pieces`` in order with any text in each gap between them.

    The first piece must start ``said`` and the last must end it; the ones between are found
    left to right, each at its first place after the one before. Taking the first place is
    never wrong (it leaves the most room for the rest), so this is one pass over ``said``
    instead of a backtracking regular expression, which takes exponential time on a prompt
    with several tags that does not match.
    """
    first, *middle, last = pieces
    if not said.startswith(first):
        return False
    at = len(first)
    for piece in middle:
        found = said.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return len(said) - len(last) >= at and said.endswith(last)


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


def _system_prompt(model: Obj) -> str | None:
    parts = []
    for message in model.objects("messages"):
        if message.string("role") == "system":
            content = message.data.get("content")
            if isinstance(content, list):  # OpenAI content parts: [{type: "text", text}]
                content = "".join(
                    part.get("text", "") for part in content
                    if isinstance(part, Mapping) and isinstance(part.get("text"), str)
                )
            elif content is not None and not isinstance(content, str):
                message.fail("content", "should be text")
            if content:
                parts.append(content)
    if parts:
        return "\n\n".join(parts)
    return model.string("systemPrompt") or None


def _tools(
    config: Obj, model: Obj, tools_by_id: Mapping[str, Mapping[str, Any]], call_id: str
) -> list[ToolSpec]:
    default_url = config.section("server").string("url") or config.string("serverUrl")
    items = model.objects("tools")
    inline = {item.string("id") for item in items}
    for index, tool_id in enumerate(model.strings("toolIds")):
        if tool_id in inline:
            continue
        stored = tools_by_id.get(tool_id)
        if stored is None:
            log.warning("Vapi call %s: tool %s (model.toolIds) is not available; the snapshot "
                        "leaves it out", call_id, tool_id)
            continue
        items.append(model.child(stored, f"{model.where('toolIds')}[{index}] (tool {tool_id})"))
        inline.add(tool_id)
    tools = [_tool(item, default_url) for item in items]
    for function in model.objects("functions"):
        tools.append(_spec(function, kind="function",
                           server_url=function.string("serverUrl") or default_url))
    if config.flag("endCallFunctionEnabled") and not any(t.kind == "end_call" for t in tools):
        tools.append(ToolSpec(name="endCall", kind="end_call",
                              description=_TOOL_DESCRIPTIONS["end_call"]))
    return tools


def _tool(item: Obj, default_url: str | None) -> ToolSpec:
    tool_type = item.string("type") or "function"
    function = item.obj("function")
    url = item.section("server").string("url")
    if tool_type == "function":
        holder = function if function is not None else item
        return _spec(holder, kind="function", server_url=url or default_url)
    kind = _snake(tool_type)
    holder = function if function is not None and function.data else item
    parameters: dict[str, Any] | None = holder.mapping("parameters")
    if tool_type == "transferCall" and not parameters:
        parameters = _transfer_parameters(item)
    if tool_type == "apiRequest":
        url = url or item.string("url")
    return ToolSpec(
        name=holder.string("name") or item.string("name") or tool_type,
        description=(holder.string("description") or item.string("description")
                     or _TOOL_DESCRIPTIONS.get(kind, "")),
        parameters=_schema(parameters),
        kind=kind,
        server_url=url,
    )


def _spec(fn: Obj, *, kind: str, server_url: str | None) -> ToolSpec:
    name = fn.string("name")
    if not name:
        fn.fail("name", "is missing; a function tool must have a name")
    return ToolSpec(
        name=name,
        description=fn.string("description") or "",
        parameters=_schema(fn.mapping("parameters")),
        kind=kind,
        server_url=server_url,
    )


def _schema(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-schema object; a tool without parameters takes an empty object."""
    return {"type": "object", "properties": {}, **(parameters or {})}


def _transfer_parameters(item: Obj) -> dict[str, Any] | None:
    targets = []
    for dest in item.objects("destinations"):
        target = (dest.string("number") or dest.string("sipUri")
                  or dest.string("assistantName"))
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


def _turn_taking(config: Obj, transcriber: Obj) -> TurnTaking:
    endpointing_ms = transcriber.number("endpointing")
    endpointing = None if endpointing_ms is None else round(endpointing_ms / 1000, 4)
    if endpointing is None:
        endpointing = config.section("startSpeakingPlan").number("waitSeconds")
    wait = config.section("startSpeakingPlan").number("waitSeconds")
    return TurnTaking(
        endpointing=endpointing,
        response_delay=wait if wait is not None else config.number("responseDelaySeconds"),
        silence_timeout=config.number("silenceTimeoutSeconds"),
        max_duration=config.number("maxDurationSeconds"),
        end_call_phrases=tuple(config.strings("endCallPhrases")),
    )


def _snake(name: str) -> str:
    out = "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in name)
    return out.lstrip("_").replace("-", "_").replace(".", "_")
