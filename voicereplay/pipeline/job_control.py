"""Cancelling and retrying a job, or saying why its state does not allow it.

Both are conditional updates in the jobs table (see :mod:`voicereplay.store.jobs`): cancel
only moves a PENDING or RUNNING job, retry only a FAILED or CANCELLED one. When the job is in
another state the answer is a :class:`~voicereplay.errors.JobStateError` (HTTP 409).
"""

from __future__ import annotations

from voicereplay.errors import JobStateError
from voicereplay.pipeline.queue import JobQueue
from voicereplay.store import Store
from voicereplay.store.jobs import Job

__all__ = ["cancel_job", "retry_job"]


def cancel_job(store: Store, job_id: str) -> Job:
    """Cancel a PENDING or RUNNING job (a running attempt's result is then refused)."""
    job = store.jobs.get(job_id)
    cancelled = store.jobs.cancel(job.id)
    if cancelled is None:
        raise JobStateError(f"job {job.id[:12]} is {store.jobs.get(job.id).status}; only "
                            "pending or running jobs can be cancelled")
    return cancelled


def retry_job(queue: JobQueue, job_id: str) -> Job:
    """Run a FAILED or CANCELLED job again, with all its attempts, and deliver it."""
    job = queue.store.jobs.get(job_id)
    retried = queue.retry(job.id)
    if retried is None:
        raise JobStateError(f"job {job.id[:12]} is {queue.store.jobs.get(job.id).status}; "
                            "only failed or cancelled jobs can be retried")
    return retried
