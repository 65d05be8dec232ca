"""The job workers: a face over :mod:`voicereplay.pipeline.queue` (``voicereplay worker``)."""

from voicereplay.jobs.worker import WorkerOptions, run_worker

__all__ = ["WorkerOptions", "run_worker"]
