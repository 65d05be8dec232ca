"""Benchmark: the webhook path — signed Vapi end-of-call reports acknowledged by `serve`.

    python bench/webhooks.py                          # 3 runs: 5,000 acks, then 100 drained
    python bench/webhooks.py --runs 1 --count 2000 --drain 0 --parts 500

Each run starts a real ``voicereplay serve`` process on a fresh temporary home (SQLite store,
SqliteHuey queue) with ``VOICEREPLAY_VAPI_WEBHOOK_SECRET`` set (HMAC-SHA256 over
``"{timestamp}.{body}"`` by default, ``--auth secret`` for the shared-secret header) and a
rules file whose one rule has no conditions (it matches every call) and replays with the fake
backends of ``tests/fakes/backends.py`` (fake-stt, fake-llm, fake-tts), loaded as a plugin.
The reports are the demo call's real-shaped ``end-of-call-report`` (tests/fakes/webhooks
``vapi_report``, ~18 KB of JSON) with a distinct ``message.call.id`` each and presigned
recording URLs into a local storage app; a duplicate is the same call again with new presigned
URLs (as a provider's redelivery), sent ~100 positions after its original. The client is this
process: ``--concurrency`` threads, one keep-alive ``httpx.Client`` each, on the same 2 cores
as the server; a latency is ``time.perf_counter()`` around one ``client.post`` (signing
included, waiting for a free thread not).

1. **ack** — ``serve --no-worker``: nothing runs the queued event jobs, so the figures are the
   acknowledgement path alone: verify, parse, store the event (committed), store the event
   job, hand it to Huey, note the delivery — all before the 200. ``--count`` reports plus
   ``--duplicates`` redeliveries. Then the store is checked: events == distinct reports,
   event jobs == distinct reports, every job handed to Huey once (its queue holds exactly that
   many messages), deliveries counted == requests sent, every redelivery answered
   ``duplicate``.
   With ``--ignored N`` (default 1,000) the same server then gets N bodies of the same size
   whose type is acknowledged and ignored: the floor (HTTP, verify, parse, nothing stored).
2. **drain** — ``serve`` with its embedded worker (``--worker-concurrency``): ``--drain``
   reports (and a tenth as many duplicates) acknowledged while the worker takes every call in
   (JSON, snapshot, four recordings downloaded from the storage app), runs the rules and the
   replay. Reports the acks under that load and the time from the first request to the last
   replay job's completion; checks one replay job per call, all COMPLETED, none duplicated.

``--parts N`` also times the steps of ``receive()`` in this process (no HTTP) on N calls, and
profiles it with cProfile. Prints one JSON line per run to stderr and Markdown tables for
BENCHMARKS.md to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import hmac
import io
import itertools
import json
import os
import platform
import pstats
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TICK = os.sysconf("SC_CLK_TCK")

SECRET = "bench-vapi-secret"
PLACEHOLDER = "00000000-0000-4000-8000-bench0call00"  # the call id in the report template
HANG = 1800.0  # seconds before a wait gives up
AIM_RPS, AIM_P99_MS = 300.0, 50.0
KINDS = ("stereo", "mixed", "customer", "agent")
RULES = """\
version: 1
rules:
  - name: every-call
    description: no conditions, so every call matches
    replay:
      stt: fake-stt
      tts: fake-tts
      caller_tts: fake-tts
      llm: fake-llm
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Others:
    """Cores other processes kept busy meanwhile (from /proc; a shared 2-core machine): the
    machine's busy CPU time less that of ``pids``, over the wall time."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self.start = self._now()

    def _now(self) -> tuple[float, float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split()[1:9]]
        busy = (sum(fields) - fields[3] - fields[4]) / TICK  # less idle and iowait
        return time.perf_counter(), busy, sum(_cpu_seconds(pid) for pid in self.pids)

    def cores(self) -> float:
        (t0, busy0, ours0), (t1, busy1, ours1) = self.start, self._now()
        return max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (t1 - t0)


def _env(home: Path, rules: Path, auth: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VOICEREPLAY_") and not k.endswith("_API_KEY")}
    env.update(VOICEREPLAY_HOME=str(home), VOICEREPLAY_PLUGINS="tests.fakes.backends",
               VOICEREPLAY_VAPI_WEBHOOK_SECRET=SECRET, VOICEREPLAY_VAPI_WEBHOOK_AUTH=auth,
               VOICEREPLAY_RULES=str(rules), VOICEREPLAY_JOB_ATTEMPTS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    return env


@contextmanager
def _serve(env: dict[str, str], log: Path, *args: str) -> Iterator[tuple[str, int]]:
    """``voicereplay serve`` on a free port; SIGTERM on exit. Yields (url, pid)."""
    import httpx

    port = _port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "voicereplay", "serve", "--port", str(port),
                             *args], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/jobs", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Reports:
    """Bodies of distinct end-of-call reports: the demo report with its call id (and so its
    recording names) replaced; ``redelivery`` gives the presigned URLs a new signature."""

    def __init__(self, storage: Any, storage_url: str) -> None:
        from tests.fakes.webhooks import vapi_report

        self.template = json.dumps(vapi_report(storage, storage_url, call_id=PLACEHOLDER),
                                   separators=(",", ":"))
        self.audio = {kind: storage.files.pop(f"{PLACEHOLDER}-{kind}.wav") for kind in KINDS}
        self.storage = storage

    def body(self, call_id: str, *, redelivery: bool = False, ignored: bool = False) -> bytes:
        text = self.template.replace(PLACEHOLDER, call_id)
        if ignored:  # the same bytes, a type that is acknowledged and not stored
            text = text.replace('"type":"end-of-call-report"', '"type":"conversation-update"', 1)
        if redelivery:
            text = text.replace("X-Amz-Signature=sig", "X-Amz-Signature=redelivered")
        return text.encode()

    def host(self, call_id: str) -> None:
        """Make the call's recordings downloadable (the same bytes for every call)."""
        for kind in KINDS:
            self.storage.files[f"{call_id}-{kind}.wav"] = self.audio[kind]


