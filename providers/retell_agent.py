"""Freeze a Retell agent and its Retell LLM, at the call's versions, into an AgentSnapshot.

The agent (``GET /get-agent``) gives the voice, transcriber and timing settings. The Retell LLM
(``GET /get-retell-llm``) gives the prompt, begin message, model, tools and states. The call's
``retell_llm_dynamic_variables`` are substituted into the prompt and the begin message. The
LLM's ``default_dynamic_variables`` fill in names the call did not set.

Agents whose response engine is a custom LLM (your own websocket) or a conversation flow have
no Retell LLM to read. Their snapshot keeps what the agent gives, and ``model.provider`` names
the engine (``"custom-llm"`` or ``"conversation-flow"``), so a replay can refuse clearly.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from voicereplay.errors import PayloadError
from voicereplay.models import Call
from voicereplay.providers.fields import Obj, check_depth
from voicereplay.providers.retell_fields import call_body
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

__all__ = ["build_snapshot"]

log = logging.getLogger(__name__)

_TOOL_KINDS = {"custom": "function", "end_call": "end_call", "transfer_call": "transfer_call"}
_MODEL_PROVIDERS = (
    (("gpt", "o1", "o3", "o4", "chatgpt"), "openai"),
    (("claude",), "anthropic"),
    (("gemini",), "google"),
)


def build_snapshot(
    call: Call, agent: Mapping[str, Any] | None, llm: Mapping[str, Any] | None
) -> AgentSnapshot:
    """The agent that handled ``call``, from its agent and Retell LLM bodies."""
    if agent is None and llm is None:
        raise PayloadError(
            f"call {call.call_id}: neither the Retell agent ({call.agent_id or 'unknown id'}) "
            "nor its Retell LLM is available; fetch them with the API or put "
            "<stem>.agent.json / <stem>.llm.json beside the call file"
        )
    where = f"Retell agent for call {call.call_id}"
    check_depth(agent, source=where)
    check_depth(llm, source=where)
    a = Obj.of(agent if agent is not None else {}, "agent", where, lenient=True)
    l_ = Obj.of(llm, "llm", where, lenient=True) if llm is not None else None
    engine = a.obj("response_engine")
    engine_type = engine.string("type") if engine else None
    try:
        snapshot = _snapshot(call, a, l_, engine, engine_type)
    except ValidationError as exc:
        a.invalid(exc)
    if l_ is None:
        log.warning(
            "call %s: no Retell LLM (the agent's response engine is %s); "
            "the snapshot has no prompt or tools",
            call.call_id, engine_type or "not given",
        )
    return snapshot


def _snapshot(
    call: Call, a: Obj, l_: Obj | None, engine: Obj | None, engine_type: str | None
) -> AgentSnapshot:
    prompt = first = None
    mode: FirstMessageMode = "agent-speaks-first"
    model = ModelConfig()
    tools: tuple[ToolSpec, ...] = ()
    states: tuple[dict[str, Any], ...] = ()
    variables: dict[str, str] = {}
    if l_ is not None:
        prompt = l_.string("general_prompt")
        first = l_.string("begin_message")
        mode = _first_message_mode(l_.string("start_speaker"), first)
        model_name = l_.string("model") or l_.string("s2s_model")
        model = ModelConfig(
            provider=_model_provider(model_name),
            name=model_name,
            temperature=l_.number("model_temperature"),
        )
        states_ = l_.objects("states")
        states = tuple(copy.deepcopy(dict(s.data)) for s in states_)
        state_tools = [t for state in states_ for t in state.objects("tools")]
        tools = _tools([*l_.objects("general_tools"), *state_tools])
        variables = _variables(call, l_, [prompt, first])
        prompt = substitute_variables(prompt, variables)
        first = substitute_variables(first, variables) or None
    elif engine_type == "custom-llm" and engine is not None:
        model = ModelConfig(provider="custom-llm", name=engine.string("llm_websocket_url"))
    elif engine_type == "conversation-flow" and engine is not None:
        flow_id = engine.string("conversation_flow_id")
        model = ModelConfig(provider="conversation-flow", name=flow_id)
    voice_id = a.string("voice_id")
    silence_ms = a.number("end_call_after_silence_ms")
    max_ms = a.number("max_call_duration_ms")
    return AgentSnapshot(
        system_prompt=prompt,
        first_message=first,
        first_message_mode=mode,
        model=model,
        tools=tools,
        voice=VoiceConfig(
            provider=voice_id.split("-", 1)[0] if voice_id and "-" in voice_id else None,
            voice_id=voice_id,
            model=a.string("voice_model"),
            speed=a.number("voice_speed"),
        ),
        transcriber=TranscriberConfig(model=a.string("stt_mode"), language=a.string("language")),
        turn_taking=TurnTaking(
            silence_timeout=silence_ms / 1000 if silence_ms is not None else None,
            max_duration=max_ms / 1000 if max_ms is not None else None,
        ),
        variables=variables,
        states=states,
        source=_source(call, a, l_, engine),
    )


def _first_message_mode(
    start_speaker: str | None, begin_message: str | None
) -> FirstMessageMode:
    if start_speaker == "user":
        return "user-speaks-first"
    if start_speaker is None and begin_message == "":
        return "user-speaks-first"  # before start_speaker existed, "" meant "wait for the user"
    return "agent-speaks-first" if begin_message else "agent-generates-first"


def _model_provider(name: str | None) -> str | None:
    if not name:
        return None
    lowered = name.lower()
    for prefixes, provider in _MODEL_PROVIDERS:
        if lowered.startswith(prefixes):
            return provider
    return None


def _tools(specs: list[Obj]) -> tuple[ToolSpec, ...]:
    tools: dict[str, ToolSpec] = {}
    for spec in specs:
        name = spec.string("name", required=True)
        assert name is not None
        if name in tools:
            continue
        kind = spec.string("type") or "custom"
        parameters = spec.obj("parameters")
        tools[name] = ToolSpec(
            name=name,
            description=spec.string("description") or "",
            kind=_TOOL_KINDS.get(kind, kind),
            server_url=spec.string("url"),
            **({"parameters": dict(parameters.data)} if parameters is not None else {}),
        )
    return tuple(tools.values())


def _variables(call: Call, llm: Obj, texts: list[str | None]) -> dict[str, str]:
    """Default variables, overridden by the call's; Retell's own only where the text uses them."""
    values = {k: _as_text(v) for k, v in llm.mapping("default_dynamic_variables").items()}
    body, path = call_body(call.raw)
    call_obj = llm.child(body, path)
    for name, value in call_obj.mapping("retell_llm_dynamic_variables").items():
        values[name] = _as_text(value)
    text = "\n".join(t for t in texts if t)
    for name, value in _system_variables(call_obj).items():
        if name not in values and re.search(r"\{\{\s*" + name + r"\s*\}\}", text):
            values[name] = value
    return {k: v for k, v in values.items() if v is not None}


def _system_variables(call: Obj) -> dict[str, str]:
    """The variables Retell fills in from the call itself."""
    direction = call.data.get("direction")
    user_key, agent_key = (
        ("to_number", "from_number") if direction == "outbound" else ("from_number", "to_number")
    )
    found = {
        "call_id": call.data.get("call_id"),
        "direction": direction,
        "user_number": call.data.get(user_key),
        "agent_number": call.data.get(agent_key),
    }
    return {k: v for k, v in found.items() if isinstance(v, str)}


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _source(call: Call, a: Obj, l_: Obj | None, engine: Obj | None) -> SnapshotSource:
    llm_id = l_.string("llm_id") if l_ else None
    llm_version = l_.ident("version") if l_ else None
    if engine is not None:
        llm_id = llm_id or engine.string("llm_id") or engine.string("conversation_flow_id")
        llm_version = llm_version or engine.ident("version")
    return SnapshotSource(
        provider="retell",
        agent_id=a.string("agent_id") or call.agent_id,
        agent_version=a.ident("version") or call.agent_version,
        llm_id=llm_id,
        llm_version=llm_version,
        call_id=call.call_id,
    )
