"""``voicereplay test``: find scenario files, run each one, and decide pass or fail.

:func:`find_scenarios` collects ``*.voicereplay.yaml`` under the paths given (a file named
directly is taken as it is) and :func:`load_suite` reads them all before anything runs, so a
bad file is one :class:`~voicereplay.errors.ConfigError` (exit 2) and no replay is wasted.
:func:`run_suite` runs the scenarios in this process on a thread pool of ``workers`` threads
(the models are loaded once per process and shared), each through
:func:`~voicereplay.pipeline.scenarios.run_scenario`, and reports each
:class:`ScenarioOutcome` as it finishes.

Verdicts: a run passes when every check of its comparison passes; a scenario **passes** when at
least ``pass_rate`` of its runs pass (with one run: when that run passes), **fails** otherwise,
and is an **error** when it could not be replayed at all (the error's one line is kept; the
other scenarios still run). ``flaky`` marks a scenario whose runs did not all agree. A
:class:`~voicereplay.errors.ConfigError` while replaying (an unknown backend, a missing key) is
the same for every scenario, so it stops the run instead (scenarios not started yet are not
started); what a scenario needs of its own files (its agent file, its audio) is checked by
:func:`load_suite` before anything runs.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from voicereplay.compare.model import Evidence
from voicereplay.config import Settings
from voicereplay.errors import ConfigError, VoiceReplayError
from voicereplay.pipeline.calling import ReplayResult
from voicereplay.pipeline.request import ReportOptions, Secrets
from voicereplay.pipeline.scenarios import run_scenario
from voicereplay.scenario import SUFFIX, Scenario, load_scenario
from voicereplay.snapshot import AgentSnapshot
from voicereplay.store import Store

__all__ = ["FailingCheck", "ScenarioOutcome", "SuiteOptions", "find_scenarios", "load_suite",
           "outcome_of", "run_one", "run_suite", "select"]

Verdict = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class SuiteOptions:
    """How every scenario of a run is replayed (``None``: the scenario's own)."""

    agent: AgentSnapshot | None = None  # --agent: the agent under test for every scenario
    runs: int | None = None
    pass_rate: float = 1.0
    workers: int = 1
    stages: dict[str, Any] = field(default_factory=dict)  # model, llm_base_url, llm, stt, …
    rescore: bool = False  # --rescore: judge the stored replays again, replay nothing
    report: ReportOptions | None = None
    secrets: Secrets | None = None


@dataclass
class FailingCheck:
    """A check that did not pass in some run of a scenario."""

    name: str
    type: str
    location: str  # file:line of the check in the scenario
    failed_runs: int
    message: str
    evidence: list[Evidence]

    @property
    def turn(self) -> int | None:
        return next((e.turn for e in self.evidence if e.turn is not None), None)


@dataclass
class ScenarioOutcome:
    """What one scenario came to (see the module docs for the verdicts)."""

    name: str
    path: Path
    verdict: Verdict
    runs: int = 0
    passed_runs: int = 0
    duration: float = 0.0  # seconds this scenario took to replay and compare
    failing: list[FailingCheck] = field(default_factory=list)
    divergence_turn: int | None = None
    divergence: str | None = None
    replay_ids: list[str] = field(default_factory=list)
    reports: list[dict[str, str]] = field(default_factory=list)  # per run: name → file
    call_id: str | None = None  # the materialized call the replays are stored under
    error: str | None = None

    @property
    def pass_rate(self) -> float | None:
        return self.passed_runs / self.runs if self.runs else None

    @property
    def flaky(self) -> bool:
        return 0 < self.passed_runs < self.runs


def find_scenarios(paths: Sequence[Path]) -> list[Path]:
    """Every scenario file under ``paths`` (sorted, each once)."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_file():
            found[path] = None
        elif path.is_dir():
            found.update(dict.fromkeys(sorted(path.rglob(f"*{SUFFIX}"))))
        else:
            raise ConfigError(f"{path}: no such file or folder of scenarios")
    if not found:
        shown = ", ".join(str(p) for p in paths)
        raise ConfigError(f"no *{SUFFIX} scenarios under {shown}; save one with "
                          "`voicereplay save <replay-id>`")
    return list(found)


def select(scenarios: Sequence[Scenario], pattern: str | None) -> list[Scenario]:
    """The scenarios whose name or path matches ``-k``: a glob (``refund*``) or, without
    wildcards, a case-insensitive substring."""
    if not pattern:
        return list(scenarios)
    wanted = pattern.lower()
    glob = any(ch in wanted for ch in "*?[")

    def matches(s: Scenario) -> bool:
        names = [s.name.lower(), str(s.path or "").lower()]
        if glob:
            return any(fnmatch.fnmatchcase(n, wanted) for n in names)
        return any(wanted in n for n in names)

    return [s for s in scenarios if matches(s)]


def load_suite(paths: Sequence[Path], pattern: str | None = None) -> list[Scenario]:
    """The scenarios under ``paths`` selected by ``pattern``, all read (and checked) first."""
    scenarios = [load_scenario(p) for p in find_scenarios(paths)]
    for scenario in scenarios:
        scenario.agent_snapshot()  # a missing or bad agent file fails now, not mid-suite
        for entry in scenario.turns:
            if entry.audio and not (scenario.folder / entry.audio).is_file():
                raise ConfigError(f"{scenario.path}: caller audio {entry.audio} is missing "
                                  f"(looked for {scenario.folder / entry.audio})")
    chosen = select(scenarios, pattern)
    if not chosen:
        raise ConfigError(f"-k {pattern!r} matches none of the {len(scenarios)} scenarios")
    return chosen


def outcome_of(scenario: Scenario, results: Sequence[ReplayResult], pass_rate: float,
               duration: float) -> ScenarioOutcome:
    """The verdict of ``scenario`` from the comparisons of its runs."""
    passed = sum(r.comparison.passed for r in results)
    failing: dict[int, FailingCheck] = {}
    for result in results:
        for index, check in enumerate(result.comparison.checks):
            if check.status == "pass":
                continue
            seen = failing.get(index)
            if seen is None:
                failing[index] = FailingCheck(check.name, check.type,
                                              scenario.check_location(index), 1,
                                              check.message, list(check.evidence))
            else:
                seen.failed_runs += 1
    verdict: Verdict = "pass" if results and passed / len(results) >= pass_rate else "fail"
    first = next((r.comparison.divergence for r in results if r.comparison.divergence), None)
    return ScenarioOutcome(
        name=scenario.name, path=scenario.path or Path(scenario.name), verdict=verdict,
        runs=len(results), passed_runs=passed, duration=duration,
        failing=[failing[i] for i in sorted(failing)],
        divergence_turn=first.turn if first else None,
        divergence=f"turn {first.turn}: {first.detail}" if first else None,
        replay_ids=[r.replay.id for r in results],
        reports=[dict(r.comparison.files) for r in results],
        call_id=results[0].call.call_id if results else None)


def run_one(store: Store, scenario: Scenario, options: SuiteOptions,
            settings: Settings) -> ScenarioOutcome:
    """Run one scenario; a failure to replay it is its ``error`` verdict, not an exception."""
    started = time.perf_counter()
    try:
        results = run_scenario(store, scenario, agent=options.agent, runs=options.runs,
                               request=options.stages, report=options.report,
                               settings=settings, secrets=options.secrets)
    except ConfigError:
        raise  # bad input for the whole run (see the module docs)
    except VoiceReplayError as exc:
        return ScenarioOutcome(name=scenario.name, path=scenario.path or Path(scenario.name),
                               verdict="error", duration=time.perf_counter() - started,
                               error=f"{type(exc).__name__}: {exc}")
    return outcome_of(scenario, results, options.pass_rate, time.perf_counter() - started)


def run_suite(store: Store, scenarios: Sequence[Scenario], options: SuiteOptions, *,
              settings: Settings | None = None,
              on_start: Callable[[Scenario], None] | None = None,
              on_done: Callable[[ScenarioOutcome], None] | None = None,
              ) -> list[ScenarioOutcome]:
    """Run every scenario (``options.workers`` at a time); outcomes in the scenarios' order."""
    settings = settings or Settings.from_env()
    if not 0 < options.pass_rate <= 1:
        raise ConfigError(f"--pass-rate {options.pass_rate}: use a share above 0 and at most 1")
    outcomes: dict[int, ScenarioOutcome] = {}

    def job(index: int) -> tuple[int, ScenarioOutcome]:
        if on_start is not None:
            on_start(scenarios[index])
        if options.rescore:
            from voicereplay.pipeline.suite_rescore import rescore_one

            return index, rescore_one(store, scenarios[index], options, settings)
        return index, run_one(store, scenarios[index], options, settings)

    pool = ThreadPoolExecutor(max_workers=max(1, options.workers),
                              thread_name_prefix="voicereplay-test")
    try:
        for future in as_completed([pool.submit(job, i) for i in range(len(scenarios))]):
            index, outcome = future.result()
            outcomes[index] = outcome
            if on_done is not None:
                on_done(outcome)
    except BaseException:  # Ctrl-C: scenarios not started yet are not started
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [outcomes[i] for i in range(len(scenarios))]
