"""``/webhooks/vapi`` and ``/webhooks/retell``: provider webhooks, verified by their signature
(not the API token: :data:`~voicereplay.web.security.PUBLIC_PREFIXES` exempts them) and stored
before the 200 (:func:`voicereplay.pipeline.webhooks.receive`). Nothing slow runs here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from voicereplay.pipeline.webhooks import receive
from voicereplay.web.deps import QueueDep, SettingsDep, StoreDep
from voicereplay.web.security import read_limited

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
MAX_BODY_BYTES = 32 * 1024 * 1024  # a long call's end-of-call-report is a few MB


async def _body(request: Request) -> bytes:
    """The raw body, refused (413) once it passes :data:`MAX_BODY_BYTES` — read before the
    signature can be checked, so an unsigned sender cannot make the server buffer more."""
    body = await read_limited(request, MAX_BODY_BYTES)
    if body is None:
        raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES // 2**20} MB")
    return body


async def _receive(provider: str, request: Request, store: Any, settings: Any, queue: Any
                   ) -> dict[str, Any]:
    body = await _body(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    receipt = await run_in_threadpool(lambda: receive(provider, store, settings, body, headers,
                                                      submit=queue.submit_job))
    return receipt.as_json()


@router.post("/vapi")
async def vapi_webhook(request: Request, store: StoreDep, settings: SettingsDep,
                       queue: QueueDep) -> dict[str, Any]:
    """A Vapi server message: ``end-of-call-report`` and ``status-update`` are stored, other
    types acknowledged and ignored."""
    return await _receive("vapi", request, store, settings, queue)


@router.post("/retell")
async def retell_webhook(request: Request, store: StoreDep, settings: SettingsDep,
                         queue: QueueDep) -> dict[str, Any]:
    """A Retell webhook: ``call_ended`` and ``call_analyzed`` are stored, other events
    acknowledged and ignored."""
    return await _receive("retell", request, store, settings, queue)
