"""Benchmark: how long comparing a replay with its call takes, reports included.

    python bench/compare.py                 # demo + 5-minute call, 5 timed runs each
    python bench/compare.py --runs 3 --calls demo

For each call (the demo, 46 s; the 5-minute call of bench/replay.py) the call is imported into
a fresh VOICEREPLAY_HOME and replayed once with ``--model recorded`` (not timed). Then, in this
process, ``voicereplay.compare.compare`` (alignment, similarity, divergence, speech activity of
both calls' recordings, metrics, latency, WER, fidelity) and ``write_reports`` (report.json,
report.md, junit.xml, the two PNG charts) are timed ``--runs`` times each after one warm-up
run (which pays for importing matplotlib). Prints a Markdown table for BENCHMARKS.md: medians,
and the comparison's share of the call's duration.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def measure(directory: Path, runs: int) -> dict[str, float]:
    from voicereplay import pipeline
    from voicereplay.compare.comparison import compare
    from voicereplay.compare.files import write_reports
    from voicereplay.config import Settings
    from voicereplay.pipeline.replaying import ReplayOptions, replay_call
    from voicereplay.store import Store

    store = Store.from_settings(Settings.from_env())
    with pipeline.open_provider("files", directory=directory) as source:
        [outcome] = pipeline.import_calls(store, source)
    call = store.get_call(outcome.call_id or "", outcome.provider)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    assert snapshot is not None
    [replay] = replay_call(store, call, snapshot, base_snapshot=snapshot,
                           options=ReplayOptions(model="recorded"))
    out = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    write_reports(compare(call, replay), call, replay, out)  # warm-up
    comparing: list[float] = []
    writing: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        comparison = compare(call, replay)
        comparing.append(time.perf_counter() - started)
        started = time.perf_counter()
        write_reports(comparison, call, replay, out)
        writing.append(time.perf_counter() - started)
    return {"duration": call.duration or 0.0, "turns": len(call.turns),
            "compare": statistics.median(comparing), "reports": statistics.median(writing),
            "compare_min": min(comparing), "compare_max": max(comparing)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", nargs="+", default=["demo", "long"], choices=["demo", "long"])
    args = parser.parse_args()
    from replay import DEMO_DIR, build_long_call

    rows = []
    for name in args.calls:
        os.environ["VOICEREPLAY_HOME"] = tempfile.mkdtemp(prefix="bench-compare-home-")
        directory = DEMO_DIR if name == "demo" else build_long_call(
            Path(tempfile.mkdtemp(prefix="bench-long-")))
        figures = measure(directory, args.runs)
        total = figures["compare"] + figures["reports"]
        rows.append(
            f"| {name} ({figures['duration']:.0f} s, {figures['turns']:.0f} turns) "
            f"| {figures['compare']:.3f} ({figures['compare_min']:.3f}–"
            f"{figures['compare_max']:.3f}) | {figures['reports']:.3f} | {total:.3f} "
            f"| {total / figures['duration']:.4f} |")
    print(f"bench/compare.py, {time.strftime('%Y-%m-%d')}, {platform.machine()} "
          f"{os.cpu_count()} cores, python {platform.python_version()}, {args.runs} runs "
          "(median; min–max)\n")
    print("| call | compare s | reports s | total s | total / call duration |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
