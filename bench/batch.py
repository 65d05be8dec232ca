"""Benchmark: batch replay — calls/minute and CPU per call, and the aggregate of 1,000 calls.

    python bench/batch.py                                   # everything: 100 calls, 2 runs
    python bench/batch.py --calls 20 --runs 1 --configs sqlite-1,sqlite-2   # a smoke run
    python bench/batch.py --skip-throughput --comparisons 1000 --agg-runs 7
    python bench/batch.py --tables-from run1.log run2.log    # tables of earlier runs' stderr

1. **Throughput.** ``--calls`` copies of the demo call (46 s, 5 caller turns, real caller
   audio) are stored in a fresh home; then one batch replays them all with ``--model
   recorded`` (the baseline's own replies: faster-whisper tiny.en hears the caller's audio,
   piper speaks the replies, the comparison, three checks and the report files with PNG charts
   are written — no LLM), in one of three configurations:

   * ``sqlite-1`` / ``sqlite-2``: ``voicereplay batch run --all --concurrency 1|2`` (the
     worker threads inside the command, SQLite store and SqliteHuey);
   * ``postgres-2p``: two ``voicereplay worker --concurrency 1`` processes on a PostgreSQL
     store (a temporary server started as the tests start it), listening before
     ``voicereplay batch run --all --background`` submits the batch.

   **calls/min** = calls / (the last job's ``finished_at`` − the first job's ``created_at``),
   from the jobs table (so it counts the first jobs' model loads, not the interpreter start);
   **CPU s/call** = user+sys seconds of the processes that ran the replays (the ``batch run``
   process, or both workers; each from start to exit, imports and model loads included) /
   calls. "others' cores" is the CPU other processes took meanwhile (``/proc/stat``; the
   PostgreSQL server counts as "others").
2. **Aggregate.** ``--comparisons`` replay jobs are stored in one batch, each COMPLETED with a
   :class:`CallRow` as a real replay job stores it (``jobs.result["row"]``): rows of the
   throughput part's real replays (or, without it, of one fake-backend replay of the demo
   call: ``tests/fakes/backends.py``, no model), each given a new call key and jittered
   metrics, check results, divergence and tool changes so every part of the aggregate has
   work. Then ``batch_report`` (the batch's jobs read from the store + ``aggregate``) and
   ``aggregate`` alone are timed, median of ``--agg-runs``. Aim: under 1 s for 1,000.

Prints one JSON line per run to stderr and Markdown tables for BENCHMARKS.md to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.servers, tests.fakes
    sys.path.insert(0, str(REPO))

CONFIGS = ("sqlite-1", "sqlite-2", "postgres-2p")
HANG = 3600.0  # seconds before a wait gives up
CHECKS = [  # what a user would check in a batch; in a recorded replay the first one fails
    {"type": "tool_not_called", "tool": "issue_refund"},
    {"type": "agent_ends_call"},
    {"type": "latency_p90_under", "seconds": 3.0},
]
TOOL_CHANGES = ("issue_refund → check_status", "added check_status", "dropped issue_refund",
                "issue_refund: different arguments")
REASONS = ("tool calls differ", "reply differs", "agent ended the call early")


# -- stores ------------------------------------------------------------------------------------


def _env(home: Path, database_url: str | None, plugins: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VOICEREPLAY_") and not k.endswith("_API_KEY")}
    env.update(VOICEREPLAY_HOME=str(home),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    if plugins:
        env["VOICEREPLAY_PLUGINS"] = plugins
    if database_url:
        env["VOICEREPLAY_DATABASE_URL"] = database_url
    return env


def open_store(env: dict[str, str]) -> tuple[Any, Any]:
    from voicereplay.config import Settings
    from voicereplay.store import Store

    settings = Settings.from_env(env)
    return Store.from_settings(settings), settings


def store_demo_copies(store: Any, settings: Any, count: int) -> list[str]:
    """The demo call imported, plus ``count - 1`` copies of it under new ids (the same
    recordings and snapshot); their call ids."""
    from voicereplay import pipeline

    with pipeline.open_provider("files", settings, directory=pipeline.demo_dir()) as source:
        [imported] = pipeline.import_calls(store, source)
    call = store.get_call(imported.call_id, imported.provider)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    ids = [call.call_id]
    for n in range(1, count):
        copy = call.model_copy(update={"call_id": f"bench-{n:04d}"})
        store.save_call(copy, snapshot)
        ids.append(copy.call_id)
    return ids


# -- part 1: throughput ------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + _children_cpu()


def _seconds(later: Any, earlier: Any) -> float:
    return float((later - earlier).total_seconds())


def _wait(what: str, check: Callable[[], bool], logs: Sequence[Path], every: float = 1.0) -> None:
    deadline = time.monotonic() + HANG
    while not check():
        if time.monotonic() > deadline:
            tails = "\n".join(p.read_text(errors="replace")[-1500:] for p in logs if p.exists())
            raise SystemExit(f"gave up waiting for {what}\n{tails}")
        time.sleep(every)


@contextmanager
def _workers(env: dict[str, str], count: int, concurrency: int,
             logs: Path) -> Iterator[list[Path]]:
    """``count`` ``voicereplay worker`` processes; SIGTERM and wait on exit."""
    procs, paths = [], []
    for n in range(count):
        paths.append(logs / f"worker-{n}.log")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "voicereplay", "worker", "--concurrency", str(concurrency)],
            env=env, stdout=paths[-1].open("wb"), stderr=subprocess.STDOUT, cwd=REPO))
    try:
        yield paths
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=300)


def _batch_command(checks: Path, figures: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "voicereplay", "batch", "run", "--all", "--model", "recorded",
            "--checks", str(checks), "--figures", figures, *extra]


def throughput_run(config: str, calls: int, database_url: str | None, figures: str,
                   pg_concurrency: int = 1) -> dict[str, Any]:
    """One batch of ``calls`` recorded replays in a fresh home (see the module docs)."""
    from voicereplay.compare.aggregate import CallRow

    root = Path(tempfile.mkdtemp(prefix="vr-bench-batch-"))
    try:
        env = _env(root / "home", database_url)
        store, settings = open_store(env)
        store_demo_copies(store, settings, calls)
        checks = root / "checks.yaml"
        checks.write_text(json.dumps(CHECKS))  # JSON is YAML
        log = root / "batch.log"
        began, cpu = time.monotonic(), _children_cpu()
        if config.startswith("sqlite"):
            threads = config.split("-")[1]
            with log.open("wb") as err:
                done = subprocess.run(_batch_command(checks, figures, "--concurrency", threads,
                                                     "--json"),
                                      env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
            if done.returncode not in (0, 5):  # 5: a check failed (issue_refund is called)
                raise SystemExit(f"batch run exited {done.returncode}:\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
            worker_cpu, submit_cpu = _children_cpu() - cpu, 0.0
        else:
            with _workers(env, 2, pg_concurrency, root) as logs:
                _wait("the workers to listen", lambda: all(
                    p.exists() and "thread(s)" in p.read_text(errors="replace")
                    for p in logs), logs, every=0.2)
                began, cpu = time.monotonic(), _children_cpu()
                with log.open("wb") as err:
                    subprocess.run(_batch_command(checks, figures, "--background"), env=env,
                                   cwd=REPO, stdout=subprocess.DEVNULL, stderr=err, check=True)
                submit_cpu, mark = _children_cpu() - cpu, _children_cpu()
                [batch] = store.batches.list(limit=1)

                def finished() -> bool:
                    from voicereplay.pipeline.batches import batch_status

                    return bool(batch_status(store, [batch])[batch.id].done)

                _wait(f"{calls} replays", finished, [*logs, log])
            worker_cpu = _children_cpu() - mark  # the workers, reaped at the end of the block
        command_wall = time.monotonic() - began
        [batch] = store.batches.list(limit=1)
        jobs = store.jobs.list(batch_id=batch.id, limit=None)
        results = store.jobs.batch_results(batch.id)
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    failed = [j for j in jobs if j.status != "COMPLETED"]
    if failed or len(jobs) != calls:
        raise SystemExit(f"{len(failed)} of {len(jobs)} jobs did not complete: "
                         f"{[j.error for j in failed][:3]}")
    span = _seconds(max(j.finished_at for j in jobs), min(j.created_at for j in jobs))
    runs = sorted(_seconds(j.finished_at, j.started_at) for j in jobs)
    first = min(jobs, key=lambda j: j.started_at)
    rows = [CallRow.from_json(r.result["row"]).to_json() for r in results]
    return {"part": "throughput", "config": config, "calls": calls, "span_s": span,
            "calls_per_min": 60 * calls / span, "command_wall_s": command_wall,
            "worker_cpu_s": worker_cpu, "submit_cpu_s": submit_cpu,
            "cpu_s_per_call": worker_cpu / calls, "busy_cores": worker_cpu / command_wall,
            "job_s_p50": statistics.median(runs),
            "first_job_s": _seconds(first.finished_at, first.started_at),
            "rows": rows}


# -- part 2: the aggregate of stored comparisons -----------------------------------------------


def fake_seed_rows() -> list[dict[str, Any]]:
    """The row of one replay of the demo call with the fake backends (no model), with the
    bench's checks: what a real replay job stores, when no real replay ran."""
    from voicereplay.checks import parse_checks
    from voicereplay.compare.aggregate import CallRow
    from voicereplay.pipeline import CallRef, ReplayRequest, demo_dir
    from voicereplay.pipeline.calling import run_call
    from voicereplay.registry import load_plugins

    load_plugins(["tests.fakes.backends"])
    root = Path(tempfile.mkdtemp(prefix="vr-bench-batch-seed-"))
    try:
        store, settings = open_store(_env(root / "home", None))
        request = ReplayRequest(call=CallRef(call_id=_demo_call_id(), directory=demo_dir()),
                                stt="fake-stt", tts="fake-tts", caller_tts="fake-tts",
                                llm="fake-llm", report={"figures": None},
                                checks=parse_checks(CHECKS, "the bench's checks"))
        [done] = run_call(store, request, settings=settings)
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    key = f"{done.call.provider}:{done.call.call_id}"
    return [CallRow.from_comparison(key, done.comparison).to_json()]


