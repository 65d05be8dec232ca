"""A call as a provider's webhook delivered it, imported with everything it names at once.

:class:`WebhookSource` is a :class:`~voicereplay.providers.base.CallProvider` over one call
parsed from a webhook body (a Vapi ``end-of-call-report``, a Retell ``call_ended`` or
``call_analyzed``), so the ordinary import (:func:`voicereplay.pipeline.importing.import_calls`)
stores it, its agent snapshot and its recordings:

- the call is the webhook's, not fetched again (in PCI/HIPAA setups the webhook may be the only
  copy the provider ever sends);
- recordings are downloaded from the **presigned URLs in the body first** (they expire, so they
  are used while they work), without the API key; when one fails the provider API is asked
  (Vapi's ``/call/{id}/recording``), which needs a key;
- the snapshot is the resolved assistant inline in a Vapi report, else the provider's API
  (Retell webhooks carry only the agent id and version);
- knowledge-base contents behind a URL (Retell) are fetched as the provider's client does,
  without the API key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime

from voicereplay.errors import NotFoundError, ProviderError, RecordingError
from voicereplay.models import Call, Recording
from voicereplay.providers.base import CallProvider
from voicereplay.snapshot import AgentSnapshot

__all__ = ["WebhookSource"]


class WebhookSource(CallProvider):
    """``call`` (from a webhook body) over ``api``: the provider's client, with or without a
    key, for what the body lacks."""

    def __init__(self, call: Call, api: CallProvider) -> None:
        self.call = call
        self.api = api
        self.name = api.name  # type: ignore[misc]  # a per-instance provider name

    def close(self) -> None:
        self.api.close()

    def get_call(self, call_id: str) -> Call:
        if call_id != self.call.call_id:
            raise NotFoundError(f"the webhook carries call {self.call.call_id}, not {call_id}",
                                provider=self.api.name, status=404)
        return self.call

    def list_calls(self, *, since: datetime | None = None, until: datetime | None = None,
                   limit: int | None = None) -> Iterator[Call]:
        yield self.call

    def get_snapshot(self, call: Call) -> AgentSnapshot:
        return self.api.get_snapshot(call)

    def fetch_knowledge(self, call: Call) -> Call:
        return self.api.fetch_knowledge(call)

    def open_recording(self, call: Call, recording: Recording
                       ) -> AbstractContextManager[Iterator[bytes]]:
        return self._download(call, recording)

    @contextmanager
    def _download(self, call: Call, recording: Recording) -> Iterator[Iterator[bytes]]:
        http = getattr(self.api, "http", None)
        url = recording.url or ""
        with ExitStack() as stack:
            if http is None or not url.startswith(("http://", "https://")):
                yield stack.enter_context(self.api.open_recording(call, recording))
                return
            what = f"the {recording.kind} recording of call {call.call_id}"
            try:  # a presigned URL: never with the API key
                chunks = stack.enter_context(http.stream(url, what=what, authorize=False))
            except ProviderError as presigned:
                try:
                    chunks = stack.enter_context(self.api.open_recording(call, recording))
                except ProviderError as api:
                    raise RecordingError(
                        f"{what} could not be downloaded: its URL in the webhook "
                        f"({_short(url)}) failed with HTTP {presigned.status or 'error'}, and "
                        f"the {self.api.name} API: {api}", provider=self.api.name,
                        status=presigned.status) from presigned
            yield chunks


def _short(url: str) -> str:
    """The URL without its query string (a presigned URL's signature)."""
    return url.split("?", 1)[0]
