"""``voicereplay test --queue``: a suite run on the job workers instead of in this process.

Each scenario becomes a ``scenario`` job (:func:`run_scenario_job`) that any
``voicereplay worker`` (or ``serve``'s embedded one) sharing the store runs with
:func:`~voicereplay.pipeline.suites.run_one`, exactly as in process; the outcome is kept in
the job's result, and :func:`wait_for_outcomes` collects them as they finish. A worker reads
the scenario (and ``--agent`` file) from its path, so workers on other machines need the same
paths (a shared checkout); the replays land in the shared store.

A job that fails (its worker could not run the scenario at all) is the scenario's ``error``
verdict with the job's error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from voicereplay.compare.model import Evidence
from voicereplay.errors import RequestError
from voicereplay.pipeline.calling import Progress
from voicereplay.pipeline.jobs import JobContext, JobResult, Submit
from voicereplay.pipeline.suite_reports import scenario_json
from voicereplay.pipeline.suites import FailingCheck, ScenarioOutcome, SuiteOptions, run_one
from voicereplay.scenario import Scenario, load_agent_file, load_scenario
from voicereplay.store import Store
from voicereplay.store.jobs import Job

__all__ = ["SCENARIO_KIND", "outcome_from_json", "run_scenario_job",
           "submit_suite", "wait_for_outcomes"]

SCENARIO_KIND = "scenario"
POLL = 0.5  # seconds between looks at the jobs table


def outcome_from_json(data: dict[str, Any]) -> ScenarioOutcome:
    """A scenario's outcome back from its ``--json`` entry (:func:`scenario_json`)."""
    failing = [FailingCheck(c["name"], c["type"], c["location"], c["failed_runs"],
                            c["message"], [Evidence.model_validate(e) for e in c["evidence"]])
               for c in data.get("failing_checks", [])]
    return ScenarioOutcome(
        name=data["name"], path=Path(data["path"]), verdict=data["verdict"],
        runs=data["runs"], passed_runs=data["passed_runs"], duration=data["duration"],
        failing=failing, divergence_turn=data.get("divergence_turn"),
        divergence=data.get("divergence"), replay_ids=list(data.get("replay_ids", [])),
        reports=list(data.get("reports", [])), call_id=data.get("call_id"),
        error=data.get("error"))


def run_scenario_job(context: JobContext) -> JobResult:
    """A ``scenario`` job: one scenario of a queued suite run."""
    request = context.job.request
    if not isinstance(request.get("path"), str):
        raise RequestError("a scenario job names no scenario path")
    scenario = load_scenario(Path(request["path"]))
    agent_file = request.get("agent_file")
    options = SuiteOptions(agent=load_agent_file(Path(agent_file)) if agent_file else None,
                           runs=request.get("runs"), pass_rate=request.get("pass_rate", 1.0),
                           stages=dict(request.get("stages") or {}))
    context.progress(Progress("replay", f"scenario {scenario.name}"))
    outcome = run_one(context.store, scenario, options, context.settings)
    return JobResult(outcome.replay_ids, None, {"outcome": scenario_json(outcome)})


def submit_suite(submit: Submit, scenarios: Sequence[Scenario], *,
                 agent_file: Path | None, runs: int | None, pass_rate: float,
                 stages: dict[str, Any]) -> list[Job]:
    """One job per scenario, for this run only (a fresh key each time)."""
    run = uuid.uuid4().hex[:12]
    jobs = []
    for scenario in scenarios:
        path = Path(scenario.path or scenario.name).resolve()
        job, _new = submit(SCENARIO_KIND, {
            "path": str(path), "agent_file": str(agent_file.resolve()) if agent_file else None,
            "runs": runs, "pass_rate": pass_rate, "stages": stages},
            f"scenario:{run}:{path}"[:255], max_attempts=1)
        jobs.append(job)
    return jobs


def wait_for_outcomes(store: Store, scenarios: Sequence[Scenario], jobs: Sequence[Job], *,
                      on_start: Callable[[Scenario], None] | None = None,
                      on_done: Callable[[ScenarioOutcome], None] | None = None,
                      on_idle: Callable[[float], None] | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> list[ScenarioOutcome]:
    """Poll the jobs until every one has finished; outcomes in the scenarios' order.
    ``on_idle(seconds)`` is told how long nothing has started (no worker running?)."""
    outcomes: dict[int, ScenarioOutcome] = {}
    started: set[int] = set()
    waiting_since = time.monotonic()
    while len(outcomes) < len(jobs):
        for index, job in enumerate(jobs):
            if index in outcomes:
                continue
            current = store.jobs.get(job.id)
            if current.status == "RUNNING" and index not in started:
                started.add(index)
                if on_start is not None:
                    on_start(scenarios[index])
            if current.finished:
                outcomes[index] = _outcome(scenarios[index], current)
                if on_done is not None:
                    on_done(outcomes[index])
        if len(outcomes) < len(jobs):
            if not started and on_idle is not None:
                on_idle(time.monotonic() - waiting_since)
            sleep(POLL)
    return [outcomes[i] for i in range(len(jobs))]


def _outcome(scenario: Scenario, job: Job) -> ScenarioOutcome:
    saved = (job.result or {}).get("outcome")
    if job.status == "COMPLETED" and isinstance(saved, dict):
        return outcome_from_json(saved)
    return ScenarioOutcome(name=scenario.name, path=scenario.path or Path(scenario.name),
                           verdict="error",
                           error=f"job {job.id[:12]} {job.status.lower()}: "
                                 f"{job.error or 'no result'}")