def _demo_call_id() -> str:
    from voicereplay.pipeline import demo_dir

    return str(json.loads(next(demo_dir().glob("*.json")).read_text())["id"])


def jitter_row(seed_row: dict[str, Any], n: int, rng: random.Random) -> dict[str, Any]:
    """Call ``n`` of a synthetic batch: ``seed_row`` under a new call key, its metrics scaled
    by ±30 %, each check flipped with probability 0.2, a divergence at a random turn in half
    the calls, 0–2 tool changes."""
    from voicereplay.compare.aggregate import CallRow

    row = CallRow.from_json(seed_row)

    def scaled(values: dict[str, float | None]) -> dict[str, float | None]:
        return {k: None if v is None else v * rng.uniform(0.7, 1.3) for k, v in values.items()}

    flip = {"pass": "fail", "fail": "pass", "error": "pass"}
    checks = tuple((name, flip[status] if rng.random() < 0.2 else status)
                   for name, status in row.checks)
    diverged = rng.random() < 0.5
    return replace(
        row, call_key=f"vapi:bench-agg-{n:05d}", checks=checks, baseline=scaled(row.baseline),
        replay=scaled(row.replay), divergence_turn=rng.randint(1, 8) if diverged else None,
        divergence_reason=rng.choice(REASONS) if diverged else None,
        tool_changes=tuple(rng.sample(TOOL_CHANGES, rng.randint(0, 2))),
        fidelity_score=None if row.fidelity_score is None
        else min(1.0, row.fidelity_score * rng.uniform(0.8, 1.0)),
    ).to_json()


