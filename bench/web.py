"""Benchmark: server time of the web app's pages, JSON and audio with a large store.

    python bench/web.py          # 10,000 calls, 1,000 replays; 3 runs of 100 requests each
    python bench/web.py --requests 200 --runs 1 --rebuild

The store (SQLite, under /tmp, kept between runs and rebuilt when this script's BUILD stamp or
the newest migration changes, or with --rebuild) is made from the demo call: it is imported
once and replayed once with the fake backends of tests/fakes (no model is loaded); then N-1
copies of the call are saved through ``store.save_call`` (new ids, start times, providers,
ended reasons, analysis results, numbers, and "headphones" swapped for other products in a
third of them) and R-1 copies of the replay through ``store.replays.save`` (new ids; four join
the first replay's batch, as ``--runs 5`` would; the others point at every 10th call, each its
own batch of one run; all share the first replay's audio and report files).

Every request goes to ``create_app`` in this process through ``httpx.ASGITransport``; the time
is ``time.perf_counter()`` around ``await client.get(...)``: routing, middleware, the
route, the store, templates and the response body — the ASGI stack, but no TCP and no uvicorn.
Each endpoint gets --warmup requests first, then --requests timed ones, cycling through 50
calls and 50 single-run replays picked at random; --runs rounds go over every endpoint. One
page is also timed over real HTTP (``voicereplay serve`` in its own process on 127.0.0.1, one
keep-alive httpx client) to show what TCP and uvicorn add. "Others' cores" is the CPU other
processes used while an endpoint was timed (from /proc; this is a shared 2-core machine).
Prints a Markdown table for BENCHMARKS.md: median and p95 of all runs' requests together, and
the spread of each run's p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BUILD = 3  # bump when the way the store is built changes
DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"
BATCH = 5  # runs in the one batch of several replays
AIM_MS = 100.0
ENDED = ["assistant-said-end-call-phrase", "customer-ended-call", "silence-timed-out",
         "assistant-forwarded-call", "pipeline-error-openai-llm-failed"]
PRODUCTS = ["headphones", "earbuds", "speakers"]
RANGE = {"Range": "bytes=100000-165535"}
TICK = os.sysconf("SC_CLK_TCK")
Result = tuple[str, list[float], float]  # endpoint, ms per request, others' cores


def _stamp() -> str:
    versions = sorted(p.stem for p in (REPO / "voicereplay" / "migrations" / "versions")
                      .glob("[0-9]*.py"))
    return f"b{BUILD}-{versions[-1]}"


def build(home: Path, calls: int, replays: int) -> None:
    """A store at ``home`` with ``calls`` calls and ``replays`` replays (see the module doc)."""
    import tests.fakes.backends as fakes
    from voicereplay import pipeline
    from voicereplay.config import Settings
    from voicereplay.pipeline import CallRef, ReplayRequest
    from voicereplay.store import Store

    fakes.register()
    settings = Settings.for_home(home)
    store = Store.from_settings(settings)
    started = time.perf_counter()
    request = ReplayRequest(call=CallRef(call_id=DEMO_CALL, directory=pipeline.demo_dir()),
                            stt="fake-stt", tts="fake-tts", caller_tts="fake-tts",
                            llm="fake-llm")
    first = pipeline.run_call(store, request, settings=settings)[0].replay
    demo = store.get_call(DEMO_CALL, "vapi")
    snapshot = store.snapshot_for_call(DEMO_CALL, "vapi")
    turns = {p: [t.model_copy(update={"text": t.text.replace("headphones", p)}) if t.text
                 else t for t in demo.turns] for p in PRODUCTS}
    snapshot_of_replay = store.get_snapshot(first.snapshot_id)
    rng = random.Random(7)
    keys = [("vapi", DEMO_CALL)]
    for i in range(1, calls):
        call_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        provider = "vapi" if i % 3 else "retell"
        store.save_call(demo.model_copy(update={
            "provider": provider, "call_id": call_id,
            "started_at": demo.started_at - timedelta(minutes=17 * i),
            "ended_at": demo.ended_at - timedelta(minutes=17 * i),
            "ended_reason": ENDED[i % len(ENDED)],
            "customer_number": f"+1415555{i:04d}",
            "analysis": demo.analysis.model_copy(
                update={"success": (True, False, None)[i // 3 % 3]}),
            "turns": turns[PRODUCTS[i // 9 % 3]],  # independent of provider and success
        }), snapshot)
        keys.append((provider, call_id))
        if i % 1000 == 0:
            print(f"  {i} calls saved ({time.perf_counter() - started:.0f} s)", flush=True)
    for j in range(1, replays):
        if j < BATCH:  # the first replay's batch: --runs 5 of the demo call
            provider, call_id, batch, run = "vapi", DEMO_CALL, first.batch_id, j
        else:  # one run, its own batch, on every 10th call
            provider, call_id = keys[(10 * j) % len(keys)]
            batch, run = f"{rng.getrandbits(128):032x}", 0
        store.replays.save(first.model_copy(update={
            "id": f"{rng.getrandbits(128):032x}", "batch_id": batch, "run_index": run,
            "call_id": call_id, "call_provider": provider,
            "created_at": first.created_at + timedelta(seconds=j),
        }), snapshot_of_replay)
    store.close()
    print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)


def ensure_store(calls: int, replays: int, rebuild: bool) -> Path:
    home = Path("/tmp") / f"voicereplay-bench-web-{_stamp()}-{calls}-{replays}"
    done = home / "built"
    if rebuild or not done.exists():
        shutil.rmtree(home, ignore_errors=True)
        print(f"# building the store in {home} …", flush=True)
        build(home, calls, replays)
        done.touch()
    return home


def pctl(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class Others:
    """How many cores other processes kept busy meanwhile (Linux: /proc): the machine's busy
    CPU time less that of ``pids`` (this process, the server), over the wall time."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids or (os.getpid(),)
        self.start = self._now()

    def _now(self) -> tuple[float, float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split()[1:9]]
        busy = sum(fields) - fields[3] - fields[4]  # less idle and iowait
        ours = sum(sum(int(x) for x in Path(f"/proc/{pid}/stat").read_text()
                       .rsplit(")", 1)[1].split()[11:13]) for pid in self.pids)
        return time.perf_counter(), busy / TICK, ours / TICK

    def cores(self) -> float:
        (t0, busy0, ours0), (t1, busy1, ours1) = self.start, self._now()
        return max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (t1 - t0)


