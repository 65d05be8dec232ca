"""Batches: replay many stored calls against one candidate agent, one replay job per call.

:func:`start_batch` resolves a :class:`BatchSelection` (call ids, a filter of the calls list,
or all calls; then ``sample`` and ``limit``) to calls, stores the batch with the replay request
every call gets, and submits one ``replay`` job per call through the jobs layer (so any
``voicereplay worker`` sharing the store runs them, and a killed worker loses nothing).

**Resuming.** The batch's key is a hash of the selection *as typed* (``since=7d``, not the
date it meant), the request and the name. Starting a batch whose key is stored returns the
stored batch: its calls are the ones resolved the first time, jobs already submitted are kept
(finished ones are not run again), the jobs a killed process never submitted are submitted,
and unfinished ones are delivered again (a job delivered twice runs once). ``fresh=True``
starts a new batch instead. ``retry_failed=True`` runs the failed jobs again.

:func:`batch_status` counts a batch's jobs; :mod:`voicereplay.pipeline.batch_reports` builds
its aggregate from the rows its replay jobs stored.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from voicereplay.errors import ConfigError, NotStoredError
from voicereplay.pipeline.listing import CallFilters
from voicereplay.pipeline.queue import JobQueue
from voicereplay.pipeline.request import ReplayRequest
from voicereplay.store import Store
from voicereplay.store.batches import Batch

__all__ = ["FILTER_FIELDS", "FILTER_KEYS", "BatchSelection", "BatchStart", "BatchStatus",
           "batch_status", "call_request", "parse_filter", "resolve_calls", "start_batch",
           "status_of"]

KEY_LENGTH = 255

# --filter keys → CallFilters fields (and how a value is turned into the field's text).
FILTER_KEYS: dict[str, str] = {
    "provider": "provider", "agent": "agent_id", "agent_id": "agent_id", "since": "since",
    "until": "until", "ended_reason": "ended_reason", "q": "q", "failed": "success",
    "success": "success", "flagged": "flagged", "has_replays": "has_replays",
}
FILTER_FIELDS = frozenset(CallFilters.model_fields) - {"page"}  # what ``filters`` may hold
_YES = {"true", "yes", "1", "y"}
_NO = {"false", "no", "0", "n"}


def _yes_no(key: str, value: str, *, invert: bool = False) -> str:
    low = value.strip().lower()
    if low not in _YES | _NO:
        raise ConfigError(f"--filter {key}={value!r}: use true or false")
    return "yes" if (low in _YES) != invert else "no"


def parse_filter(text: str) -> CallFilters:
    """``provider=vapi,agent=asst_1,since=7d,ended_reason=…,failed=true`` → the calls list's
    filters (the web page's, so a batch from the page and from the CLI select alike)."""
    fields: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not value.strip():
            raise ConfigError(f"--filter {part.strip()!r}: expected key=value, e.g. "
                              "provider=vapi,since=7d,failed=true")
        if key not in FILTER_KEYS:
            raise ConfigError(f"--filter: unknown key {key!r} (known: "
                              f"{', '.join(sorted(FILTER_KEYS))})")
        value = value.strip()
        if key == "failed":
            value = _yes_no(key, value, invert=True)  # failed=true: success is "no"
        elif key in ("success", "flagged", "has_replays"):
            value = _yes_no(key, value)
        fields[FILTER_KEYS[key]] = value
    filters = CallFilters(**fields)
    filters.values()  # a bad date or value fails here, before anything is stored
    return filters


class BatchSelection(BaseModel):
    """Which calls a batch replays: ``call_ids``, else the calls matching ``filters`` (all
    calls with ``all_calls``); then a seeded random ``sample`` of them, then the first
    ``limit`` (newest first)."""

    model_config = ConfigDict(extra="forbid")

    call_ids: list[str] = Field(default_factory=list)
    provider: str | None = None  # of the call ids
    filters: dict[str, str] = Field(default_factory=dict)  # CallFilters fields, as typed
    all_calls: bool = False
    limit: int | None = Field(default=None, ge=1)
    sample: int | None = Field(default=None, ge=1)
    seed: int = 0

    def check(self) -> None:
        chosen = sum([bool(self.call_ids), bool(self.filters), self.all_calls])
        if chosen != 1:
            raise ConfigError("name the calls: call ids, --filter, or --all (one of them)")
        unknown = sorted(set(self.filters) - FILTER_FIELDS)
        if unknown:
            raise ConfigError(f"filters: unknown field {', '.join(map(repr, unknown))} (known: "
                              f"{', '.join(sorted(FILTER_FIELDS))})")


def resolve_calls(store: Store, selection: BatchSelection) -> list[tuple[str, str]]:
    """The (provider, call id) of every selected stored call, in batch order."""
    selection.check()
    if selection.call_ids:
        found: list[tuple[str, str]] = []
        missing: list[str] = []
        for call_id in dict.fromkeys(selection.call_ids):
            try:
                found.append(store.calls.key_of(call_id, selection.provider))
            except NotStoredError:
                missing.append(call_id)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more"
                                              if len(missing) > 5 else "")
            what = (f"call {shown} is" if len(missing) == 1
                    else f"{len(missing)} of the calls are")
            raise NotStoredError(f"{what} not in the store (import first: `voicereplay calls "
                                 "import`)")
        keys = found
    else:
        wanted = CallFilters(**selection.filters).values()
        keys = [(c.provider, c.call_id) for c in store.calls.list(**wanted, limit=None)]
    if selection.sample is not None and selection.sample < len(keys):
        picked = set(random.Random(selection.seed).sample(range(len(keys)), selection.sample))
        keys = [k for i, k in enumerate(keys) if i in picked]
    if selection.limit is not None:
        keys = keys[:selection.limit]
    if not keys:
        raise NotStoredError("no stored call matches this selection (`voicereplay calls "
                             "list` shows the stored calls)")
    return keys