def _headers(auth: str, body: bytes) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if auth == "hmac":
        stamp = str(int(time.time()))
        mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        headers.update({"x-timestamp": stamp, "x-signature": mac.hexdigest()})
    else:
        headers["x-vapi-secret"] = SECRET
    return headers


def schedule(count: int, duplicates: int, seed: int = 7) -> list[tuple[str, bool]]:
    """(call id, is a redelivery) in sending order: each redelivery ~100 places after its
    original."""
    rng = random.Random(seed)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]
    again = rng.sample(range(count), min(duplicates, count))
    keyed = [(float(i), ids[i], False) for i in range(count)]
    keyed += [(i + 100.5, ids[i], True) for i in again]
    return [(call_id, dup) for _, call_id, dup in sorted(keyed)]


def burst(url: str, reports: Reports, plan: list[tuple[str, bool]], auth: str,
          concurrency: int, *, ignored: bool = False) -> dict[str, Any]:
    """Post every report of ``plan`` with ``concurrency`` threads; latencies and answers."""
    import httpx

    bodies = [reports.body(call_id, redelivery=dup, ignored=ignored) for call_id, dup in plan]
    feed = iter(range(len(plan)))
    lock = threading.Lock()
    latency = [0.0] * len(plan)
    answers: list[tuple[int, str | None]] = [(0, None)] * len(plan)

    def work() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:
                with lock:
                    i = next(feed, None)
                if i is None:
                    return
                began = time.perf_counter()
                try:
                    response = client.post("/webhooks/vapi", content=bodies[i],
                                           headers=_headers(auth, bodies[i]))
                    code = response.status_code
                    latency[i] = time.perf_counter() - began
                    status = response.json().get("status") if code == 200 else response.text
                except httpx.HTTPError as exc:
                    code, status = -1, repr(exc)
                    latency[i] = time.perf_counter() - began
                answers[i] = (code, status)

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    ms = [x * 1000 for x in latency]
    failed = [(plan[i][0], a) for i, a in enumerate(answers) if a[0] != 200]
    per_call: dict[str, list[str | None]] = {}
    for (call_id, _), (code, status) in zip(plan, answers, strict=True):
        if code == 200:
            per_call.setdefault(call_id, []).append(status)
    # One delivery of each call is answered "stored", every other one "duplicate" (a
    # redelivery racing its original may be the one stored; which one does not matter).
    if ignored:
        once = sum(1 for got in per_call.values() if set(got) == {"ignored"})
    else:
        once = sum(1 for got in per_call.values()
                   if got.count("stored") == 1 and got.count("duplicate") == len(got) - 1)
    return {"requests": len(plan), "wall_s": wall, "rps": len(plan) / wall,
            "p50_ms": _pct(ms, 0.5), "p90_ms": _pct(ms, 0.9), "p99_ms": _pct(ms, 0.99),
            "max_ms": max(ms), "non_2xx": len(failed), "first_failures": failed[:3],
            "calls_stored_once": once,
            "answered_duplicate": sum(got.count("duplicate") for got in per_call.values())}


