"""Answering the agent's tool calls during a replay, without repeating real side effects.

:class:`ToolServer` answers each call by this policy, first match wins:

1. **recorded** — the result the original call got for the same tool name *and* arguments
   (arguments compared as parsed JSON, so key order and whitespace do not matter). A recorded
   result can be served any number of times.
2. **mock** — a static result the user gave for the tool name (dicts/lists are JSON-encoded).
3. **live** — only when ``live=True``: POST the call to the tool server URL in Vapi's shape,
   ``{"message": {"type": "tool-calls", "toolCallList": [{"id", "name", "arguments"}]}}``, and
   read ``{"results": [{"toolCallId", "result"}]}``. Any failure becomes an error result.
4. **error** — an error result the agent sees (``source="error"``), saying how to supply one.

The end-call tool is not answered here: the replay engine ends the call itself.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from voicereplay.models import Call, ToolCall, ToolResult

__all__ = ["ToolServer"]

_MISSING = object()


class ToolServer:
    """Serves tool results for one replay of ``call`` (see the module docstring)."""

    def __init__(
        self,
        call: Call,
        *,
        mocks: dict[str, Any] | None = None,
        live_url: str | None = None,
        live: bool = False,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.mocks = dict(mocks or {})
        self.live_url = live_url
        self.live = live
        self._transport = transport
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._recorded = _recorded_results(call)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> ToolServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def answer(self, tool_call: ToolCall) -> ToolResult:
        """The result for ``tool_call``; never raises for a tool's own failure."""
        arguments = _arguments(tool_call)
        for name, recorded_arguments, result in self._recorded:
            if name == tool_call.name and recorded_arguments == arguments:
                return ToolResult(id=tool_call.id, name=tool_call.name, result=result.result,
                                  success=result.success, source="recorded")
        if tool_call.name in self.mocks:
            return ToolResult(id=tool_call.id, name=tool_call.name, success=True,
                              result=_as_text(self.mocks[tool_call.name]), source="mock")
        if self.live:
            return self._call_live(tool_call)
        return _error(tool_call, f"tool {tool_call.name} has no recorded result for these "
                                 f"arguments ({_compact(arguments)}); pass --mock "
                                 f"{tool_call.name}=<result> or use --live-tools")

    def _call_live(self, tool_call: ToolCall) -> ToolResult:
        if not self.live_url:
            return _error(tool_call, f"tool {tool_call.name}: live tools are on but no tool "
                                     "server URL is known")
        if self._client is None:
            self._client = httpx.Client(transport=self._transport, timeout=self._timeout)
        body = {"message": {"type": "tool-calls", "toolCallList": [
            {"id": tool_call.id, "name": tool_call.name, "arguments": _arguments(tool_call)}]}}
        where = f"tool {tool_call.name}: live tool server {self.live_url}"
        try:
            response = self._client.post(self.live_url, json=body)
        except httpx.HTTPError as exc:
            return _error(tool_call, f"{where} failed: {type(exc).__name__}: {exc}")
        if response.status_code >= 400:
            return _error(tool_call, f"{where} answered HTTP {response.status_code}")
        try:
            results = response.json()["results"]
            chosen = next((r for r in results if r.get("toolCallId") == tool_call.id),
                          results[0] if len(results) == 1 else None)
            value = chosen.get("result", _MISSING) if isinstance(chosen, dict) else _MISSING
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            value = _MISSING
        if value is _MISSING:
            return _error(tool_call, f'{where} sent no {{"results": [{{"toolCallId", '
                                     f'"result"}}]}} for call {tool_call.id}')
        return ToolResult(id=tool_call.id, name=tool_call.name, result=_as_text(value),
                          success=True, source="live")


def _recorded_results(call: Call) -> list[tuple[str, Any, ToolResult]]:
    """(name, parsed arguments, result) for every tool call of ``call`` that got a result."""
    results: dict[str, ToolResult] = {}
    unnamed: list[ToolResult] = []
    for turn in call.turns:
        if turn.tool_result is not None:
            if turn.tool_result.id:
                results[turn.tool_result.id] = turn.tool_result
            else:
                unnamed.append(turn.tool_result)
    recorded: list[tuple[str, Any, ToolResult]] = []
    for tool_call in call.tool_calls:
        result = results.get(tool_call.id)
        if result is None:  # a result without an id answers the earliest call of its name
            result = next((r for r in unnamed if r.name == tool_call.name), None)
            if result is not None:
                unnamed.remove(result)
        if result is not None:
            recorded.append((tool_call.name, _arguments(tool_call), result))
    return recorded


def _arguments(tool_call: ToolCall) -> Any:
    """The arguments as parsed JSON; text that is not JSON compares as stripped text."""
    if tool_call.raw_arguments is None:
        return tool_call.arguments
    try:
        return json.loads(tool_call.raw_arguments)
    except ValueError:
        return tool_call.raw_arguments.strip()


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _compact(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


def _error(tool_call: ToolCall, message: str) -> ToolResult:
    return ToolResult(id=tool_call.id, name=tool_call.name, success=False, source="error",
                      result=json.dumps({"error": message}, ensure_ascii=False))
