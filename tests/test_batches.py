"""Batch replay end to end (fake speech backends, a scripted LLM, no models).

Six copies of the demo call are stored; their prompts say what ``batch-llm``'s candidate does
with them (tests/fakes/batch_llm.py): two get fixed (``good``), two get broken (``bad``), two
stay the same. ``voicereplay batch run`` replays them in this process through the jobs layer;
the aggregate, the case lists, the bootstrap intervals (against numpy by hand), the CSV and
JSON exports, resuming an interrupted batch and batch against batch are checked.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from tests.batch_demo import ALL, KINDS, keys, store_tagged_copies
from tests.fakes import batch_llm
from voicereplay import pipeline
from voicereplay.cli import app
from voicereplay.compare.aggregate import CallRow
from voicereplay.config import Settings
from voicereplay.pipeline.batch_reports import batch_report
from voicereplay.pipeline.batches import BatchSelection, parse_filter, resolve_calls
from voicereplay.pipeline.jobs import Worker, run_job
from voicereplay.pipeline.queue import JOB_RUNNERS
from voicereplay.store import Store

runner = CliRunner()
FAKES = ["--stt", "fake-stt", "--tts", "fake-tts", "--caller-tts", "fake-tts",
         "--llm-backend", "batch-llm", "--figures", "svg"]
CANDIDATE = ["--temperature", str(batch_llm.CANDIDATE_TEMPERATURE)]



def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store with the six tagged copies of the demo call (VOICEREPLAY_HOME)."""
    store_tagged_copies(Settings.for_home(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def checks(tmp_path: Path) -> Path:
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump([{"type": "tool_not_called", "tool": "issue_refund"}]))
    return path


def _hand_ci(values: list[float], seed: int = 0, resamples: int = 2000) -> tuple[float, float]:
    data = np.asarray(values, dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(data), size=(resamples, len(data)))
    low, high = np.percentile(data[idx].mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


def test_a_batch_counts_what_the_candidate_fixes_and_breaks(home: Path, checks: Path,
                                                            tmp_path: Path) -> None:
    code, out, err = run("batch", "run", *ALL, *FAKES, *CANDIDATE, "--checks", str(checks),
                         "--name", "candidate", "--json")
    assert code == 5, err  # two calls fail the check: exit 5, as `voicereplay call`
    report = json.loads(out)
    assert report["status"]["completed"] == 6 and report["status"]["state"] == "finished"
    agg = report["aggregate"]
    assert agg["calls"] == 6

    # The check: the two broken calls fail it, the others pass (4/6).
    check = agg["checks"][0]
    assert check["name"] == "issue_refund is not called"
    assert (check["rate"]["passed"], check["rate"]["total"]) == (4, 6)
    assert set(check["failing"]) == keys(KINDS["bad"])
    assert set(check["passing"]) == keys(KINDS["good"] + KINDS["same"])
    # Judged on the baseline too: the real call called issue_refund, so production failed the
    # check on every copy; the candidate fixed four and left the two broken ones failing.
    assert (check["baseline"]["passed"], check["baseline"]["total"]) == (0, 6)
    assert set(check["improved"]) == keys(KINDS["good"] + KINDS["same"])
    assert set(check["unchanged"]) == keys(KINDS["bad"]) and check["regressed"] == []
    assert (agg["overall"]["passed"], agg["overall"]["total"]) == (4, 6)
    flags = [1.0 if c["passed"] else 0.0 for c in report["calls"]]
    assert agg["overall"]["ci"]["low"] == pytest.approx(_hand_ci(flags)[0])
    assert agg["overall"]["ci"]["high"] == pytest.approx(_hand_ci(flags)[1])

    # Latency p90: per-call deltas recomputed from the stored replays' own comparisons.
    with Store.from_settings(Settings.for_home(home)) as store:
        deltas: dict[str, float] = {}
        for line in report["calls"]:
            shown = pipeline.show_replay(store, line["replay_id"])
            cmp = shown.comparison
            deltas[f"vapi:{line['call_id']}"] = (cmp.replay_metrics.latency.p90
                                                 - cmp.baseline_metrics.latency.p90)
    p90 = next(m for m in agg["metrics"] if m["key"] == "latency_p90")
    assert {c["call_key"] for c in p90["regressed"]} == keys(KINDS["bad"])
    assert {c["call_key"] for c in p90["improved"]} == keys(KINDS["good"] + KINDS["same"])
    ordered = [deltas[c["call_key"]] for c in p90["regressed"]]
    assert ordered == sorted(ordered, key=abs, reverse=True)  # largest change first
    in_order = [deltas[f"vapi:{c['call_id']}"] for c in report["calls"]]
    assert p90["mean_delta"] == pytest.approx(float(np.mean(in_order)))
    low, high = _hand_ci(in_order)
    assert (p90["ci"]["low"], p90["ci"]["high"]) == (pytest.approx(low), pytest.approx(high))
    assert p90["verdict"]["text"].startswith(("inconclusive", "the candidate"))
    assert "95 % CI" in p90["verdict"]["text"]

    # Tool-call changes against the baseline (which called issue_refund at agent turn 4).
    assert agg["tool_changes"] == {"issue_refund → check_status": 4}
    # The worst calls are the broken ones, linked to their replays.
    assert {w["call_key"] for w in agg["worst"][:2]} == keys(KINDS["bad"])

    # show: the same aggregate, CSV exports, regressions only.
    batch_id = report["batch"]["id"]
    code, text, err = run("batch", "show", "candidate", "--csv", str(tmp_path / "agg.csv"),
                          "--calls-csv", str(tmp_path / "calls.csv"), "--regressions")
    assert code == 0, err
    assert "4/6 = 67 %" in text and "batch-bad-1" in text
    assert "improved:" not in text  # --regressions
    rows = list(csv.DictReader(io.StringIO((tmp_path / "agg.csv").read_text())))
    overall = next(r for r in rows if r["kind"] == "overall")
    assert (overall["passed"], overall["failed"]) == ("4", "2")
    check_row = next(r for r in rows if r["kind"] == "check")
    assert (check_row["improved"], check_row["regressed"], check_row["baseline_mean"]) == (
        "4", "0", "0.0")
    metric = next(r for r in rows if r["kind"] == "metric" and r["name"] == "latency_p90")
    assert (metric["improved"], metric["regressed"]) == ("4", "2")
    assert float(metric["ci_low"]) == pytest.approx(low)
    calls = list(csv.DictReader(io.StringIO((tmp_path / "calls.csv").read_text())))
    assert [c["call_key"] for c in calls] == [f"vapi:{c}" for c in ALL]
    assert {c["call_key"] for c in calls if c["passed"] == "False"} == keys(KINDS["bad"])
    assert all(c["status"] == "COMPLETED" and c["replay_id"] for c in calls)
    code, listed, _ = run("batch", "list", "--json")
    assert [b["id"] for b in json.loads(listed)] == [batch_id]


def test_an_interrupted_batch_resumes_without_replaying_finished_calls(
        home: Path, checks: Path) -> None:
    args = ["batch", "run", "--filter", "q=batch-", *FAKES, *CANDIDATE, "--checks", str(checks)]
    code, out, err = run(*args, "--background")
    assert code == 0, err
    batch_id = out.strip()
    settings = Settings.for_home(home)
    with Store.from_settings(settings) as store:
        jobs = store.jobs.list(batch_id=batch_id, limit=None)
        assert len(jobs) == 6 and {j.status for j in jobs} == {"PENDING"}
        # A first run finished two calls, then died holding a third (its lease has lapsed).
        worker = Worker(settings)
        for job in jobs[:2]:
            assert run_job(store, job.id, worker, runners=JOB_RUNNERS).status == "completed"
        assert store.jobs.claim(jobs[2].id, "killed-worker", lease=0.001) is not None
        finished = {j.id: store.jobs.get(j.id).replay_ids for j in jobs[:2]}

    code, out, err = run(*args)  # the same command again
    assert code == 5, err
    assert "(continued): 2 of 6 calls already done" in err
    with Store.from_settings(settings) as store:
        for job_id, replay_ids in finished.items():
            assert store.jobs.get(job_id).replay_ids == replay_ids  # not replayed again
        for call_id in ALL:  # one replay per call, the interrupted one included
            assert len(store.replays.list(call_id=call_id, limit=None)) == 1
        report = batch_report(store, store.batches.get(batch_id))
        assert report.status.completed == 6 and report.aggregate is not None
        assert report.aggregate.calls == 6
    code, shown, err = run("jobs", "show", jobs[0].id)
    assert code == 0 and ["batch", batch_id[:12]] in [ln.split() for ln in shown.splitlines()]
    code, out, err = run(*args)  # and once more: nothing left, nothing replayed
    assert "6 of 6 calls already done" in err
    with Store.from_settings(settings) as store:
        assert sum(len(store.replays.list(call_id=c, limit=None)) for c in ALL) == 6


def test_batch_against_batch_matches_calls_and_lists_the_missing_one(
        home: Path, checks: Path) -> None:
    code, _out, err = run("batch", "run", *ALL, *FAKES, "--checks", str(checks),
                          "--name", "production")
    assert code == 5, err  # production breaks the two "good" calls
    code, _out, err = run("batch", "run", *ALL[:-1], *FAKES, *CANDIDATE, "--checks",
                          str(checks), "--name", "candidate")
    assert code == 5, err
    code, out, err = run("batch", "compare", "production", "candidate", "--json")
    assert code == 0, err
    cmp = json.loads(out)
    assert cmp["only_in_a"] == ["vapi:batch-same-2"] and cmp["only_in_b"] == []
    assert len(cmp["matched"]) == 5
    check = cmp["checks"][0]
    assert set(check["improved"]) == keys(KINDS["good"])
    assert set(check["regressed"]) == keys(KINDS["bad"])
    assert check["unchanged"] == ["vapi:batch-same-1"]
    code, text, err = run("batch", "compare", "production", "candidate")
    assert code == 0, err
    assert "only in A (1): vapi:batch-same-2" in text


def test_selection_by_filter_sample_and_limit(home: Path) -> None:
    with Store.from_settings(Settings.for_home(home)) as store:
        everything = resolve_calls(store, BatchSelection(all_calls=True))
        assert len(everything) == 7  # the demo call and its six copies
        sample = resolve_calls(store, BatchSelection(all_calls=True, sample=3, seed=7))
        assert len(sample) == 3 and sample == resolve_calls(
            store, BatchSelection(all_calls=True, sample=3, seed=7))  # seeded
        assert set(sample) <= set(everything)
        limited = resolve_calls(store, BatchSelection(all_calls=True, limit=2))
        assert limited == everything[:2]
        assert parse_filter("failed=true").success == "no"
        assert parse_filter("failed=false,agent=asst_1").model_dump(exclude_defaults=True) \
            == {"success": "yes", "agent_id": "asst_1"}
        filters = parse_filter("provider=vapi,since=3000d,q=batch-good")
        chosen = resolve_calls(store, BatchSelection(
            filters=filters.model_dump(exclude={"page"}, exclude_defaults=True)))
        assert sorted(chosen) == [("vapi", "batch-good-1"), ("vapi", "batch-good-2")]
        assert resolve_calls(store, BatchSelection(call_ids=["batch-bad-1", "batch-bad-1"])) \
            == [("vapi", "batch-bad-1")]  # once


@pytest.mark.parametrize(("args", "message"), [
    (["--filter", "color=red"], "unknown key 'color'"),
    (["--filter", "since=yesterday"], "is not a date"),
    (["--filter", "failed=maybe"], "use true or false"),
    ([], "name the calls"),
    (["--all", "nope-1"], "name the calls"),
    (["nope-1", "nope-2"], "2 of the calls are not in the store"),
    (["nope-1"], "call nope-1 is not in the store"),
    (["--all", "--mode", "sideways"], "--mode 'sideways'"),
])
def test_bad_selections_are_one_line_and_store_nothing(home: Path, args: list[str],
                                                       message: str) -> None:
    code, _out, err = run("batch", "run", *args, *FAKES)
    assert code in (2, 4), err
    assert message in err and "Traceback" not in err
    with Store.from_settings(Settings.for_home(home)) as store:
        assert store.batches.list() == [] and store.jobs.list() == []
    code, _out, err = run("batch", "show", "nope-batch")
    assert code == 4 and "batch nope-batch is not in the store" in err


def test_a_failed_call_is_listed_and_never_counted_as_passing(home: Path,
                                                              checks: Path) -> None:
    code, out, err = run("batch", "run", "batch-good-1", "batch-bad-1", "--stt", "fake-stt",
                         "--tts", "fake-tts", "--caller-tts", "fake-tts", "--llm-backend",
                         "nonexistent-llm", "--figures", "svg", "--json")
    assert code == 1, err
    report = json.loads(out)
    assert report["status"]["failed"] == 2 and report["aggregate"] is None
    assert all("nonexistent-llm" in (c["error"] or "") for c in report["calls"])


def test_call_rows_round_trip_through_json() -> None:
    row = CallRow(call_key="vapi:x", checks=(("a", "pass"), ("b", "fail")),
                  divergence_turn=4, divergence_reason="tool-call",
                  tool_changes=("issue_refund → check_status",),
                  baseline={"latency_p90": 1.5}, replay={"latency_p90": 0.5},
                  fidelity_score=0.9, fidelity_level="high")
    again = CallRow.from_json(json.loads(json.dumps(row.to_json())))
    assert again == row and not again.passed and again.delta("latency_p90") == -1.0


def test_a_batch_with_csat_aggregates_caller_satisfaction(home: Path) -> None:
    """A scripted judge on 127.0.0.1 scores a call that got check_status 4 and one that got a
    refund nobody asked for 2 (the baseline, and the candidate's broken calls)."""
    from tests.fakes.openai_chat import chat_app
    from tests.fakes.scripted_llm import ScriptedLLM
    from tests.fakes.server import serve

    judge = ScriptedLLM({"[tool call] check_status": json.dumps({"reason": "got the date",
                                                                 "score": 4}),
                         "[tool call] issue_refund": json.dumps({"reason": "a refund nobody "
                                                                 "asked for", "score": 2})},
                        default="no idea")
    with serve(chat_app(judge, [])) as server:
        code, out, err = run("batch", "run", *ALL, *FAKES, *CANDIDATE, "--csat",
                             "--judge-model", "judge", "--judge-base-url", f"{server.url}/v1",
                             "--json")
    assert code == 0, err
    csat = next(m for m in json.loads(out)["aggregate"]["metrics"] if m["key"] == "csat")
    assert (csat["baseline"]["mean"], csat["replay"]["median"]) == (2.0, 4.0)
    assert {c["call_key"] for c in csat["improved"]} == keys(KINDS["good"] + KINDS["same"])
    assert {c["call_key"] for c in csat["unchanged"]} == keys(KINDS["bad"])
    assert csat["mean_delta"] == pytest.approx(8 / 6)


@pytest.mark.models
def test_a_batch_with_the_embedded_speech_models(home: Path) -> None:
    """faster-whisper hears the caller, piper speaks, the LLM serves the recorded replies:
    the aggregate has the replay's WER and high fidelity for every call."""
    code, out, err = run("batch", "run", "batch-good-1", "batch-bad-1", "--model", "recorded",
                         "--figures", "svg", "--json")
    assert code == 0, err
    agg = json.loads(out)["aggregate"]
    assert agg["calls"] == 2 and agg["fidelity_levels"] == {"high": 2}
    wer = next(m for m in agg["metrics"] if m["key"] == "wer")
    assert wer["replay"]["count"] == 2 and wer["replay"]["mean"] < 0.35
    assert agg["divergence_by_turn"] == {}  # the recorded replies never diverge
