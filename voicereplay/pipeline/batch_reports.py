"""A batch's results: each call's line, and the aggregate over the calls that were replayed.

Every completed replay job stored its first run's comparison as a
:class:`~voicereplay.compare.aggregate.CallRow` (``jobs.result["row"]``), so a report reads one
column of the batch's jobs and never compares a replay again: building the aggregate of 1,000
calls is a fraction of a second (``bench/batch.py``). Calls whose job failed, was cancelled or
has not finished are listed with their status and never counted as passing.

:func:`compare_batch_reports` matches two batches' rows by call (A is the reference); calls
present in one batch only are listed, never dropped.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from typing import Any

from voicereplay.compare.aggregate import ROW_FIELDS, Aggregate, CallRow, aggregate, row_line
from voicereplay.compare.aggregate_batch import BatchComparison, compare_batches
from voicereplay.pipeline.batches import BatchStatus, status_of
from voicereplay.store import Store
from voicereplay.store.batches import Batch

__all__ = ["BatchCall", "BatchReport", "batch_report", "calls_csv", "compare_batch_reports"]


@dataclass(frozen=True)
class BatchCall:
    """One call of a batch: its job's state and, once replayed, its row."""

    provider: str
    call_id: str
    status: str  # the job's: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED (or NOT SUBMITTED)
    job_id: str | None = None
    replay_id: str | None = None
    error: str | None = None
    row: CallRow | None = None

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.call_id}"

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "call_id": self.call_id, "status": self.status,
                "job_id": self.job_id, "replay_id": self.replay_id, "error": self.error,
                "passed": self.row.passed if self.row else None,
                "row": self.row.to_json() if self.row else None}


@dataclass(frozen=True)
class BatchReport:
    batch: Batch
    status: BatchStatus
    calls: list[BatchCall]
    aggregate: Aggregate | None  # None until a call has been replayed

    @property
    def rows(self) -> list[CallRow]:
        return [c.row for c in self.calls if c.row is not None]

    def replay_of(self, call_key: str) -> str | None:
        """The replay id of a call (for links to its comparison page)."""
        return next((c.replay_id for c in self.calls if c.key == call_key), None)

    def to_json(self) -> dict[str, Any]:
        b = self.batch
        return {
            "batch": {"id": b.id, "name": b.name, "created_at": b.created_at.isoformat(),
                      "selection": b.selection, "request": b.request, "calls": len(b.calls)},
            "status": {"state": self.status.state, "total": self.status.total,
                       "pending": self.status.pending, "running": self.status.running,
                       "completed": self.status.completed, "failed": self.status.failed,
                       "cancelled": self.status.cancelled},
            "aggregate": self.aggregate.to_dict() if self.aggregate else None,
            "calls": [c.to_json() for c in self.calls],
        }


def batch_report(store: Store, batch: Batch, *, seed: int = 0, resamples: int = 2000,
                 confidence: float = 0.95, worst: int = 10) -> BatchReport:
    """``batch``'s calls and the aggregate of those replayed (see the module docs)."""
    jobs = {(j.call_provider, j.call_id): j for j in store.jobs.batch_results(batch.id)}
    calls: list[BatchCall] = []
    for provider, call_id in batch.calls:
        job = jobs.get((provider, call_id))
        if job is None:
            calls.append(BatchCall(provider, call_id, "NOT SUBMITTED"))
            continue
        result = job.result or {}
        row = (CallRow.from_json(result["row"])
               if job.status == "COMPLETED" and isinstance(result.get("row"), dict) else None)
        calls.append(BatchCall(
            provider, call_id, job.status, job.id,
            replay_id=result.get("replay_id") or (job.replay_ids[0] if job.replay_ids
                                                  else None),
            error=job.error, row=row))
    rows = [c.row for c in calls if c.row is not None]
    agg = (aggregate(rows, seed=seed, resamples=resamples, confidence=confidence, worst=worst)
           if rows else None)
    # The status from the same read as the rows: a second query could see a job finish that
    # the rows above do not have yet.
    return BatchReport(batch, status_of(batch, Counter(c.status for c in calls)), calls, agg)


def calls_csv(report: BatchReport) -> str:
    """One CSV row per call of the batch: its status, job, replay and error, then the
    per-call columns of :func:`~voicereplay.compare.aggregate.row_line` (empty for a call
    that was not replayed)."""
    columns = ["call_key", "status", "job_id", "replay_id", "error",
               *(f for f in ROW_FIELDS if f != "call_key")]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for call in report.calls:
        writer.writerow({**(row_line(call.row) if call.row else {}), "call_key": call.key,
                         "status": call.status, "job_id": call.job_id or "",
                         "replay_id": call.replay_id or "", "error": call.error or ""})
    return out.getvalue()


def compare_batch_reports(a: BatchReport, b: BatchReport, *, seed: int = 0,
                          resamples: int = 2000, confidence: float = 0.95) -> BatchComparison:
    """Batch ``b`` against batch ``a``, matched by call; calls replayed in only one of them
    are listed by the comparison (a call replayed in neither is in each report's calls, with
    its job's status and error)."""
    return compare_batches(a.rows, b.rows, seed=seed, resamples=resamples,
                           confidence=confidence)