def check_store(home: Path, plan: list[tuple[str, bool]]) -> dict[str, Any]:
    """What the store holds after a burst (SQLite, read directly)."""
    distinct = {call_id for call_id, _ in plan}
    with sqlite3.connect(home / "voicereplay.db") as db:
        events = db.execute("SELECT call_id, deliveries FROM events WHERE provider='vapi' AND "
                            "event_type='end-of-call-report'").fetchall()
        jobs = db.execute("SELECT request, delivered_at FROM jobs WHERE kind='event'"
                          ).fetchall()
        event_ids = {r[0] for r in db.execute("SELECT id FROM events")}
    job_events = Counter(json.loads(r[0])["event_id"] for r in jobs)
    return {"events": len(events), "events_distinct_calls": len({c for c, _ in events}),
            "events_match": {c for c, _ in events} == distinct,
            "deliveries": sum(d for _, d in events),
            "event_jobs": len(jobs), "event_jobs_per_event_max": max(job_events.values(),
                                                                     default=0),
            "event_jobs_for_stored_events": set(job_events) == event_ids,
            "jobs_delivered": sum(1 for r in jobs if r[1] is not None)}


def _huey_messages(home: Path) -> int:
    with sqlite3.connect(home / "queue.db") as db:
        return int(db.execute("SELECT count(*) FROM task").fetchone()[0])


def _db_file(home: Path) -> Path:
    found = home / "voicereplay.db"
    if not found.exists():
        raise SystemExit(f"no SQLite store at {found}: {sorted(p.name for p in home.iterdir())}")
    return found


