"""The ``openai-compatible`` LLM backend: any Chat Completions endpoint over HTTP.

OpenAI itself, Groq, Together, DeepSeek, OpenRouter, vLLM, Ollama, ``llama_cpp.server`` — any
server that answers ``POST {base_url}/chat/completions``. The request streams (``stream: true``
with ``stream_options.include_usage``); text deltas are yielded as they arrive, so the stage's
time-to-first-token is real. A server that ignores ``stream`` and answers one JSON body works too.

:class:`ChunkAssembler` turns Chat Completions chunks (streamed or whole) into
:class:`~voicereplay.simulate.stages.ChatDelta`; the in-process llama.cpp backend reuses it.

A small model behind a server without a tool-call parser may write its call into ``content``
(``<tool_call>{…}</tool_call>``, a fenced json block, bare JSON naming an offered tool); when
tools are offered and the reply has no ``tool_calls``, such text becomes a tool call, checked
against the tool's schema (:mod:`voicereplay.simulate.toolcall_text`), and is not spoken.

Errors are :class:`~voicereplay.errors.StageError` with ``stage="openai-compatible"``:

    401/403                 StageAuthError (exit code 3), not retryable; check the API key
                            (the key is never printed)
    404                     not retryable; names the model and the base URL
    408/429/5xx             retryable
    timeouts, connection    retryable
    other 4xx               not retryable; the server's message, with the key redacted
    malformed SSE/JSON      not retryable
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx

from voicereplay.errors import StageAuthError, StageError
from voicereplay.models import ToolCall
from voicereplay.retry import parse_retry_after
from voicereplay.simulate.stages import LLMS, ChatDelta, ChatRequest, LanguageModel
from voicereplay.simulate.toolcall_text import with_text_tool_calls

log = logging.getLogger(__name__)

__all__ = ["ChunkAssembler", "OpenAICompatibleLLM"]

STAGE = "openai-compatible"
_RETRYABLE_STATUS = {408, 429}


class ChunkAssembler:
    """Chat Completions chunks → :class:`ChatDelta`, accumulating tool calls by ``index``.

    Feed each chunk (a streamed ``chat.completion.chunk`` or a whole ``chat.completion``) to
    :meth:`feed`; call :meth:`finish` at the end of the stream for tool calls still open. A tool
    call is yielded once it is complete: when a later one starts, at ``finish_reason``, or at
    the end.
    """

    def __init__(self, where: str = STAGE, *, stage: str = STAGE) -> None:
        self.where = where  # how errors name the source, e.g. "openai-compatible (URL)"
        self.stage = stage
        self._open: dict[int, dict[str, Any]] = {}  # index → {id, name, arguments: [str]}
        self._emitted = 0
        self._highest = -1
        self.finished = False  # a finish_reason was seen

    def feed(self, chunk: Any) -> Iterator[ChatDelta]:
        if not isinstance(chunk, Mapping):
            raise StageError(f"{self.where}: expected a JSON object, got {_excerpt(chunk)}",
                             stage=self.stage)
        if isinstance(chunk.get("error"), Mapping | str):
            raise StageError(f"{self.where}: the server sent an error: {_error_text(chunk)}",
                             stage=self.stage)
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise StageError(f"{self.where}: 'choices' is not a list in {_excerpt(chunk)}",
                             stage=self.stage)
        for choice in choices:
            if not isinstance(choice, Mapping) or choice.get("index", 0) not in (0, None):
                continue  # n > 1 is never asked for; keep the first choice only
            part = choice.get("delta") or choice.get("message") or {}
            if not isinstance(part, Mapping):
                raise StageError(f"{self.where}: malformed choice {_excerpt(choice)}",
                                 stage=self.stage)
            text = part.get("content")
            if isinstance(text, str) and text:
                yield ChatDelta(text=text)
            calls = part.get("tool_calls") or []
            if not isinstance(calls, list):
                raise StageError(f"{self.where}: 'tool_calls' is not a list", stage=self.stage)
            whole = "delta" not in choice  # a whole message: every entry is a complete call
            for call in calls:
                yield from self._tool_delta(call, whole)
            finish = choice.get("finish_reason")
            if finish:
                self.finished = True
                yield from self._close()
                yield ChatDelta(finish_reason=str(finish))
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            yield ChatDelta(prompt_tokens=_int(usage.get("prompt_tokens")),
                            completion_tokens=_int(usage.get("completion_tokens")))

    def finish(self) -> Iterator[ChatDelta]:
        yield from self._close()

    def _tool_delta(self, call: Any, whole: bool) -> Iterator[ChatDelta]:
        if not isinstance(call, Mapping):
            raise StageError(f"{self.where}: malformed tool call {_excerpt(call)}",
                             stage=self.stage)
        function = call.get("function") or {}
        if not isinstance(function, Mapping):
            raise StageError(f"{self.where}: malformed tool call {_excerpt(call)}",
                             stage=self.stage)
        index = call.get("index")
        if whole or not isinstance(index, int):  # some servers omit the index
            index = self._index_for(call.get("id"), whole)
        self._highest = max(self._highest, index)
        for earlier in [i for i in self._open if i < index]:
            yield from self._close(earlier)  # calls stream one after another
        slot = self._open.setdefault(index, {"id": None, "name": "", "arguments": []})
        slot["id"] = slot["id"] or call.get("id")
        slot["name"] = slot["name"] or str(function.get("name") or "")
        arguments = function.get("arguments")
        if isinstance(arguments, Mapping):
            slot["arguments"].append(json.dumps(arguments))
        elif arguments:
            slot["arguments"].append(str(arguments))

    def _index_for(self, call_id: Any, whole: bool) -> int:
        if not whole:
            for index, slot in self._open.items():
                if call_id and slot["id"] == call_id:
                    return index
            if not call_id and self._open:
                return max(self._open)  # a continuation of the call being streamed
        return self._highest + 1

    def _close(self, only: int | None = None) -> Iterator[ChatDelta]:
        for index in sorted(self._open) if only is None else [only]:
            slot = self._open.pop(index)
            self._emitted += 1
            yield ChatDelta(tool_call=_tool_call(slot, self._emitted))


class OpenAICompatibleLLM(LanguageModel):
    """Chat Completions over HTTP. ``base_url`` ends before ``/chat/completions``
    (``https://api.openai.com/v1``); ``model`` is the default when a request names none."""

    name = STAGE

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        model: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
        key_env: str | None = None,
        max_retries: int | None = None,
        backoff: float | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base.removesuffix("/chat/completions")
        self.model = model
        self.timeout = timeout
        self.key_env = key_env  # only to say where the key came from in error messages
        if max_retries is not None:
            self.max_retries = max_retries
        if backoff is not None:
            self.backoff = backoff
        self._api_key = api_key
        all_headers = {"Accept": "text/event-stream, application/json", **(headers or {})}
        if api_key:
            all_headers["Authorization"] = f"Bearer {api_key}"
        self._secrets = [s for s in (api_key, *(headers or {}).values()) if s and len(s) >= 8]
        self._client = httpx.Client(transport=transport, timeout=timeout, headers=all_headers)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:  # never the key
        return f"OpenAICompatibleLLM(base_url={self.base_url!r}, model={self.model!r})"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        body: dict[str, Any] = {
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        model = request.model or self.model
        if model:
            body["model"] = model
        if request.tools:
            body["tools"] = request.tools
            if request.tool_choice is not None:
                body["tool_choice"] = request.tool_choice
        for key in ("temperature", "max_tokens", "seed", "response_format"):
            value = getattr(request, key)
            if value is not None:
                body[key] = value
        return body

    def _stream_impl(self, request: ChatRequest) -> Iterator[ChatDelta]:
        tools = request.tools if request.tool_choice != "none" else []
        problems: list[str] = []
        yield from with_text_tool_calls(self._stream(request), tools, problems)
        for problem in dict.fromkeys(problems):
            log.warning("%s (%s): the model wrote a tool call whose arguments do not fit the "
                        "schema: %s", STAGE, self.base_url, problem)

    def _stream(self, request: ChatRequest) -> Iterator[ChatDelta]:
        body = self.body(request)
        url = f"{self.base_url}/chat/completions"
        assembler = ChunkAssembler(f"{STAGE} ({self.base_url})")
        try:
            with self._client.stream("POST", url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._http_error(response, body.get("model"))
                kind = response.headers.get("content-type", "")
                if "event-stream" in kind:
                    yield from self._from_sse(response.iter_lines(), assembler)
                else:
                    yield from self._from_body(response.read().decode("utf-8", "replace"),
                                               assembler)
        except StageError as exc:
            if self._redact(exc.message) == exc.message:
                raise
            raise type(exc)(self._redact(exc.message), stage=STAGE, retryable=exc.retryable,
                            retry_after=exc.retry_after) from None  # the cause holds the secret
        except httpx.TimeoutException as exc:
            raise StageError(f"{STAGE}: {url} timed out after {self.timeout:g} s "
                             f"({type(exc).__name__})", stage=STAGE, retryable=True) from exc
        except httpx.TransportError as exc:  # connect, read, remote-protocol errors
            raise StageError(f"{STAGE}: could not talk to {self.base_url}: "
                             f"{type(exc).__name__}: {self._redact(str(exc))}",
                             stage=STAGE, retryable=True) from exc

    def _from_sse(self, lines: Iterable[str], assembler: ChunkAssembler) -> Iterator[ChatDelta]:
        data: list[str] = []
        done = False
        for line in _then_blank(lines):
            if line.startswith(":") or line.startswith(("event:", "id:", "retry:")):
                continue  # comments (keep-alives) and fields we do not need
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
                continue
            if line.strip():
                raise StageError(f"{STAGE} ({self.base_url}): malformed server-sent event line "
                                 f"{_excerpt(line)}", stage=STAGE)
            if not data:
                continue
            payload, data = "\n".join(data), []
            if payload.strip() == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(payload)
            except json.JSONDecodeError as exc:
                raise StageError(f"{STAGE} ({self.base_url}): a streamed chunk is not JSON: "
                                 f"{_excerpt(payload)}", stage=STAGE) from exc
            yield from assembler.feed(chunk)
        if not done and not assembler.finished:
            raise StageError(f"{STAGE} ({self.base_url}): the stream ended before the reply "
                             "finished (no finish_reason, no [DONE]); the server failed while "
                             "answering, and its log says why", stage=STAGE)
        yield from assembler.finish()

    def _from_body(self, text: str, assembler: ChunkAssembler) -> Iterator[ChatDelta]:
        if text.lstrip().startswith("data:"):  # SSE sent with the wrong content type
            yield from self._from_sse(text.splitlines(), assembler)
            return
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StageError(f"{STAGE} ({self.base_url}): the answer is neither server-sent "
                             f"events nor JSON: {_excerpt(text)}", stage=STAGE) from exc
        if not isinstance(whole, Mapping) or not ("choices" in whole or "error" in whole):
            raise StageError(f"{STAGE} ({self.base_url}): the answer is JSON but no chat "
                             f"completion: {_excerpt(whole)}", stage=STAGE)
        yield from assembler.feed(whole)
        yield from assembler.finish()

    def _http_error(self, response: httpx.Response, model: Any) -> StageError:
        status = response.status_code
        where = f"{self.base_url} answered HTTP {status}"
        if status in (401, 403):
            key = (f"the {self.key_env} environment variable or --llm-api-key" if self.key_env
                   else "the --llm-api-key option or the provider's API key environment variable")
            missing = "no API key was sent" if not self._api_key else "the API key was rejected"
            return StageAuthError(f"{STAGE}: {where}: {missing}; check {key}", stage=STAGE)
        detail = self._redact(_error_text(response.text))
        if status == 404:
            return StageError(
                f"{STAGE}: {where} for model {model!r} at {response.request.url}: the model or "
                f"the path is wrong (check --model and that --llm-base-url ends where "
                f"/chat/completions begins, usually /v1): {detail}", stage=STAGE)
        retryable = status in _RETRYABLE_STATUS or status >= 500
        return StageError(f"{STAGE}: {where}: {detail}", stage=STAGE, retryable=retryable,
                          retry_after=parse_retry_after(response.headers.get("Retry-After")))

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _then_blank(lines: Iterable[str]) -> Iterator[str]:
    yield from lines
    yield ""  # a stream that ends without a blank line still dispatches its last event


def _tool_call(slot: Mapping[str, Any], number: int) -> ToolCall:
    raw = "".join(slot["arguments"])
    arguments: dict[str, Any] = {}
    raw_arguments: str | None = None
    if raw.strip():
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            arguments = parsed
        else:
            raw_arguments = raw
    return ToolCall(id=slot["id"] or f"call_{number}", name=slot["name"], arguments=arguments,
                    raw_arguments=raw_arguments)


def _error_text(body: Any) -> str:
    """The message of an OpenAI-style error body, else a short excerpt of the body."""
    data = body
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            return _excerpt(body) if body.strip() else "(empty body)"
    if isinstance(data, Mapping):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
    return _excerpt(data)


def _excerpt(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


LLMS.register(STAGE, OpenAICompatibleLLM)
