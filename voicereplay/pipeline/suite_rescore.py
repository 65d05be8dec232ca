"""``voicereplay test --rescore``: the stored replays of a suite judged again against the
scenarios' current checks, without replaying anything.

A scenario's replays are stored under its materialized call (``<name>@<hash>``, see
:mod:`voicereplay.pipeline.scenarios`; the id depends on the turns and the caller audio, not
on the checks, so editing a check keeps it). The newest run of the scenario (the replays of
the newest batch) is compared with the baseline again with the checks now in the file, and the
verdict is worked out as for a replayed run (``--pass-rate``). A scenario with no stored replay
is an error verdict that says to run ``voicereplay test`` first.
"""

from __future__ import annotations

import time
from pathlib import Path

from voicereplay.config import Settings
from voicereplay.errors import VoiceReplayError
from voicereplay.pipeline.calling import compare_stored
from voicereplay.pipeline.request import ReportOptions
from voicereplay.pipeline.scenarios import materialize
from voicereplay.pipeline.suites import ScenarioOutcome, SuiteOptions, outcome_of
from voicereplay.scenario import Scenario
from voicereplay.store import Store

__all__ = ["rescore_one"]


def rescore_one(store: Store, scenario: Scenario, options: SuiteOptions,
                settings: Settings) -> ScenarioOutcome:
    """The verdict of ``scenario``'s newest stored run with its current checks."""
    started = time.perf_counter()
    path = scenario.path or Path(scenario.name)
    try:
        call = materialize(store, scenario)
        stored = [r for r in store.replays.list(call_id=call.call_id, provider=call.provider,
                                                limit=None) if r.status == "completed"]
        if not stored:
            return ScenarioOutcome(
                name=scenario.name, path=path,
                verdict="error", duration=time.perf_counter() - started,
                error=f"no stored replay of {scenario.name} to rescore; run `voicereplay "
                      "test` on it first")
        newest = stored[0].batch_id
        runs = [r for r in stored if r.batch_id == newest] if newest else stored[:1]
        report = options.report or ReportOptions(figures=None)
        results = [compare_stored(store, call.call_id, r.id, provider=call.provider,
                                  checks=scenario.checks, report=report, settings=settings,
                                  secrets=options.secrets)
                   for r in sorted(runs, key=lambda r: r.run_index)]
    except VoiceReplayError as exc:
        return ScenarioOutcome(name=scenario.name, path=path,
                               verdict="error", duration=time.perf_counter() - started,
                               error=f"{type(exc).__name__}: {exc}")
    return outcome_of(scenario, results, options.pass_rate, time.perf_counter() - started)
