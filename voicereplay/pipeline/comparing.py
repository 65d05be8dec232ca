"""Comparing a stored replay with its baseline call, and writing the reports beside it.

:func:`compare_replay` gathers what :func:`voicereplay.compare.compare` needs from the store —
the replay's batch (for flakiness), a reference replay of the same call with no overrides (for
fidelity), the LLM names to price — builds the judge only when a check or ``--csat`` needs
one, and writes ``report.json``, ``report.md``, ``junit.xml`` and the two pictures into the
replay's folder. Without ``--csat`` a stored replay keeps the caller-satisfaction estimate its
report.json holds (so showing or comparing it again does not drop it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from voicereplay.compare.checks import Check
from voicereplay.compare.comparison import compare, has_overrides, recordings_dir
from voicereplay.compare.csat import CsatEstimator
from voicereplay.compare.files import write_reports
from voicereplay.compare.model import Comparison, CsatPair
from voicereplay.compare.prices import load_prices
from voicereplay.compare.similarity import scorer
from voicereplay.config import Settings
from voicereplay.errors import NotStoredError
from voicereplay.models import Call, Replay
from voicereplay.pipeline.judging import (
    CsatCache,
    StageJudgeModel,
    build_judge,
    judge_factory,
)
from voicereplay.pipeline.request import ReportOptions
from voicereplay.snapshot import AgentSnapshot
from voicereplay.store import Store

__all__ = ["REFERENCE_SEARCH", "compare_replay", "find_reference", "replay_batch",
           "stored_report"]

REFERENCE_SEARCH = 50  # how many of a call's newest replays to search for a reference


def replay_batch(store: Store, replay: Replay) -> list[Replay]:
    """Every replay of ``replay``'s batch (``--runs N``), in run order."""
    if not replay.batch_id:
        return [replay]
    rows = store.replays.list(batch_id=replay.batch_id, limit=None)
    runs = [replay if r.id == replay.id else store.replays.get(r.id) for r in rows]
    return sorted(runs, key=lambda r: r.run_index)


def find_reference(store: Store, replay: Replay) -> Replay | None:
    """The newest completed replay of the same call, with no overrides, same mode and LLM."""
    rows = store.replays.list(call_id=replay.call_id, provider=replay.call_provider,
                              limit=REFERENCE_SEARCH)
    for row in rows:
        if row.id == replay.id or row.status != "completed" or row.mode != replay.mode:
            continue
        candidate = store.replays.get(row.id)
        if (not has_overrides(candidate)
                and candidate.backends.llm == replay.backends.llm):
            return candidate
    return None


def _snapshot(store: Store, snapshot_id: str | None) -> AgentSnapshot | None:
    if not snapshot_id:
        return None
    try:
        return store.get_snapshot(snapshot_id)
    except NotStoredError:
        return None


def compare_replay(
    store: Store,
    call: Call,
    replay: Replay,
    *,
    batch: Sequence[Replay] | None = None,
    checks: Sequence[Check] = (),
    report: ReportOptions | None = None,
    write: bool = True,
    settings: Settings | None = None,
    judge_api_key: str | None = None,
) -> Comparison:
    """The comparison of ``replay`` with ``call``; report files written when ``write`` and
    ``report.figures`` are set (into ``report.out_dir``, else the replay's audio folder).
    ``batch``: the replays of ``replay``'s batch when the caller has them (else they are read
    from the store). The judge of ``llm_judge`` checks is built here, never in ``compare``."""
    report = report or ReportOptions()
    settings = settings or Settings.from_env()
    snapshot = _snapshot(store, replay.snapshot_id)
    base = _snapshot(store, replay.base_snapshot_id)
    judge = None
    if report.csat or any(c.type == "llm_judge" and c.model is None and c.base_url is None
                          for c in checks):
        judge = build_judge(report.judge_model, report.judge_base_url, judge_api_key,
                            snapshot, settings)
    cache = CsatCache(settings.artifacts_dir / "csat")
    estimator, key, known = None, "", None
    if report.csat and judge is not None:
        estimator = CsatEstimator(judge.llm)
        served = judge.llm.base_url if isinstance(judge.llm, StageJudgeModel) else None
        key = estimator.cache_key(call.turns, served_by=served)
        known = cache.get(key)
    comparison = compare(
        call, replay,
        batch=replay_batch(store, replay) if batch is None else batch,
        reference=find_reference(store, replay) if has_overrides(replay) else None,
        checks=checks, judge=judge, judge_for=judge_factory(snapshot, settings),
        similarity=scorer(report.similarity or settings.similarity),
        prices=load_prices(settings.default_prices_file,
                           explicit=settings.prices_file is not None),
        baseline_model=base.model.name if base else None,
        replay_model=replay.backends.llm_model or (
            snapshot.model.name if snapshot else None),
        csat=estimator, baseline_csat=known,
    )
    if comparison.csat is not None:
        cache.put(key, comparison.csat.baseline)
    else:
        comparison.csat = _stored_csat(replay)
    if write and report.figures is not None:
        folder = report.out_dir or recordings_dir(replay)
        if folder is not None:
            write_reports(comparison, call, replay, folder, figures=report.figures)
    return comparison


def stored_report(replay: Replay) -> dict[str, Any]:
    """The replay's report.json as written last ({} when there is none or it is unreadable)."""
    folder = recordings_dir(replay)
    path = folder / "report.json" if folder else None
    if path is None or not path.exists():
        return {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def _stored_csat(replay: Replay) -> CsatPair | None:
    """The caller-satisfaction estimate in the replay's report.json, if it has one."""
    found = stored_report(replay).get("csat")
    if not isinstance(found, dict):
        return None
    try:
        return CsatPair.model_validate(found)
    except ValueError:
        return None