def _template(request: ReplayRequest) -> dict[str, Any]:
    """The request without its call: what every call of the batch gets."""
    data = request.model_dump(mode="json")
    data.pop("call")
    return data


def call_request(batch: Batch, provider: str, call_id: str) -> ReplayRequest:
    """The replay request of one call of ``batch``."""
    return ReplayRequest.model_validate(
        {**batch.request, "call": {"call_id": call_id, "provider": provider}})


def batch_key(selection: BatchSelection, request: ReplayRequest, name: str | None,
              nonce: str = "") -> str:
    body = json.dumps({"selection": selection.model_dump(mode="json"),
                       "request": _template(request), "name": name, "nonce": nonce},
                      sort_keys=True, separators=(",", ":"))
    return "batch:" + hashlib.sha256(body.encode()).hexdigest()[:32]


def job_key(batch: Batch, provider: str, call_id: str) -> str:
    key = f"batch:{batch.id}:{provider}:{call_id}"
    if len(key) <= KEY_LENGTH:
        return key
    return f"batch:{batch.id}:" + hashlib.sha256(f"{provider}:{call_id}".encode()).hexdigest()


@dataclass(frozen=True)
class BatchStart:
    batch: Batch
    created: bool  # a new batch (else the stored one, continued)
    submitted: int  # jobs submitted now (all of them for a new batch)
    redelivered: list[str]  # unfinished jobs handed to the queue again (a resumed batch)
    retried: int  # failed jobs run again (retry_failed)


def start_batch(store: Store, queue: JobQueue, selection: BatchSelection,
                request: ReplayRequest, *, name: str | None = None, fresh: bool = False,
                retry_failed: bool = False) -> BatchStart:
    """Create (or continue) the batch and submit its jobs (see the module docs)."""
    if name is not None and not 0 < len(name.strip()) <= 255:
        raise ConfigError("--name: give 1 to 255 characters")
    key = batch_key(selection, request, name, nonce=uuid.uuid4().hex if fresh else "")
    batch = store.batches.by_key(key)
    created = False
    if batch is None:
        calls = resolve_calls(store, selection)
        batch, created = store.batches.create(
            key, selection=selection.model_dump(mode="json"), request=_template(request),
            calls=calls, name=name)
    known = {(j.call_provider, j.call_id): j
             for j in store.jobs.list(batch_id=batch.id, limit=None)}
    submitted = 0
    for provider, call_id in batch.calls:
        if (provider, call_id) in known:
            continue
        _job, new = queue.submit_job(
            "replay", call_request(batch, provider, call_id).model_dump(mode="json"),
            job_key(batch, provider, call_id), call=(provider, call_id), batch=batch.id)
        submitted += new
    redelivered: list[str] = []
    retried = 0
    for job in known.values():
        if job.status == "PENDING":
            queue.deliver(job.id)
            redelivered.append(job.id)
        elif job.status == "FAILED" and retry_failed:
            retried += queue.retry(job.id) is not None
    return BatchStart(batch, created, submitted, redelivered, retried)


@dataclass(frozen=True)
class BatchStatus:
    """How far a batch is: its jobs by status."""

    total: int
    pending: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def done(self) -> bool:
        return self.finished >= self.total

    @property
    def state(self) -> str:
        if self.done:
            return "failed" if self.completed == 0 and self.total else (
                "finished" if not (self.failed or self.cancelled) else "finished with failures")
        return "running" if self.running or self.finished else "pending"


def batch_status(store: Store, batches: Sequence[Batch]) -> dict[str, BatchStatus]:
    """Each batch's :class:`BatchStatus` (calls never submitted count as pending)."""
    counts = store.jobs.batch_counts([b.id for b in batches])
    return {batch.id: status_of(batch, counts.get(batch.id, {})) for batch in batches}


def status_of(batch: Batch, by_status: Mapping[str, int]) -> BatchStatus:
    """``batch``'s status from its jobs' counts by status (calls never submitted count as
    pending)."""
    known = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
    submitted = sum(by_status.get(s, 0) for s in known)
    return BatchStatus(
        total=len(batch.calls),
        pending=by_status.get("PENDING", 0) + max(0, len(batch.calls) - submitted),
        running=by_status.get("RUNNING", 0), completed=by_status.get("COMPLETED", 0),
        failed=by_status.get("FAILED", 0), cancelled=by_status.get("CANCELLED", 0))
