"""bench/batch.py's aggregate part on a tiny batch (fake backends, no model), so the bench
cannot rot: the stored comparisons read back as the rows it wrote, and the command prints its
table. How long anything takes is the bench's business, never asserted here."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from types import ModuleType

import pytest

from voicereplay.compare.aggregate import CallRow
from voicereplay.config import Settings
from voicereplay.pipeline.batch_reports import batch_report
from voicereplay.store import Store

BENCH = Path(__file__).resolve().parent.parent / "bench" / "batch.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_batch", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stored_comparisons_are_the_jittered_rows_of_a_real_replay(bench: ModuleType,
                                                                    tmp_path: Path) -> None:
    [seed] = bench.fake_seed_rows()  # one fake-backend replay of the demo call, with checks
    row = CallRow.from_json(seed)
    assert {name for name, _ in row.checks} >= {"issue_refund is not called"}
    assert row.replay["latency_p90"] is not None

    with Store.from_settings(Settings.for_home(tmp_path / "home")) as store:
        batch = bench.store_comparisons(store, [seed], 25, seed=3)
        report = batch_report(store, batch)
        assert report.status.completed == 25 and report.status.done
        keys = [r.call_key for r in report.rows]
        assert len(set(keys)) == 25 and all(k.startswith("vapi:bench-agg-") for k in keys)
        # The rows read back are the ones written (same seed: same jitter).
        rng = random.Random(3)
        written = [CallRow.from_json(bench.jitter_row(seed, n, rng)) for n in range(25)]
        assert report.rows == written
        # Jittered: metrics and checks differ between calls, so the aggregate has work.
        assert len({r.replay["latency_p90"] for r in report.rows}) > 1
        assert report.aggregate is not None and report.aggregate.calls == 25
        passed = sum(r.passed for r in written)
        assert report.aggregate.overall.passed == passed and 0 < passed < 25
        assert sum(report.aggregate.tool_changes.values()) == sum(
            len(r.tool_changes) for r in written) > 0
        timing = bench.aggregate_timing(store, batch, runs=2)
        assert timing["calls"] == 25 and timing["passed"] == report.aggregate.overall.passed
        assert set(timing) >= {"report_s", "aggregate_s", "read_s", "json_s"}


def test_the_command_prints_the_aggregate_table(bench: ModuleType,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(["--skip-throughput", "--comparisons", "12", "--agg-runs", "1",
                "--agg-backends", "sqlite", "--idle-wait", "0"])
    out = capsys.readouterr().out
    assert "| store | comparisons | runs | batch_report s" in out
    assert "| sqlite | 12 | 1 | " in out


def test_an_unknown_configuration_is_refused(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--configs", "sqlite-3", "--skip-aggregate"])


def test_tables_from_earlier_runs_take_the_median_per_configuration(
        bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def line(config: str, calls: int, per_min: float) -> str:
        keys = ("span_s", "cpu_s_per_call", "busy_cores", "job_s_p50", "first_job_s",
                "other_cores")
        return json.dumps({"part": "throughput", "config": config, "calls": calls,
                           "calls_per_min": per_min, **dict.fromkeys(keys, 1.0)})

    first, second = tmp_path / "run1.log", tmp_path / "run2.log"
    first.write_text("a log line\n" + line("sqlite-2", 100, 6.0) + "\n"
                     + line("sqlite-1", 100, 5.0) + "\n")
    second.write_text(line("sqlite-2", 100, 8.0) + "\n" + line("sqlite-2", 10, 9.0) + "\n")
    bench.main(["--tables-from", str(first), str(second)])
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| sqlite")]
    assert [r.split(" | ")[:4] for r in rows] == [
        ["| sqlite-1", "100", "1", "5.0"], ["| sqlite-2", "10", "1", "9.0"],
        ["| sqlite-2", "100", "2", "7.0 (6.0–8.0)"]]
