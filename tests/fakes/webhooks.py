"""What sits around a webhook in production, on loopback: the provider's recording storage
(presigned URLs), the provider posting its webhooks, and the team's notification receiver.

- :class:`Storage` serves recordings at ``/rec/<name>?X-Amz-Signature=…`` without a key, like
  the signed URLs in a Vapi report or a Retell call (fault injection comes from
  :func:`tests.fakes.server.serve`, e.g. a 404 while the file "is not there yet");
- :func:`vapi_report` builds a real-shaped ``end-of-call-report`` from the bundled demo call,
  its recording URLs pointing at a :class:`Storage`; :func:`post_vapi` posts it the way Vapi
  does, with the shared secret in ``X-Vapi-Secret``;
- :func:`retell_events` builds the ``call_ended`` / ``call_analyzed`` pair of one Retell call,
  and :func:`post_retell` signs a body with ``retell-sdk``'s own signing function;
- :class:`Receiver` records what notifications arrive (JSON bodies, by path).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from retell.lib import webhook_auth
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.retell_samples import sample_agent, sample_call, sample_llm

__all__ = ["Receiver", "Storage", "post_retell", "post_vapi", "retell_events", "vapi_report"]

DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo"
DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"


class Storage:
    """Recording files served by name, no key needed (presigned URLs)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.app = Starlette(routes=[Route("/rec/{name}", self._get, methods=["GET"])])

    def url(self, base: str, name: str) -> str:
        return f"{base}/rec/{name}?X-Amz-Signature=sig{int(time.time() * 1000)}"

    async def _get(self, request: Request) -> Response:
        data = self.files.get(request.path_params["name"])
        if data is None:
            return JSONResponse({"message": "NoSuchKey"}, status_code=404)
        return Response(data, media_type="audio/wav")


class Receiver:
    """Collects POSTed JSON bodies by path (``/hook/<name>``)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hook/{name}", self._post, methods=["POST"])])

    async def _post(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.bodies.append((request.path_params["name"], body))
        return JSONResponse({"ok": True})

    def received(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for path, body in self.bodies if path == name]


def vapi_report(storage: Storage, storage_url: str, *, call_id: str = DEMO_CALL
                ) -> dict[str, Any]:
    """The demo call as Vapi's end-of-call-report (``message.call`` as created, the resolved
    ``message.assistant``, the artifact with presigned recording URLs into ``storage``)."""
    call = json.loads((DEMO / "demo-refund.json").read_text(encoding="utf-8"))
    assistant = json.loads((DEMO / "demo-refund.assistant.json").read_text(encoding="utf-8"))
    artifact = copy.deepcopy(call["artifact"])
    urls = {}
    for kind in ("stereo", "mixed", "customer", "agent"):
        name = f"{call_id}-{kind}.wav"
        storage.files[name] = (DEMO / f"demo-refund.{kind}.wav").read_bytes()
        urls[kind] = storage.url(storage_url, name)
    artifact["recordingUrl"], artifact["stereoRecordingUrl"] = urls["mixed"], urls["stereo"]
    artifact["recording"] = {"stereoUrl": urls["stereo"], "mono": {
        "combinedUrl": urls["mixed"], "customerUrl": urls["customer"],
        "assistantUrl": urls["agent"]}}
    created = {key: call[key] for key in ("assistantId", "phoneNumberId", "type", "createdAt",
                                          "updatedAt", "orgId", "customer",
                                          "assistantOverrides") if key in call}
    return {"message": {
        "type": "end-of-call-report", "timestamp": 1749746600000,
        "call": {"id": call_id, **created, "status": "queued"},
        "assistant": assistant, "customer": call.get("customer"),
        "artifact": artifact, "analysis": call["analysis"],
        "endedReason": call["endedReason"], "startedAt": call["startedAt"],
        "endedAt": call["endedAt"], "cost": call["cost"], "costs": call.get("costs", []),
        "recordingUrl": urls["mixed"], "stereoRecordingUrl": urls["stereo"],
        "transcript": call.get("transcript"), "messages": call.get("messages"),
        "summary": call["analysis"].get("summary")}}


def post_vapi(serve_url: str, body: dict[str, Any], secret: str) -> httpx.Response:
    return httpx.post(f"{serve_url}/webhooks/vapi", content=json.dumps(body).encode(),
                      headers={"content-type": "application/json", "x-vapi-secret": secret},
                      timeout=30)


def retell_events(storage: Storage, storage_url: str, *, call_id: str = "call_hook1",
                  successful: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """``call_ended`` (no ``call_analysis``) and ``call_analyzed`` bodies of one call."""
    call = sample_call(call_id)
    name = f"{call_id}.wav"
    from tests.fakes.retell_samples import tiny_wav

    storage.files[name] = tiny_wav(seconds=17.5, channels=1)
    call["recording_url"] = storage.url(storage_url, name)
    call.pop("recording_multi_channel_url", None)
    call["call_analysis"]["call_successful"] = successful
    ended = {k: v for k, v in call.items() if k != "call_analysis"}
    return {"event": "call_ended", "call": ended}, {"event": "call_analyzed", "call": call}


RETELL_AGENT, RETELL_LLM = sample_agent, sample_llm


def post_retell(serve_url: str, body: dict[str, Any], key: str) -> httpx.Response:
    raw = json.dumps(body, separators=(",", ":"))
    signature = webhook_auth.symmetric["sign"](raw, key, int(time.time() * 1000))
    return httpx.post(f"{serve_url}/webhooks/retell", content=raw.encode(),
                      headers={"content-type": "application/json",
                               "x-retell-signature": signature}, timeout=30)
