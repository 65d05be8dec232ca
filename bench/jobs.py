"""Benchmark: background replay jobs — the queue's own cost, and what a warm worker saves.

    python bench/jobs.py                                  # everything, 3 runs of each
    python bench/jobs.py --backends sqlite --runs 1 --jobs 200 --skip-models

1. **Queue overhead.** Real ``voicereplay worker`` processes (1, then 2; ``--concurrency 1``
   each, the fake backends of ``tests/fakes/backends.py`` loaded as a plugin) on a fresh store;
   this process submits ``--jobs`` jobs at once with ``JobQueue.submit`` (jobs table row → Huey
   message), the workers take them through Huey and ``run_job`` (claim, heartbeat thread,
   ``run_call``, conditional complete). The job is the demo call replayed with fake STT/LLM/TTS
   and no report files: the whole pipeline runs (call loaded, turns cut, tracks written,
   replay stored and compared), with no model. Times come from the jobs table: ``created_at``
   (taken in ``enqueue``), ``started_at`` (taken at the claim), ``finished_at`` (taken at the
   completion). Then ``--paced`` more jobs, one every ``--pace`` seconds, measure the wait of a
   job that finds its worker idle. On SQLite (store and SqliteHuey) and on PostgreSQL (a real
   server started as the tests start it, store and PostgresHuey).
2. **Model reuse.** 10 replays of the demo call with the embedded models (faster-whisper
   tiny.en, piper, SmolLM2 via llama.cpp — the fixed prompt, ``--model local``, seed 7,
   ``model.max_tokens=80``, as ``voicereplay demo``'s second step) by one ``voicereplay worker
   --concurrency 1`` (timed from starting the worker to the 10th completion) against 10
   ``voicereplay call`` processes run one after another. Each run has its own fresh home.

Prints one JSON line per run to stderr and Markdown tables for BENCHMARKS.md to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from replay import _busy_seconds, _wait_idle  # noqa: E402 - bench/replay.py, beside this file

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"
DEMO_DIR = REPO / "fixtures" / "demo"
FIXED_PROMPT = DEMO_DIR / "fixed-prompt.txt"
MODEL_ARGS = ["--model", "local", "--seed", "7", "--set", "model.max_tokens=80"]
HANG = 1800.0  # seconds before a wait gives up
INPROC = 10  # in-process runs of the trivial job's replay (after one warm-up)


def _env(home: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VOICEREPLAY_") and not k.endswith("_API_KEY")}
    env.update(VOICEREPLAY_HOME=str(home), VOICEREPLAY_PLUGINS="tests.fakes.backends",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    if database_url:
        env["VOICEREPLAY_DATABASE_URL"] = database_url
    return env


@contextmanager
def _workers(env: dict[str, str], count: int, logs: Path) -> Iterator[list[Path]]:
    """``count`` ``voicereplay worker --concurrency 1`` processes; SIGTERM on exit."""
    procs, paths = [], []
    for n in range(count):
        paths.append(logs / f"worker-{n}.log")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "voicereplay", "worker", "--concurrency", "1"], env=env,
            stdout=paths[-1].open("wb"), stderr=subprocess.STDOUT, cwd=REPO))
    try:
        yield paths
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=120)


def _wait(what: str, check: Callable[[], bool], logs: list[Path], every: float = 0.2) -> None:
    deadline = time.monotonic() + HANG
    while not check():
        if time.monotonic() > deadline:
            tails = "\n".join(p.read_text(errors="replace")[-1500:] for p in logs)
            raise SystemExit(f"gave up waiting for {what}\n{tails}")
        time.sleep(every)


def _ready(logs: list[Path]) -> bool:
    return all(p.exists() and "thread(s)" in p.read_text(errors="replace") for p in logs)


def _store(env: dict[str, str]) -> tuple[Any, Any]:
    from voicereplay.config import Settings
    from voicereplay.store import Store

    settings = Settings.from_env(env)
    return Store.from_settings(settings), settings


def _seconds(later: Any, earlier: Any) -> float:
    return float((later - earlier).total_seconds())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _gaps(jobs: list[Any]) -> list[float]:
    """Seconds from one job's completion to the claim of the next by the same worker."""
    by_worker: dict[str, list[Any]] = {}
    for job in jobs:
        by_worker.setdefault(job.worker_id, []).append(job)
    gaps = []
    for done in by_worker.values():
        done.sort(key=lambda j: j.started_at)
        pairs = zip(done, done[1:], strict=False)
        gaps += [_seconds(b.started_at, a.finished_at) for a, b in pairs]
    return gaps


def _drained(store: Any) -> bool:
    return not store.jobs.list(status="PENDING", limit=1) and \
        not store.jobs.list(status="RUNNING", limit=1)


