"""What a user asks for when they replay a call: one :class:`ReplayRequest` for every face.

It is the CLI's options (``voicereplay call``), the web form's body and the job payload alike,
so it is plain data: files a user names (overrides YAML, prompt file, checks YAML) are read into
it by :meth:`ReplayRequest.from_files` once, and it serializes to JSON without secrets — API
keys are resolved from the settings (the environment) at run time, or handed to
:func:`~voicereplay.pipeline.calling.run_call` as :class:`Secrets`, never stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voicereplay.compare.checks import Check, load_checks
from voicereplay.errors import ConfigError
from voicereplay.models import ProviderName, ReplayMode
from voicereplay.snapshot import Overrides

__all__ = ["CallRef", "ReplayRequest", "ReportOptions", "Secrets", "merge_overrides",
           "read_prompt", "read_yaml"]

MAX_RUNS = 50


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallRef(_Strict):
    """The call to replay: stored, or imported from a provider or a folder of call files."""

    call_id: str = Field(min_length=1)
    provider: ProviderName | Literal["files"] | None = None
    directory: Path | None = Field(
        default=None, description="import the call from this folder of exported call files")
    base_url: str | None = Field(
        default=None, description="the provider's API base URL (default: the settings')")


class ReportOptions(_Strict):
    """How replays are compared and which report files are written."""

    similarity: Literal["lexical", "embedding"] | None = Field(
        default=None, description="None: the settings' default (lexical)")
    figures: Literal["png", "svg"] | None = Field(
        default="png", description="format of the latency and waveform charts; None writes "
                                   "no report files")
    out_dir: Path | None = Field(
        default=None, description="write reports here instead of beside the replay's audio")
    judge_model: str | None = Field(
        default=None, description="LLM for llm_judge checks and --csat: local, a .gguf path "
                                  "or a name")
    judge_base_url: str | None = None
    csat: bool = Field(default=False, description="estimate caller satisfaction (1–5) of the "
                                                  "baseline and the replay with the judge model")


class Secrets(BaseModel):
    """Keys a user typed for one run (``--api-key``, ``--llm-api-key``): never serialized."""

    model_config = ConfigDict(frozen=True)

    provider_api_key: str | None = Field(default=None, repr=False, exclude=True)
    llm_api_key: str | None = Field(default=None, repr=False, exclude=True)
    judge_api_key: str | None = Field(default=None, repr=False, exclude=True)


class ReplayRequest(_Strict):
    """Replay one call against its agent snapshot with overrides (see the module docs)."""

    call: CallRef
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="override mapping (the YAML file's content)")
    system_prompt: str | None = Field(default=None, description="replaces the system prompt")
    set: list[str] = Field(default_factory=list, description="dotted key=value overrides")
    mode: ReplayMode = "scripted"
    model: str | None = Field(
        default=None, description="a model name, 'local', a .gguf path, or 'recorded'")
    llm_base_url: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    runs: int = Field(default=1, ge=1, le=MAX_RUNS)
    stt_model: str | None = None
    llm: str | None = Field(
        default=None, description="an LLM backend registered by name (a plugin's); default: "
                                  "chosen from model and llm_base_url")
    stt: str = Field(default="faster-whisper", description="speech-to-text backend by name")
    tts: str = Field(default="piper", description="the agent's text-to-speech backend")
    caller_tts: str = Field(default="piper-caller",
                            description="the synthesized caller's voice (no caller audio)")
    tool_mocks: dict[str, Any] = Field(default_factory=dict)
    live_tools: bool = False
    checks: list[Check] = Field(default_factory=list)
    report: ReportOptions = Field(default_factory=ReportOptions)

    @classmethod
    def from_files(
        cls,
        call: CallRef,
        *,
        overrides_file: Path | None = None,
        prompt_file: Path | None = None,
        checks_file: Path | None = None,
        **fields: Any,
    ) -> ReplayRequest:
        """A request with the files a user named read into it (one clear error per file)."""
        if overrides_file is not None:
            fields["overrides"] = read_yaml(overrides_file, "overrides")
        if prompt_file is not None:
            fields["system_prompt"] = read_prompt(prompt_file)
        if checks_file is not None:
            fields["checks"] = load_checks(checks_file)
        return cls.checked(call=call, **fields)

    @classmethod
    def checked(cls, **fields: Any) -> ReplayRequest:
        """Validate ``fields`` (a form, a job payload) into a request or one ConfigError."""
        from pydantic import ValidationError

        try:
            request = cls.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "request"
            raise ConfigError(f"replay request: {where}: {first['msg']}") from None
        request.agent_overrides()  # fail now on overrides that do not fit, not after a replay
        return request

    def agent_overrides(self) -> Overrides:
        """The overrides: the YAML mapping, then the system prompt, then ``set`` pairs, then
        ``temperature``. (``seed`` is not an agent change: it goes to every stage of the
        replay, so a seeded replay with nothing else set has no overrides.)"""
        pairs = list(self.set)
        if self.temperature is not None:
            pairs.append(f"model.temperature={self.temperature}")
        return merge_overrides(self.overrides, self.system_prompt, pairs)


def merge_overrides(mapping: dict[str, Any], system_prompt: str | None, pairs: list[str], *,
                    source: str = "overrides") -> Overrides:
    """An override mapping (a YAML file's content), then a system prompt, then dotted
    ``key=value`` pairs — the one order every face applies them in."""
    data = dict(mapping)
    if system_prompt is not None:
        data["system_prompt"] = system_prompt
    return Overrides.from_pairs(pairs, base=Overrides.parse(data, source=source))


def _read(path: Path, what: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the {what} {path} is not UTF-8 text (byte {exc.start} is "
                          f"0x{data[exc.start]:02x}); save it as UTF-8") from None


def read_prompt(path: Path) -> str:
    """A system prompt file's text; an empty file is an error, not an empty prompt."""
    text = _read(path, "prompt file")
    if not text.strip():
        raise ConfigError(f"the prompt file {path} is empty; a replay would run the agent "
                          "with no system prompt (write the prompt in it, or leave "
                          "--prompt-file out to keep the snapshot's)")
    return text


def read_yaml(path: Path, what: str) -> dict[str, Any]:
    """The mapping in a YAML (or JSON) file."""
    import yaml

    text = _read(path, f"{what} file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data
