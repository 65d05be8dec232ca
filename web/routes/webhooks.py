"""``/webhooks/vapi`` and ``/webhooks/retell``: provider webhooks, verified by their signature
(not the API token: :data:`~voicereplay.web.security.PUBLIC_PREFIXES` exempts them) and stored
before the 200 (:func:`voicereplay.pipeline.webhooks.receive`). Nothing slow runs here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from voicereplay.pipeline.webhooks import receive
from voicereplay.web.deps import SettingsDep, StoreDep

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


async def _receive(provider: str, request: Request, store: Any, settings: Any
                   ) -> dict[str, Any]:
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    receipt = await run_in_threadpool(receive, provider, store, settings, body, headers)
    return receipt.as_json()


@router.post("/vapi")
async def vapi_webhook(request: Request, store: StoreDep, settings: SettingsDep
                       ) -> dict[str, Any]:
    """A Vapi server message: ``end-of-call-report`` and ``status-update`` are stored, other
    types acknowledged and ignored."""
    return await _receive("vapi", request, store, settings)


@router.post("/retell")
async def retell_webhook(request: Request, store: StoreDep, settings: SettingsDep
                         ) -> dict[str, Any]:
    """A Retell webhook: ``call_ended`` and ``call_analyzed`` are stored, other events
    acknowledged and ignored."""
    return await _receive("retell", request, store, settings)