def queue_run(backend: str, processes: int, jobs: int, paced: int, pace: float,
              database_url: str | None) -> dict[str, Any]:
    """One run of part 1 in a fresh home (and a fresh database on PostgreSQL)."""
    from voicereplay import pipeline
    from voicereplay.pipeline import CallRef, ReplayRequest
    from voicereplay.pipeline.calling import run_call
    from voicereplay.pipeline.queue import JobQueue

    root = Path(tempfile.mkdtemp(prefix="vr-bench-jobs-"))
    try:
        env = _env(root / "home", database_url)
        store, settings = _store(env)
        with pipeline.open_provider("files", settings, directory=DEMO_DIR) as source:
            [imported] = pipeline.import_calls(store, source)
        queue = JobQueue(store, settings)
        request = ReplayRequest(call=CallRef(call_id=DEMO_CALL, provider=imported.provider),
                                stt="fake-stt", tts="fake-tts", caller_tts="fake-tts",
                                llm="fake-llm", report={"figures": None})
        inproc = []  # the same replay in this process: the job's work without the queue
        for _ in range(INPROC + 1):
            began = time.perf_counter()
            run_call(store, request, settings=settings)
            inproc.append(time.perf_counter() - began)
        load = os.getloadavg()[0]
        with _workers(env, processes, root) as logs:
            _wait("the workers to listen", lambda: _ready(logs), logs)
            started = time.monotonic()
            for _ in range(jobs):
                queue.submit(request, key=f"bench:{uuid.uuid4().hex}")
            submitted = time.monotonic() - started
            _wait(f"{jobs} jobs", lambda: _drained(store), logs, every=0.5)
            burst = store.jobs.list(limit=None)
            for _ in range(paced):
                time.sleep(pace)
                queue.submit(request, key=f"bench:{uuid.uuid4().hex}")
            _wait("the paced jobs", lambda: _drained(store), logs)
        done = store.jobs.list(limit=None)
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if any(j.status != "COMPLETED" for j in done):
        raise SystemExit(f"not every job completed: {[j.error for j in done if j.error][:3]}")
    burst_ids = {j.id for j in burst}
    lone = [j for j in done if j.id not in burst_ids]
    wait = [_seconds(j.started_at, j.created_at) for j in burst]
    span = _seconds(max(j.finished_at for j in burst), min(j.created_at for j in burst))
    return {"part": "queue", "backend": backend, "processes": processes, "jobs": jobs,
            "jobs_per_s": jobs / span, "submit_per_s": jobs / submitted,
            "wait_p50": _pct(wait, 0.5), "wait_p99": _pct(wait, 0.99),
            "run_p50": statistics.median(_seconds(j.finished_at, j.started_at) for j in burst),
            "inproc_p50": statistics.median(inproc[1:]),
            "gap_p50": statistics.median(_gaps(burst)),
            "idle_wait_p50": statistics.median(_seconds(j.started_at, j.created_at)
                                               for j in lone) if lone else None,
            "idle_wait_max": max((_seconds(j.started_at, j.created_at) for j in lone),
                                 default=None),
            "load_1min": load}


