"""The options of a replay, shared by ``voicereplay call`` and ``voicereplay batch run``.

Typer reads options from a command's signature, so each command lists these parameters; the
types, flags and help live here once, and :func:`replay_request` turns the values into the
:class:`~voicereplay.pipeline.ReplayRequest` both commands run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from voicereplay.cli.compare import report_options
from voicereplay.errors import ConfigError
from voicereplay.models import ReplayMode
from voicereplay.pipeline import CallRef, ReplayRequest

__all__ = ["CallerTtsOpt", "LiveToolsOpt", "LlmBackendOpt", "LlmKeyOpt", "LlmUrlOpt", "MockOpt",
           "ModeOpt", "ModelOpt", "OverridesOpt", "PromptOpt", "RunsOpt", "SeedOpt", "SetOpt",
           "SttModelOpt", "SttOpt", "TemperatureOpt", "TtsOpt", "parse_mocks", "replay_request"]

ModeOpt = Annotated[str, typer.Option(help="scripted, turn or adaptive.")]
LlmUrlOpt = Annotated[str | None, typer.Option(
    "--llm-base-url", help="Any OpenAI-compatible Chat Completions endpoint (default: "
                           "VOICEREPLAY_LLM_BASE_URL).")]
LlmKeyOpt = Annotated[str | None, typer.Option(
    "--llm-api-key", help="Key for --llm-base-url (default: VOICEREPLAY_LLM_API_KEY).")]
ModelOpt = Annotated[str | None, typer.Option(
    help="LLM: a model name for the snapshot's provider, 'local' (embedded SmolLM2), a .gguf "
         "path, or 'recorded' (the baseline's replies).")]
PromptOpt = Annotated[Path | None, typer.Option(help="Replace the system prompt.")]
TemperatureOpt = Annotated[float | None, typer.Option(min=0, max=2)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="key=value override, e.g. model.max_tokens=150 (repeatable).")]
OverridesOpt = Annotated[Path | None, typer.Option(help="YAML file of overrides.")]
MockOpt = Annotated[list[str] | None, typer.Option(
    help="tool=result served for a tool call with no recorded result (repeatable).")]
LiveToolsOpt = Annotated[bool, typer.Option(
    "--live-tools", help="Call the real tool server for tools with no recorded result.")]
SeedOpt = Annotated[int | None, typer.Option(help="Seed passed to every stage.")]
RunsOpt = Annotated[int, typer.Option(min=1, max=50, help="Replay N times (one batch).")]
SttModelOpt = Annotated[str | None, typer.Option(
    help="Path of another CTranslate2 Whisper model (e.g. Whisper base).")]
SttOpt = Annotated[str, typer.Option(help="Speech-to-text backend (registered name).")]
TtsOpt = Annotated[str, typer.Option(help="The agent's text-to-speech backend.")]
CallerTtsOpt = Annotated[str, typer.Option(
    help="The caller's voice when a caller turn has no usable audio.")]
LlmBackendOpt = Annotated[str | None, typer.Option(
    help="An LLM backend registered by name (a plugin's); default: chosen from --model and "
         "--llm-base-url.")]


def parse_mocks(pairs: list[str]) -> dict[str, Any]:
    """``tool=result`` pairs (the result JSON, else a string)."""
    mocks: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--mock {pair!r}: expected tool=result, e.g. "
                              "check_status='{\"status\":\"shipped\"}'")
        try:
            mocks[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            mocks[name.strip()] = raw
    return mocks


def replay_request(call: CallRef, *, mode: str, overrides: Path | None,
                   prompt_file: Path | None, checks: Path | None, set_: list[str] | None,
                   mock: list[str] | None, llm_backend: str | None, similarity: str | None,
                   figures: str, judge_model: str | None, judge_base_url: str | None,
                   csat: bool = False, **fields: Any) -> ReplayRequest:
    """The request the options describe (files read, mocks parsed, one clear error)."""
    if mode not in get_args(ReplayMode):
        raise ConfigError(f"--mode {mode!r}: use scripted, turn or adaptive")
    return ReplayRequest.from_files(
        call, overrides_file=overrides, prompt_file=prompt_file, checks_file=checks,
        set=list(set_ or []), mode=mode, llm=llm_backend, tool_mocks=parse_mocks(mock or []),
        report=report_options(similarity=similarity, figures=figures, judge_model=judge_model,
                              judge_base_url=judge_base_url, csat=csat),
        **fields)
