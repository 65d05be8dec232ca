"""``voicereplay worker``: a Huey consumer that runs replay jobs until it is told to stop.

The worker runs ``concurrency`` threads (default 3) in one process, so the STT, TTS and LLM
models each backend loads are loaded once and shared by every job the process runs (the
backends cache them per process; llama.cpp generations take turns behind a lock). Thread
workers are also what Huey recommends with SQLite.

Signals: SIGTERM and SIGINT both stop the worker cleanly. Running attempts notice at their next
progress step, remove what they wrote, hand their jobs back (PENDING, the attempt not counted)
and deliver them again for another worker; then the process exits 0. A second signal stops at
once. A worker killed with SIGKILL leaves RUNNING jobs whose lease lapses: the next sweep (any
worker's) returns them to PENDING and they run again, completing exactly once.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from huey.consumer import Consumer

from voicereplay.config import Settings
from voicereplay.pipeline.jobs import Worker
from voicereplay.pipeline.queue import JobQueue, queue_backend
from voicereplay.store import Store

__all__ = ["EmbeddedWorker", "WorkerOptions", "run_worker"]

log = logging.getLogger("voicereplay.worker")


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 3
    lease: float | None = None  # seconds; None: settings.job_lease
    # The longest wait between looks at an empty SQLite queue, seconds: a job submitted to an
    # idle worker waits up to this long (bench/jobs.py; PostgreSQL and Redis wake at once).
    poll: float = 0.25


class _Consumer(Consumer):
    """Huey's consumer, with SIGTERM and SIGINT both meaning "finish or hand back, then
    exit" (Huey's own SIGTERM interrupts running tasks, which would lose their jobs)."""

    _signum: int | None

    def __init__(self, *args: Any, on_stop: Callable[[], None], **kwargs: Any) -> None:
        self._on_stop = on_stop
        super().__init__(*args, **kwargs)

    def _set_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop_signal)

    def _stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._signum is not None:  # the second signal: stop now
            log.warning("second %s: stopping without waiting", signal.Signals(signum).name)
            sys.exit(1)
        self._signum, self._restart, self._graceful = signum, False, True
        log.warning("%s: stopping; running jobs are handed back at their next step (a second "
                    "signal stops at once)", signal.Signals(signum).name)
        self._on_stop()


def run_worker(settings: Settings, options: WorkerOptions | None = None, *,
               ready: Callable[[str], None] | None = None) -> int:
    """Run jobs until SIGTERM/SIGINT; returns the exit status. ``ready`` gets one line saying
    what the worker serves, once it is listening."""
    options = options or WorkerOptions()
    store = Store.from_settings(settings)
    worker = Worker(settings, lease=options.lease)
    queue = JobQueue(store, settings, worker=worker)
    consumer = _Consumer(queue.huey, workers=options.concurrency, worker_type="thread",
                         periodic=True, max_delay=options.poll, check_worker_health=True,
                         on_stop=worker.stopping.set)
    swept = queue.sweep()
    if ready is not None:
        ready(f"worker {worker.id}: {options.concurrency} thread(s), "
              f"{queue_backend(settings)} queue, store {store.url}"
              + (f"; {swept.reaped} expired job(s) returned, {len(swept.delivered)} delivered"
                 if swept.reaped or swept.delivered else ""))
    try:
        consumer.run()
    finally:
        store.close()
    log.info("worker %s stopped", worker.id)
    return 0


class _Embedded(_Consumer):
    """A consumer inside another program (the web server), which owns the signals."""

    def _set_signal_handlers(self) -> None:
        pass


class EmbeddedWorker:
    """Job worker threads inside another process (``voicereplay serve``): :meth:`start` when
    the app starts, :meth:`stop` when it stops (running jobs are handed back, as on SIGTERM)."""

    def __init__(self, settings: Settings, store: Store, *, concurrency: int = 3,
                 lease: float | None = None) -> None:
        self.worker = Worker(settings, lease=lease)
        self.queue = JobQueue(store, settings, worker=self.worker)
        self._consumer = _Embedded(self.queue.huey, workers=concurrency, worker_type="thread",
                                   periodic=True, max_delay=WorkerOptions.poll,
                                   check_worker_health=False,
                                   on_stop=self.worker.stopping.set)

    def start(self) -> None:
        self.queue.sweep()
        self._consumer.start()
        log.info("embedded worker %s started", self.worker.id)

    def stop(self) -> None:
        self.worker.stopping.set()
        self._consumer.stop(graceful=True)
        log.info("embedded worker %s stopped", self.worker.id)