async def measure(home: Path, requests: int, warmup: int) -> list[Result]:
    import httpx

    from voicereplay.cli.serve import LOOPBACK_NAMES
    from voicereplay.config import Settings
    from voicereplay.web import create_app

    app = create_app(Settings.for_home(home), allowed_hosts=[*LOOPBACK_NAMES])
    store = app.state.store
    rng = random.Random(11)
    calls = [(c.provider, c.call_id) for c in store.list_calls(limit=None)]
    rows = store.replays.list(limit=None)
    sizes = Counter(r.batch_id for r in rows)
    replays = [r.id for r in rows if sizes[r.batch_id] == 1]
    batched = [r.id for r in rows if sizes[r.batch_id] > 1]
    some_calls = rng.sample(calls, min(len(calls), 50))
    some_replays = rng.sample(replays, min(len(replays), 50)) or batched

    def call(i: int) -> tuple[str, str]:
        return some_calls[i % len(some_calls)]

    def replay(i: int) -> str:
        return some_replays[i % len(some_replays)]

    endpoints = [
        ("page: /calls", lambda i: "/calls"),
        ("page: /calls?q=headphones&provider=vapi", lambda i: "/calls?q=headphones&provider=vapi"),
        ("page: /calls?flagged=yes", lambda i: "/calls?flagged=yes"),
        ("page: /calls?page=200 (last)", lambda i: "/calls?page=200"),
        ("page: /calls/{provider}/{id}", lambda i: "/calls/{}/{}".format(*call(i))),
        ("page: /replays/{id}", lambda i: f"/replays/{replay(i)}"),
        *([(f"page: /replays/{{id}}, a batch of {len(batched)} runs",
            lambda i: f"/replays/{batched[i % len(batched)]}")] if batched else []),
        ("api: /api/calls", lambda i: "/api/calls"),
        ("api: /api/calls?q=headphones&provider=vapi",
         lambda i: "/api/calls?q=headphones&provider=vapi"),
        ("api: /api/calls?flagged=true", lambda i: "/api/calls?flagged=true"),
        ("api: /api/calls/{id}", lambda i: "/api/calls/{1}?provider={0}".format(*call(i))),
        ("api: /api/calls/{id}/history",
         lambda i: "/api/calls/{1}/history?provider={0}".format(*call(i))),
        ("api: /api/replays/{id}", lambda i: f"/api/replays/{replay(i)}"),
        ("api: /api/replays/{id}/comparison", lambda i: f"/api/replays/{replay(i)}/comparison"),
        ("audio: /files/replays/{id}/mixed, Range", lambda i: f"/files/replays/{replay(i)}/mixed"),
        ("audio: /files/calls/{provider}/{id}/mixed, Range",
         lambda i: "/files/calls/{}/{}/mixed".format(*call(i))),
    ]
    results = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for name, url in endpoints:
            headers = RANGE if name.startswith("audio") else {}
            expected = 206 if headers else 200
            times = []
            for i in range(warmup + requests):
                if i == warmup:
                    others = Others()
                t0 = time.perf_counter()
                response = await client.get(url(i), headers=headers)
                elapsed = time.perf_counter() - t0
                if response.status_code != expected:
                    raise SystemExit(f"{url(i)}: {response.status_code} {response.text[:200]}")
                if i >= warmup:
                    times.append(elapsed * 1000)
            results.append((name, times, others.cores()))
            print(f"  {name}: median {statistics.median(times):.1f} ms", file=sys.stderr,
                  flush=True)
    store.close()
    return results


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def over_http(home: Path, path: str, requests: int, warmup: int) -> Result:
    """``path`` timed over loopback HTTP against ``voicereplay serve`` in its own process."""
    import httpx

    port = _free_port()
    env = {**os.environ, "VOICEREPLAY_HOME": str(home), "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-m", "voicereplay", "serve", "--no-worker",
                               "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    client.get("/calls")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            times = []
            for i in range(warmup + requests):
                if i == warmup:
                    others = Others(os.getpid(), server.pid)
                t0 = time.perf_counter()
                client.get(path).raise_for_status()
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * 1000)
        return f"page: {path} over HTTP (uvicorn, 127.0.0.1)", times, others.cores()
    finally:
        server.terminate()
        server.wait(timeout=10)


