"""bench/batch.py's aggregate part on a tiny batch (fake backends, no model), so the bench
cannot rot: the stored comparisons read back as the rows it wrote, and the command prints its
table. How long anything takes is the bench's business, never asserted here."""

from __future__ import annotations

import importlib.util
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
