"""The replay form of the web app: its fields as typed text, and the :class:`ReplayRequest`
they make.

A person edits the system prompt (pre-filled with the call's own), picks a mode and model,
and may paste tool mocks and checks as YAML. :func:`request_from_form` turns that text into a
request or one :class:`~voicereplay.errors.ConfigError` naming the field, so the form can be
shown again with the error and nothing lost. A prompt left as it was is no override.

:func:`batch_request_from_form` reads the same fields for a batch (every selected call gets
them): there is no one call's prompt to compare with, so a prompt typed is an override.
"""

from __future__ import annotations

import uuid
from typing import Any, get_args

import yaml
from pydantic import BaseModel, Field

from voicereplay.checks import parse_checks
from voicereplay.errors import ConfigError
from voicereplay.models import Call, ReplayMode
from voicereplay.pipeline.request import CallRef, ReplayRequest
from voicereplay.snapshot import AgentSnapshot

__all__ = ["MODES", "ReplayForm", "backend_choices", "batch_request_from_form", "form_for",
           "request_from_form"]

MODES: tuple[str, ...] = get_args(ReplayMode)


class ReplayForm(BaseModel):
    """The form's fields exactly as typed (empty: the default)."""

    mode: str = "scripted"
    model: str = ""
    llm_base_url: str = ""
    system_prompt: str = ""
    temperature: str = ""
    seed: str = ""
    runs: str = "1"
    tool_mocks: str = Field(default="", description="YAML: tool name → the result to return")
    checks: str = Field(default="", description="YAML: a list of checks (or {checks: [...]})")
    stt: str = ""
    llm: str = ""
    tts: str = ""
    caller_tts: str = ""
    submission: str = Field(default="", description="one form, one job (idempotency key)")


def form_for(snapshot: AgentSnapshot | None) -> ReplayForm:
    """A fresh form: the call's own system prompt, a new submission key."""
    return ReplayForm(system_prompt=(snapshot.system_prompt or "") if snapshot else "",
                      submission=uuid.uuid4().hex)


def backend_choices() -> dict[str, list[str]]:
    """The registered backends of each stage (plugins' too), for the form's choices."""
    from voicereplay.simulate.stages import LLMS, STT, TTS

    return {"stt": STT.names(), "llm": LLMS.names(), "tts": TTS.names(),
            "caller_tts": TTS.names()}


def _same(a: str, b: str) -> bool:
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def _number(text: str, field: str, kind: type[int] | type[float]) -> int | float | None:
    if not text.strip():
        return None
    try:
        return kind(text.strip())
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{field}: {text.strip()!r} is not {what}") from None


def _yaml(text: str, field: str) -> Any:
    if not text.strip():
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be read"
        raise ConfigError(f"{field}: not valid YAML: {problem}{where}") from None


def request_from_form(call: Call, snapshot: AgentSnapshot | None,
                      form: ReplayForm) -> ReplayRequest:
    """The replay request the form asks for (see the module docs)."""
    original = (snapshot.system_prompt or "") if snapshot else ""
    return _request(CallRef(call_id=call.call_id, provider=call.provider), original, form)


def batch_request_from_form(form: ReplayForm) -> ReplayRequest:
    """The request every call of a batch gets (its ``call`` a placeholder, as the batch
    stores the request without it)."""
    return _request(CallRef(call_id="*"), "", form)


def _request(call: CallRef, original: str, form: ReplayForm) -> ReplayRequest:
    if form.mode not in MODES:
        raise ConfigError(f"mode: {form.mode!r}: use one of {', '.join(MODES)}")
    fields: dict[str, Any] = {"call": call, "mode": form.mode}
    if form.system_prompt.strip() and not _same(form.system_prompt, original):
        fields["system_prompt"] = form.system_prompt.replace("\r\n", "\n")
    for name in ("model", "llm_base_url", "stt", "llm", "tts", "caller_tts"):
        value = getattr(form, name).strip()
        if value:
            fields[name] = value
    fields["temperature"] = _number(form.temperature, "temperature", float)
    fields["seed"] = _number(form.seed, "seed", int)
    fields["runs"] = _number(form.runs, "runs", int) or 1
    mocks = _yaml(form.tool_mocks, "tool mocks")
    if mocks is not None:
        if not isinstance(mocks, dict):
            raise ConfigError("tool mocks: expected a mapping of tool name → result")
        fields["tool_mocks"] = mocks
    checks = _yaml(form.checks, "checks")
    if checks is not None:
        fields["checks"] = parse_checks(checks, "checks")
    return ReplayRequest.checked(**{k: v for k, v in fields.items() if v is not None})
