"""A scripted LLM served as OpenAI Chat Completions (streamed SSE) for real-HTTP tests.

    with serve(chat_app(ScriptedLLM({...}), bodies := [])) as server:
        LLMS.create("openai-compatible", base_url=f"{server.url}/v1", model="gpt-4o-mini")

Every request body is appended to ``bodies``. Replies stream as text deltas in two pieces,
then one delta per tool call (id, name, arguments as a JSON string), then the finish reason,
then a usage chunk (prompt/completion token counts from the scripted LLM), then ``[DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.scripted_llm import ScriptedLLM
from voicereplay.simulate.stages import ChatRequest

__all__ = ["chat_app"]


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    body = {"object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n"


def chat_app(llm: ScriptedLLM, bodies: list[dict[str, Any]]) -> Starlette:
    """``POST /v1/chat/completions`` answered by ``llm``."""

    async def completions(request: Request) -> Response:
        body = await request.json()
        bodies.append(body)
        result = llm.complete(ChatRequest(
            messages=body["messages"], tools=body.get("tools") or [],
            temperature=body.get("temperature"), seed=body.get("seed"),
            max_tokens=body.get("max_tokens"), tool_choice=body.get("tool_choice"),
            response_format=body.get("response_format")))

        def events() -> Iterator[str]:
            if result.text:
                for piece in (result.text[:10], result.text[10:]):
                    yield _chunk({"content": piece})
            for n, call in enumerate(result.tool_calls):
                yield _chunk({"tool_calls": [{
                    "index": n, "id": call.id or f"call_{n}", "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }]})
            yield _chunk({}, "tool_calls" if result.tool_calls else "stop")
            usage = {"prompt_tokens": result.prompt_tokens or 0,
                     "completion_tokens": result.completion_tokens or 0}
            chunk = {"object": "chat.completion.chunk", "choices": [], "usage": usage}
            yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