def store_comparisons(store: Any, seed_rows: Sequence[dict[str, Any]], count: int,
                      seed: int = 0) -> Any:
    """A batch of ``count`` calls whose replay jobs are COMPLETED with jittered rows (through
    the jobs repository: enqueue, claim, complete — as a worker leaves them); the batch."""
    from voicereplay.pipeline.batches import job_key

    rng = random.Random(seed)
    rows = [jitter_row(seed_rows[n % len(seed_rows)], n, rng) for n in range(count)]
    calls = [tuple(str(r["call_key"]).split(":", 1)) for r in rows]
    batch, _ = store.batches.create(f"bench:aggregate:{count}:{seed}",
                                    selection={"all_calls": True},
                                    request={"model": "recorded"}, calls=calls)
    for (provider, call_id), row in zip(calls, rows, strict=True):
        job, _ = store.jobs.enqueue("replay", {"bench": True},
                                    job_key(batch, provider, call_id),
                                    call=(provider, call_id), batch=batch.id)
        claimed = store.jobs.claim(job.id, "bench", lease=60)
        store.jobs.complete(claimed, [f"replay-{call_id}"], result={
            "row": row, "replay_id": f"replay-{call_id}"})
    return batch


def aggregate_timing(store: Any, batch: Any, runs: int) -> dict[str, Any]:
    """Median seconds of ``batch_report`` (read + aggregate) and of ``aggregate`` alone."""
    from voicereplay.compare.aggregate import aggregate
    from voicereplay.pipeline.batch_reports import batch_report

    report_s, aggregate_s, json_s = [], [], []
    for _ in range(runs):
        began = time.perf_counter()
        report = batch_report(store, batch)
        report_s.append(time.perf_counter() - began)
        rows = report.rows
        began = time.perf_counter()
        agg = aggregate(rows)
        aggregate_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        json.dumps(report.to_json(), default=str)
        json_s.append(time.perf_counter() - began)
    assert agg.calls == len(batch.calls) == report.status.completed
    return {"report_s": statistics.median(report_s), "report_max_s": max(report_s),
            "aggregate_s": statistics.median(aggregate_s), "aggregate_max_s": max(aggregate_s),
            "read_s": statistics.median(report_s) - statistics.median(aggregate_s),
            "json_s": statistics.median(json_s), "calls": agg.calls,
            "passed": agg.overall.passed, "tool_change_kinds": len(agg.tool_changes)}