def table(runs: list[list[Result]]) -> None:
    """One row per endpoint: median and p95 of every run's requests together, the spread of
    the runs' own p95, and how busy the other processes kept the machine."""
    print("| endpoint | requests | median ms | p95 ms | p95 of each run, ms | p95 < 100 ms? "
          "| others' cores |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for results in zip(*runs, strict=True):
        times = [t for _, run_times, _ in results for t in run_times]
        p95s = [pctl(run_times, 95) for _, run_times, _ in results]
        others = [cores for _, _, cores in results]
        p95 = pctl(times, 95)
        print(f"| {results[0][0]} | {len(times)} | {statistics.median(times):.1f} | "
              f"{p95:.1f} | {min(p95s):.1f}–{max(p95s):.1f} | "
              f"{'yes' if p95 < AIM_MS else '**no**'} | {min(others):.2f}–{max(others):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--replays", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="rounds over every endpoint")
    parser.add_argument("--rebuild", action="store_true", help="build the store again")
    parser.add_argument("--no-http", action="store_true", help="skip the real-HTTP row")
    args = parser.parse_args()
    if args.calls < 1 or args.replays < 1:
        parser.error("--calls and --replays must be at least 1")

    home = ensure_store(args.calls, args.replays, args.rebuild)
    runs = []
    for run in range(args.runs):
        print(f"# run {run + 1} of {args.runs}", file=sys.stderr, flush=True)
        results = asyncio.run(measure(home, args.requests, args.warmup))
        if not args.no_http:
            results.append(over_http(home, "/calls", args.requests, args.warmup))
        runs.append(results)
    print(f"\n# web benchmark — {time.strftime('%Y-%m-%d', time.gmtime())}, "
          f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# command: python bench/web.py --calls {args.calls} --replays {args.replays} "
          f"--requests {args.requests} --warmup {args.warmup} --runs {args.runs}; "
          f"store {home}\n")
    table(runs)


if __name__ == "__main__":
    main()