def models_run(way: str, replays: int) -> dict[str, Any]:
    """One run of part 2: ``replays`` demo replays by one warm worker, or by separate
    ``voicereplay call`` processes, in a fresh home."""
    from voicereplay.pipeline import CallRef, ReplayRequest
    from voicereplay.pipeline.queue import JobQueue

    root = Path(tempfile.mkdtemp(prefix="vr-bench-models-"))
    result: dict[str, Any] = {"part": "models", "way": way, "replays": replays,
                              "load_1min": os.getloadavg()[0]}
    try:
        env = _env(root / "home", None)
        started = time.monotonic()
        if way == "processes":
            for _ in range(replays):
                subprocess.run([sys.executable, "-m", "voicereplay", "call", DEMO_CALL,
                                "--dir", str(DEMO_DIR), "--prompt-file", str(FIXED_PROMPT),
                                *MODEL_ARGS], env=env, cwd=REPO, check=True,
                               stdout=subprocess.DEVNULL)
            result["wall_s"] = time.monotonic() - started
        else:
            store, settings = _store(env)
            queue = JobQueue(store, settings)
            with _workers(env, 1, root) as logs:
                request = ReplayRequest(
                    call=CallRef(call_id=DEMO_CALL, directory=DEMO_DIR), model="local",
                    seed=7, set=["model.max_tokens=80"],
                    system_prompt=FIXED_PROMPT.read_text())
                for _ in range(replays):
                    queue.submit(request, key=f"bench:{uuid.uuid4().hex}")
                _wait(f"{replays} replays", lambda: _drained(store), logs)
                result["wall_s"] = time.monotonic() - started
            done = store.jobs.list(limit=None)
            store.close()
            if any(j.status != "COMPLETED" for j in done):
                raise SystemExit(f"a replay job failed: {[j.error for j in done]}")
            first = min(done, key=lambda j: j.started_at)
            runs = [_seconds(j.finished_at, j.started_at) for j in done if j is not first]
            result.update(first_job_s=_seconds(first.finished_at, first.started_at),
                          warm_job_s=statistics.median(runs),
                          gap_p50=statistics.median(_gaps(done)),
                          gap_max=max(_gaps(done)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["per_min"] = 60 * replays / result["wall_s"]
    return result


def _spread(rows: list[dict[str, Any]], key: str, fmt: str = "{:.2f}") -> str:
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "–"
    median = statistics.median(values)
    return f"{fmt.format(median)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--processes", default="1,2", help="worker processes to compare")
    parser.add_argument("--paced", type=int, default=5, help="jobs submitted one by one")
    parser.add_argument("--pace", type=float, default=8.0,
                        help="seconds between them (Huey's idle poll backs off to 1 s)")
    parser.add_argument("--replays", type=int, default=10)
    parser.add_argument("--idle-wait", type=float, default=60.0,
                        help="longest wait for an idle machine before each run, seconds")
    parser.add_argument("--skip-queue", action="store_true")
    parser.add_argument("--skip-models", action="store_true")
    args = parser.parse_args()
    from voicereplay.registry import load_plugins

    load_plugins(["tests.fakes.backends"])  # the in-process runs of the trivial job

    def log(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one measurement, noting the CPU other processes took meanwhile (this VM is
        shared): busy CPU-s of the machine minus this process's and its children's."""
        _wait_idle(limit=args.idle_wait)
        busy, own, began = _busy_seconds(), _own_seconds(), time.monotonic()
        row = run()
        wall = time.monotonic() - began
        row["other_cores"] = (_busy_seconds() - busy - (_own_seconds() - own)) / wall
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row

    queue_rows: list[dict[str, Any]] = []
    backends = [] if args.skip_queue else [b for b in args.backends.split(",") if b]
    for backend in backends:
        with _postgres() if backend == "postgres" else nullcontext() as server:
            for _ in range(args.runs):  # runs interleaved: drift hits every configuration
                for processes in (int(p) for p in args.processes.split(",")):
                    url = server.url(server.create_database()) if server else None
                    queue_rows.append(log(partial(queue_run, backend, processes, args.jobs,
                                                  args.paced, args.pace, url)))
    model_rows: list[dict[str, Any]] = []
    if not args.skip_models:
        for _ in range(args.runs):
            for way in ("processes", "worker"):
                model_rows.append(log(partial(models_run, way, args.replays)))
    report(queue_rows, model_rows, args)


def _own_seconds() -> float:
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


@contextmanager
def _postgres() -> Iterator[Any]:
    from tests.servers import running_postgres

    with running_postgres() as server:
        yield server


def report(queue_rows: list[dict[str, Any]], model_rows: list[dict[str, Any]],
           args: argparse.Namespace) -> None:
    if queue_rows:
        print(f"| store + queue | worker processes | runs | jobs/s | enqueue→start p50 s | "
              f"p99 s | run s (p50) | same replay in-process s | gap s (p50) | submits/s | "
              f"lone job wait s (p50 of {args.paced}) | others' cores |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key in sorted({(r["backend"], r["processes"]) for r in queue_rows}):
            rows = [r for r in queue_rows if (r["backend"], r["processes"]) == key]
            print(f"| {key[0]} | {key[1]} | {len(rows)} | {_spread(rows, 'jobs_per_s', '{:.1f}')}"
                  f" | {_spread(rows, 'wait_p50')} | {_spread(rows, 'wait_p99')} | "
                  f"{_spread(rows, 'run_p50', '{:.3f}')} | {_spread(rows, 'inproc_p50', '{:.3f}')}"
                  f" | {_spread(rows, 'gap_p50', '{:.3f}')}"
                  f" | {_spread(rows, 'submit_per_s', '{:.0f}')} | "
                  f"{_spread(rows, 'idle_wait_p50')} | {_spread(rows, 'other_cores')} |")
    if model_rows:
        print("\n| way | runs | wall s | replays/min | first job s | warm job s | gap s | "
              "others' cores |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for way in ("processes", "worker"):
            rows = [r for r in model_rows if r["way"] == way]
            print(f"| {way} | {len(rows)} | {_spread(rows, 'wall_s', '{:.1f}')} | "
                  f"{_spread(rows, 'per_min')} | {_spread(rows, 'first_job_s', '{:.1f}')} | "
                  f"{_spread(rows, 'warm_job_s', '{:.1f}')} | "
                  f"{_spread(rows, 'gap_p50', '{:.3f}')} | {_spread(rows, 'other_cores')} |")
        ratios = [w["per_min"] / p["per_min"] for p, w in zip(
            [r for r in model_rows if r["way"] == "processes"],
            [r for r in model_rows if r["way"] == "worker"], strict=True)]
        print(f"\nworker / processes replays/min, per run pair: "
              f"{', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