def ack_run(args: argparse.Namespace) -> dict[str, Any]:
    """Part 1: ``serve --no-worker``, ``--count`` reports and ``--duplicates`` redeliveries."""
    from tests.fakes.webhooks import Storage

    root = Path(tempfile.mkdtemp(prefix="vr-bench-hooks-"))
    try:
        (root / "rules.yaml").write_text(RULES, encoding="utf-8")
        env = _env(root / "home", root / "rules.yaml", args.auth)
        plan = schedule(args.count, args.duplicates)
        reports = Reports(Storage(), "http://127.0.0.1:9")  # never fetched: nothing runs
        with _serve(env, root / "serve.log", "--no-worker") as (url, pid):
            others, cpu0, own0 = Others(os.getpid(), pid), _cpu_seconds(pid), time.process_time()
            row = burst(url, reports, plan, args.auth, args.concurrency)
            row.update(other_cores=others.cores(),
                       server_cpu_ms=1000 * (_cpu_seconds(pid) - cpu0) / len(plan),
                       client_cpu_ms=1000 * (time.process_time() - own0) / len(plan))
            if args.ignored:  # the floor: HTTP, verify and parse, nothing stored
                floor = schedule(args.ignored, 0, seed=5)
                others, cpu0, own0 = (Others(os.getpid(), pid), _cpu_seconds(pid),
                                      time.process_time())
                base = burst(url, reports, floor, args.auth, args.concurrency, ignored=True)
                row["ignored"] = {**base, "other_cores": others.cores(),
                                  "server_cpu_ms": 1000 * (_cpu_seconds(pid) - cpu0) / len(floor),
                                  "client_cpu_ms": 1000 * (time.process_time() - own0)
                                  / len(floor), "count": args.ignored, "duplicates": 0,
                                  "concurrency": args.concurrency,
                                  "ok_ignored": base["calls_stored_once"] == args.ignored}
        _db_file(root / "home")
        row.update(check_store(root / "home", plan), huey_messages=_huey_messages(root / "home"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    distinct = args.count
    row.update(part="ack", count=distinct, duplicates=len(plan) - distinct,
               concurrency=args.concurrency, auth=args.auth)
    row["ok"] = (row["non_2xx"] == 0 and row["calls_stored_once"] == distinct
                 and row.get("ignored", {}).get("ok_ignored", True)
                 and row["answered_duplicate"] == len(plan) - distinct
                 and row["events"] == distinct and row["events_match"]
                 and row["deliveries"] == len(plan) and row["event_jobs"] == distinct
                 and row["event_jobs_per_event_max"] == 1 and row["event_jobs_for_stored_events"]
                 and row["jobs_delivered"] == distinct and row["huey_messages"] == distinct)
    return row


def drain_run(args: argparse.Namespace) -> dict[str, Any]:
    """Part 2: ``serve`` with its embedded worker; acks, then every replay to the end."""
    from tests.fakes.server import serve as serve_app
    from tests.fakes.webhooks import Storage

    root = Path(tempfile.mkdtemp(prefix="vr-bench-hooks-drain-"))
    storage = Storage()
    try:
        (root / "rules.yaml").write_text(RULES, encoding="utf-8")
        env = _env(root / "home", root / "rules.yaml", args.auth)
        plan = schedule(args.drain, max(1, args.drain // 10))
        with serve_app(storage.app) as storage_server, \
                _serve(env, root / "serve.log", "--concurrency",
                       str(args.worker_concurrency)) as (url, pid):
            reports = Reports(storage, storage_server.url)
            for call_id, _ in plan:
                reports.host(call_id)
            others = Others(os.getpid(), pid)
            row = burst(url, reports, plan, args.auth, args.concurrency)
            started = time.time() - row["wall_s"]
            _wait(f"{args.drain} replays", lambda: _drained(root / "home", args.drain),
                  root / "serve.log")
            row.update(other_cores=others.cores())
        row.update(check_store(root / "home", plan), **_outcomes(root / "home", started))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    row.update(part="drain", count=args.drain, duplicates=len(plan) - args.drain,
               concurrency=args.concurrency, auth=args.auth,
               worker_concurrency=args.worker_concurrency)
    row["ok"] = (row["non_2xx"] == 0 and row["calls_stored_once"] == args.drain
                 and row["answered_duplicate"] == len(plan) - args.drain
                 and row["deliveries"] == len(plan) and row["events"] == args.drain
                 and row["event_jobs"] == args.drain and row["event_jobs_per_event_max"] == 1
                 and row["replay_jobs"] == args.drain and row["replay_calls"] == args.drain
                 and row["jobs_not_completed"] == 0 and row["events_processed"] == args.drain)
    return row


def _finished(db: sqlite3.Connection) -> tuple[int, int]:
    replays = db.execute("SELECT count(*) FROM jobs WHERE kind='replay' AND status IN "
                         "('COMPLETED', 'FAILED', 'CANCELLED')").fetchone()[0]
    events = db.execute("SELECT count(*) FROM jobs WHERE kind='event' AND status IN "
                        "('COMPLETED', 'FAILED', 'CANCELLED')").fetchone()[0]
    return int(replays), int(events)


def _drained(home: Path, calls: int) -> bool:
    with sqlite3.connect(home / "voicereplay.db", timeout=30) as db:
        replays, events = _finished(db)
    return events >= calls and replays >= calls


def _outcomes(home: Path, started: float) -> dict[str, Any]:
    from datetime import UTC, datetime

    with sqlite3.connect(home / "voicereplay.db") as db:
        replay = db.execute("SELECT call_id, status, finished_at, trigger FROM jobs "
                            "WHERE kind='replay'").fetchall()
        undone = db.execute("SELECT count(*) FROM jobs WHERE status != 'COMPLETED'"
                            ).fetchone()[0]
        errors = db.execute("SELECT error FROM jobs WHERE error IS NOT NULL LIMIT 3").fetchall()
        processed = db.execute("SELECT count(*) FROM events WHERE status='PROCESSED'"
                               ).fetchone()[0]
    last = max(datetime.fromisoformat(r[2]).replace(tzinfo=UTC).timestamp() for r in replay if r[2])
    return {"replay_jobs": len(replay), "replay_calls": len({r[0] for r in replay}),
            "jobs_not_completed": int(undone), "errors": [e[0][:200] for e in errors],
            "events_processed": int(processed), "drain_s": last - started,
            "calls_per_s": len(replay) / (last - started)}


def _wait(what: str, check: Callable[[], bool], log: Path) -> None:
    deadline = time.monotonic() + HANG
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


# -- in-process parts -------------------------------------------------------------------------
def parts(args: argparse.Namespace) -> dict[str, Any]:
    """Each step of ``receive()`` timed apart on ``--parts`` distinct reports, in this
    process and one thread (no HTTP), then ``receive()`` itself under cProfile."""
    from tests.fakes.webhooks import Storage
    from voicereplay.config import Settings
    from voicereplay.pipeline.queue import JobQueue
    from voicereplay.pipeline.webhooks import parse_vapi, receive, verify
    from voicereplay.store import Store

    root = Path(tempfile.mkdtemp(prefix="vr-bench-hooks-parts-"))
    try:
        (root / "rules.yaml").write_text(RULES, encoding="utf-8")
        settings = Settings.from_env(_env(root / "home", root / "rules.yaml", args.auth))
        store = Store.from_settings(settings)
        queue = JobQueue(store, settings)
        reports = Reports(Storage(), "http://127.0.0.1:9")
        steps: dict[str, list[float]] = {k: [] for k in (
            "verify", "parse", "events.record", "jobs.enqueue", "huey enqueue",
            "jobs.delivered", "receive() whole", "app over ASGI (no TCP), client included")}

        def took(name: str, began: float) -> None:
            steps[name].append((time.perf_counter() - began) * 1e6)

        for call_id, _ in schedule(args.parts, 0, seed=11):
            body = reports.body(call_id)
            headers = _headers(args.auth, body)
            t = time.perf_counter()
            verify("vapi", settings, body, headers)
            took("verify", t)
            t = time.perf_counter()
            event = parse_vapi(body)
            took("parse", t)
            assert event.event_type is not None and event.call_id is not None
            t = time.perf_counter()
            stored, _ = store.events.record("vapi", event.event_type, event.call_id,
                                            body.decode(), {"content-type": "application/json"})
            took("events.record", t)
            t = time.perf_counter()
            job, _ = store.jobs.enqueue("event", {"event_id": stored.id}, f"event:{stored.id}",
                                        call=("vapi", call_id),
                                        max_attempts=settings.job_attempts)
            took("jobs.enqueue", t)
            t = time.perf_counter()
            queue._run_task(job.id)
            took("huey enqueue", t)
            t = time.perf_counter()
            store.jobs.delivered(job.id)
            took("jobs.delivered", t)
        plan = schedule(args.parts, 0, seed=12)
        bodies = [(reports.body(c), _headers(args.auth, reports.body(c))) for c, _ in plan]
        for body, headers in bodies[: len(bodies) // 2]:
            t = time.perf_counter()
            receive("vapi", store, settings, body, headers, submit=queue.submit_job)
            took("receive() whole", t)
        asgi_plan = schedule(args.parts, 0, seed=13)
        for took_us in asyncio.run(_asgi(settings, store, [reports.body(c)
                                                           for c, _ in asgi_plan], args.auth)):
            steps["app over ASGI (no TCP), client included"].append(took_us)
        profile = cProfile.Profile()
        profile.enable()
        for body, headers in bodies[len(bodies) // 2:]:
            receive("vapi", store, settings, body, headers, submit=queue.submit_job)
        profile.disable()
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(40)
        print(text.getvalue(), file=sys.stderr)
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"part": "parts", "n": args.parts,
            **{k: {"p50_us": statistics.median(v), "p99_us": _pct(v, 0.99)}
               for k, v in steps.items()}}


async def _asgi(settings: Any, store: Any, bodies: list[bytes], auth: str) -> list[float]:
    """Microseconds of each POST through ``create_app`` in this process, one at a time."""
    import httpx

    from voicereplay.web import create_app

    app = create_app(settings, store=store, allowed_hosts=["127.0.0.1"])
    times = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for body in bodies:
            began = time.perf_counter()
            answer = await client.post("/webhooks/vapi", content=body,
                                       headers=_headers(auth, body))
            times.append((time.perf_counter() - began) * 1e6)
            if answer.status_code != 200:
                raise SystemExit(f"ASGI: {answer.status_code} {answer.text[:200]}")
    return times


# -- report -----------------------------------------------------------------------------------
def _spread(rows: list[dict[str, Any]], key: str, fmt: str = "{:.1f}") -> str:
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return fmt.format(values[0])
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}–{fmt.format(max(values))})")


def report(ack: list[dict[str, Any]], drain: list[dict[str, Any]],
           part: dict[str, Any] | None, args: argparse.Namespace) -> None:
    print(f"\n# webhook benchmark — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite "
          f"{sqlite3.sqlite_version}")
    print(f"# command: python bench/webhooks.py {' '.join(sys.argv[1:])}\n")
    head = ("| mode | runs | requests (dups) | conc. | req/s | p50 ms | p90 ms | p99 ms | "
            "max ms | non-2xx | server CPU ms/req | client CPU ms/req | others' cores |")
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if ack or drain:
        print(head)
        print(rule)
    floor = [r["ignored"] for r in ack if "ignored" in r]
    for rows, name in ((ack, "ack (--no-worker)"), (floor, "ignored type, same size (floor)"),
                       (drain, "ack with worker draining")):
        if not rows:
            continue
        r0 = rows[0]
        print(f"| {name} | {len(rows)} | {r0['requests']} ({r0['duplicates']}) | "
              f"{r0['concurrency']} | {_spread(rows, 'rps', '{:.0f}')} | "
              f"{_spread(rows, 'p50_ms')} | {_spread(rows, 'p90_ms')} | "
              f"{_spread(rows, 'p99_ms')} | {_spread(rows, 'max_ms', '{:.0f}')} | "
              f"{sum(r['non_2xx'] for r in rows)} | {_spread(rows, 'server_cpu_ms', '{:.2f}')} "
              f"| {_spread(rows, 'client_cpu_ms', '{:.2f}')} | "
              f"{_spread(rows, 'other_cores', '{:.2f}')} |")
    for rows, name in ((ack, "ack"), (drain, "drain")):
        for r in rows:
            checks = (f"events {r['events']} / distinct {r['count']}, event jobs "
                      f"{r['event_jobs']} (max {r['event_jobs_per_event_max']} per event), "
                      f"deliveries counted {r['deliveries']} / sent {r['requests']}, "
                      f"calls answered `stored` exactly once {r['calls_stored_once']}, "
                      f"answered `duplicate` {r['answered_duplicate']} / {r['duplicates']} "
                      f"redeliveries")
            if name == "ack":
                checks += f", Huey messages {r['huey_messages']}"
            else:
                checks += (f", replay jobs {r['replay_jobs']} for {r['replay_calls']} calls, "
                           f"not completed {r['jobs_not_completed']}, drained in "
                           f"{r['drain_s']:.1f} s ({r['calls_per_s']:.2f} calls/s)")
            print(f"\n- {name}: {'OK' if r['ok'] else '**FAILED**'} — {checks}")
    if part:
        print(f"\n| step of receive() (in process, {part['n']} reports) | p50 µs | p99 µs |")
        print("|---|---:|---:|")
        for key, value in part.items():
            if isinstance(value, dict):
                print(f"| {key} | {value['p50_us']:.0f} | {value['p99_us']:.0f} |")
    if ack:
        rps = statistics.median(r["rps"] for r in ack)
        p99 = statistics.median(r["p99_ms"] for r in ack)
        print(f"\naim ≥ {AIM_RPS:.0f} req/s and p99 < {AIM_P99_MS:.0f} ms (ack, median of "
              f"runs): {rps:.0f} req/s, p99 {p99:.1f} ms → "
              f"{'met' if rps >= AIM_RPS and p99 < AIM_P99_MS else '**missed**'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="distinct reports (ack)")
    parser.add_argument("--duplicates", type=int, default=250, help="redeliveries (ack)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads")
    parser.add_argument("--drain", type=int, default=100,
                        help="distinct reports replayed end to end (0: skip)")
    parser.add_argument("--worker-concurrency", type=int, default=3,
                        help="serve --concurrency in the drain part")
    parser.add_argument("--auth", choices=("hmac", "secret"), default="hmac")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", type=int, default=0,
                        help="also time receive()'s steps in process on N reports")
    parser.add_argument("--skip-ack", action="store_true")
    parser.add_argument("--ignored", type=int, default=1000,
                        help="after the ack burst, N reports of an ignored type (0: skip)")
    args = parser.parse_args()
    ack: list[dict[str, Any]] = []
    drain: list[dict[str, Any]] = []
    for run in range(args.runs):
        if not args.skip_ack:
            ack.append(ack_run(args))
            print(json.dumps(ack[-1]), file=sys.stderr, flush=True)
        if args.drain:
            drain.append(drain_run(args))
            print(json.dumps(drain[-1]), file=sys.stderr, flush=True)
        print(f"# run {run + 1} of {args.runs} done", file=sys.stderr, flush=True)
    part = parts(args) if args.parts else None
    if part:
        print(json.dumps(part), file=sys.stderr, flush=True)
    report(ack, drain, part, args)
    if not all(r["ok"] for r in itertools.chain(ack, drain)):
        raise SystemExit("a check failed: see the rows above")


if __name__ == "__main__":
    main()
