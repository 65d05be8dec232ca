"""Benchmark: import N calls with recordings from the fake Vapi API over loopback.

    python bench/ingest.py                      # 250, 500 and 1000 calls, 3 runs each
    python bench/ingest.py --sizes 1000 --runs 1

The fake Vapi server runs in its own process (so it does not share the importer's CPU time or
memory), serving N copies of the demo call, each with its own small, unique stereo,
customer, agent and mixed recordings (2 s of 8 kHz audio; 160 KB a call) behind 302
redirects, as Vapi does. Every import runs in a fresh process with a fresh VOICEREPLAY_HOME
and reports wall time, calls/s and peak RSS; memory flat in the number of calls means the
import streams instead of holding calls.
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEMO = REPO / "fixtures" / "demo" / "demo-refund.json"
ASSISTANT = REPO / "fixtures" / "demo" / "demo-refund.assistant.json"
API_KEY = "bench-key"


def _wav(seed: int, channels: int, seconds: float = 2.0, rate: int = 8000) -> bytes:
    import random

    rng = random.Random(seed)
    frames = int(seconds * rate)
    samples = rng.randbytes(frames * channels * 2)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return buf.getvalue()


def serve(count: int, port: int) -> None:
    """Child process: the fake Vapi API with ``count`` generated calls."""
    import uvicorn

    from tests.fakes.vapi_api import FakeVapiData, make_vapi_app

    template = json.loads(DEMO.read_text())
    assistant = json.loads(ASSISTANT.read_text())
    data = FakeVapiData()
    data.add_assistant(assistant)
    start = datetime(2025, 6, 1, tzinfo=UTC)
    for i in range(count):
        call = copy.deepcopy(template)
        call["id"] = str(uuid.UUID(int=i + 1))
        created = start + timedelta(minutes=i)
        call["createdAt"] = created.isoformat().replace("+00:00", "Z")
        data.add_call(call, recordings={"stereo": _wav(4 * i, 2), "customer": _wav(4 * i + 1, 1),
                                        "agent": _wav(4 * i + 2, 1), "mixed": _wav(4 * i + 3, 1)})
    app = make_vapi_app(api_key=API_KEY, data=data)
    print("ready", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def client(url: str, limit: int, concurrency: int) -> None:
    """Child process: one import into a fresh home; prints a JSON result line."""
    from voicereplay.pipeline import import_calls, open_provider
    from voicereplay.store import Store

    with tempfile.TemporaryDirectory() as home:
        os.environ["VOICEREPLAY_HOME"] = home
        store = Store.from_settings()
        started = time.perf_counter()
        with open_provider("vapi", api_key=API_KEY, base_url=url) as provider:
            outcomes = import_calls(store, provider, limit=limit, concurrency=concurrency)
        seconds = time.perf_counter() - started
        failed = [o for o in outcomes if not o.ok]
        blobs = sum(1 for p in (Path(home) / "artifacts" / "blobs").rglob("*") if p.is_file())
        print(json.dumps({
            "calls": len(outcomes), "failed": len(failed), "seconds": seconds,
            "blobs": blobs, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            / 1024, "first_error": failed[0].error if failed else None,
        }))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.client:
        client(args.client, args.limit, args.concurrency)
        return

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(max(args.sizes)), "--port", str(port)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        print(f"# ingest benchmark — {datetime.now(UTC):%Y-%m-%d}, {platform.node()}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"# command: python bench/ingest.py --sizes {' '.join(map(str, args.sizes))} "
              f"--runs {args.runs} --concurrency {args.concurrency}\n")
        print("| calls | runs | median s | calls/s (median) | min–max calls/s "
              "| peak RSS MB (median) | blobs |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for size in args.sizes:
            results = []
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, __file__, "--client", url, "--limit", str(size),
                     "--concurrency", str(args.concurrency)],
                    capture_output=True, text=True, check=True,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                if result["failed"] or result["calls"] != size:
                    raise SystemExit(f"import failed: {result}")
                results.append(result)
            rates = [r["calls"] / r["seconds"] for r in results]
            print(f"| {size} | {len(results)} | "
                  f"{statistics.median(r['seconds'] for r in results):.2f} | "
                  f"{statistics.median(rates):.1f} | {min(rates):.1f}–{max(rates):.1f} | "
                  f"{statistics.median(r['peak_rss_mb'] for r in results):.0f} | "
                  f"{results[0]['blobs']} |", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