def aggregate_run(backend: str, count: int, runs: int, seed_rows: Sequence[dict[str, Any]],
                  database_url: str | None) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="vr-bench-agg-"))
    try:
        store, _settings = open_store(_env(root / "home", database_url))
        began = time.perf_counter()
        batch = store_comparisons(store, seed_rows, count)
        stored = time.perf_counter() - began
        timing = aggregate_timing(store, batch, runs)
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"part": "aggregate", "backend": backend, "comparisons": count, "runs": runs,
            "store_s": stored, **timing}


def _replay_bench() -> Any:
    """bench/replay.py (its machine-load helpers), loaded by path: bench/ is no package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_replay", REPO / "bench" / "replay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- main --------------------------------------------------------------------------------------


@contextmanager
def _postgres() -> Iterator[Any]:
    from tests.servers import running_postgres

    with running_postgres() as server:
        yield server


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) / 2**20
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, nproc {os.cpu_count()}, "
            f"{cpu}, {mem:.0f} GiB, Python {platform.python_version()}, SQLite "
            f"{sqlite3.sqlite_version}, voicereplay {_replay_bench()._commit()}, "
            f"load {os.getloadavg()[0]:.2f}")


def _spread(rows: list[dict[str, Any]], key: str, fmt: str = "{:.2f}") -> str:
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "–"
    median = statistics.median(values)
    if len(values) == 1:
        return fmt.format(median)
    return f"{fmt.format(median)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def measured(run: Callable[[], dict[str, Any]], idle_wait: float) -> dict[str, Any]:
    """Run one measurement, noting the CPU other processes took meanwhile (shared VM)."""
    helpers = _replay_bench()
    if idle_wait > 0:
        helpers._wait_idle(limit=idle_wait)
    busy_seconds = helpers._busy_seconds
    busy, own, began, load = busy_seconds(), _own_cpu(), time.monotonic(), os.getloadavg()[0]
    row = run()
    wall = time.monotonic() - began
    row["other_cores"] = max(0.0, (busy_seconds() - busy - (_own_cpu() - own)) / wall)
    row["load_1min_before"] = load
    print(json.dumps({k: v for k, v in row.items() if k != "rows"}), file=sys.stderr,
          flush=True)
    return row


def report(throughput: list[dict[str, Any]], aggregates: list[dict[str, Any]]) -> None:
    print(f"<!-- {_machine()} -->")
    if throughput:
        print("| configuration | calls | runs | calls/min | span s | CPU s/call | busy cores | "
              "job s (p50) | first job s | others' cores |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for config, calls in sorted({(r["config"], r["calls"]) for r in throughput},
                                    key=lambda k: (CONFIGS.index(k[0]), k[1])):
            rows = [r for r in throughput if (r["config"], r["calls"]) == (config, calls)]
            print(f"| {config} | {calls} | {len(rows)} | "
                  f"{_spread(rows, 'calls_per_min', '{:.1f}')} | "
                  f"{_spread(rows, 'span_s', '{:.0f}')} | {_spread(rows, 'cpu_s_per_call')} | "
                  f"{_spread(rows, 'busy_cores')} | {_spread(rows, 'job_s_p50', '{:.1f}')} | "
                  f"{_spread(rows, 'first_job_s', '{:.1f}')} | {_spread(rows, 'other_cores')} |")
    if aggregates:
        print("\n| store | comparisons | runs | batch_report s (median; max) | aggregate s | "
              "reading s | report JSON s | storing them s |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for row in sorted(aggregates, key=lambda r: (r["backend"], r["comparisons"])):
            print(f"| {row['backend']} | {row['comparisons']} | {row['runs']} | "
                  f"{row['report_s']:.3f}; {row['report_max_s']:.3f} | "
                  f"{row['aggregate_s']:.3f} | {row['read_s']:.3f} | {row['json_s']:.3f} | "
                  f"{row['store_s']:.1f} |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="calls in each batch")
    parser.add_argument("--runs", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--figures", default="png", help="the replays' chart format")
    parser.add_argument("--pg-concurrency", type=int, default=1,
                        help="threads of each PostgreSQL worker process")
    parser.add_argument("--comparisons", type=int, default=1000)
    parser.add_argument("--agg-runs", type=int, default=7)
    parser.add_argument("--agg-backends", default="sqlite,postgres")
    parser.add_argument("--idle-wait", type=float, default=30.0,
                        help="longest wait for an idle machine before each run, seconds")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-aggregate", action="store_true")
    parser.add_argument("--tables-from", nargs="+", type=Path, metavar="LOG",
                        help="only print the tables of the JSON lines earlier runs wrote to "
                             "stderr (several runs' logs: medians over all of them)")
    args = parser.parse_args(argv)
    if args.tables_from:
        logged = [json.loads(line) for path in args.tables_from
                  for line in path.read_text().splitlines() if line.startswith("{")]
        report([r for r in logged if r.get("part") == "throughput"],
               [r for r in logged if r.get("part") == "aggregate"])
        return
    configs = [] if args.skip_throughput else [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configuration(s) {sorted(unknown)}; known: {', '.join(CONFIGS)}")
    needs_pg = "postgres-2p" in configs or (
        not args.skip_aggregate and "postgres" in args.agg_backends.split(","))
    throughput: list[dict[str, Any]] = []
    aggregates: list[dict[str, Any]] = []
    with _postgres() if needs_pg else nullcontext() as server:
        for _ in range(args.runs if configs else 0):  # interleaved: drift hits every config
            for config in configs:
                url = server.url(server.create_database()) if config == "postgres-2p" else None

                def one(config: str = config, url: str | None = url) -> dict[str, Any]:
                    return throughput_run(config, args.calls, url, args.figures,
                                          args.pg_concurrency)

                throughput.append(measured(one, args.idle_wait))
        if not args.skip_aggregate:
            seeds = [row for run in throughput for row in run["rows"]] or fake_seed_rows()
            for backend in (b for b in args.agg_backends.split(",") if b):
                url = server.url(server.create_database()) if backend == "postgres" else None

                def agg(backend: str = backend, url: str | None = url) -> dict[str, Any]:
                    return aggregate_run(backend, args.comparisons, args.agg_runs, seeds, url)

                aggregates.append(measured(agg, 0))
    report(throughput, aggregates)


if __name__ == "__main__":
    main()
