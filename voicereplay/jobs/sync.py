"""``serve --sync-every``: list the providers' recent calls now and then, and treat each one
missing from the store as if its webhook had arrived (:func:`voicereplay.pipeline.triggers.
sync_calls`).

Webhooks get missed — Vapi does not retry a server message unless the user set a backoff plan,
and Retell gives up after three tries — so a periodic sync is the safety net. Each round asks
for calls since the previous round started, with one interval of overlap (a call listed twice
is found stored, or its backfill event already stored, and skipped); the first round looks back
one day. It runs on a daemon thread; a failing round (a provider outage) is logged and the next
round tries again.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from voicereplay.config import Settings
from voicereplay.errors import VoiceReplayError
from voicereplay.pipeline.queue import JobQueue
from voicereplay.pipeline.triggers import SyncReport, sync_calls
from voicereplay.store.tables import utcnow

__all__ = ["FIRST_LOOK_BACK", "PeriodicSync", "sync_providers"]

log = logging.getLogger("voicereplay.sync")

FIRST_LOOK_BACK = timedelta(days=1)


def sync_providers(settings: Settings) -> list[str]:
    """The providers a sync can list: those with an API key."""
    return [name for name in ("vapi", "retell") if getattr(settings, f"{name}_api_key")]


class PeriodicSync:
    """Sync every ``every`` seconds until :meth:`stop`."""

    def __init__(self, queue: JobQueue, every: float, *, providers: list[str] | None = None,
                 first_look_back: timedelta = FIRST_LOOK_BACK) -> None:
        self.queue = queue
        self.first_look_back = first_look_back
        self.every = every
        self.providers = providers if providers is not None else sync_providers(queue.settings)
        self.last: dict[str, SyncReport] = {}
        self._since: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voicereplay-sync", daemon=True)

    def start(self) -> None:
        if not self.providers:
            log.warning("--sync-every: no provider API key (VAPI_API_KEY, RETELL_API_KEY) is "
                        "set, so there is nothing to sync")
            return
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def run_once(self) -> list[SyncReport]:
        """One round over every provider; a provider that fails is logged and skipped."""
        reports = []
        for provider in self.providers:
            started = utcnow()
            since = self._since.get(provider, started - self.first_look_back)
            try:
                report = sync_calls(self.queue.store, self.queue.settings,
                                    self.queue.submit_job, provider, since=since)
            except VoiceReplayError as exc:
                log.warning("sync of %s calls failed (the next round tries again): %s",
                            provider, exc)
                continue
            self._since[provider] = started - timedelta(seconds=self.every)
            self.last[provider] = report
            reports.append(report)
            if report.events:
                log.info("sync: %d new %s call(s) of %d listed; their events are queued",
                         len(report.events), provider, report.listed)
        return reports

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.every)
