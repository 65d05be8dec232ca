"""`voicereplay save`, `voicereplay test` and `voicereplay agent export`: regression suites.

``save`` writes a stored replay (or call) as a scenario file; ``test`` runs scenario files and
exits 0 when every scenario passed, 1 when any failed or could not be replayed, 2 for bad input
(a missing path, an invalid scenario or agent file, a bad option); ``agent export`` writes a
starting agent file from a stored snapshot. The work is :mod:`voicereplay.pipeline.scenarios`
and :mod:`voicereplay.pipeline.suites`; this module reads options and prints.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from voicereplay import pipeline
from voicereplay.cli.common import (
    JsonOpt,
    ProviderOpt,
    err,
    handle_errors,
    open_store,
    out,
    print_json,
    settings,
)
from voicereplay.cli.compare import (
    ChecksOpt,
    FiguresOpt,
    JudgeModelOpt,
    JudgeUrlOpt,
    SimilarityOpt,
    report_options,
)
from voicereplay.cli.replay_options import LlmKeyOpt, LlmUrlOpt, ModelOpt
from voicereplay.compare.checks import load_checks
from voicereplay.errors import ConfigError
from voicereplay.pipeline import Secrets
from voicereplay.pipeline.scenarios import save_scenario, scenario_from
from voicereplay.pipeline.suite_baseline import compare_with, read_baseline
from voicereplay.pipeline.suite_reports import dumps, suite_json, suite_junit, write_text
from voicereplay.pipeline.suites import ScenarioOutcome, SuiteOptions, load_suite, run_suite
from voicereplay.scenario import Scenario, agent_yaml, load_agent_file

__all__ = ["agent_app", "run_tests", "save"]

TESTS_FAILED = 1

agent_app = typer.Typer(no_args_is_help=True, help="Agent files for `voicereplay test --agent`.")


@handle_errors
def save(
    ref: Annotated[str, typer.Argument(help="A stored replay id (or prefix), or a call id.")],
    name: Annotated[str | None, typer.Option(
        help="Scenario name (default: from the call, e.g. vapi-dfed92e7).")] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Folder to write into.")]
    = Path("scenarios"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing scenario.")]
    = False,
    checks: ChecksOpt = None,
    redact: Annotated[bool, typer.Option(
        "--redact", help="Redact personal data (phone numbers, e-mails, card and account "
                         "numbers, addresses, dates of birth, names) from the text and the "
                         "caller audio, verified by transcribing the audio again.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="With --redact: print what would be redacted; write nothing.")]
    = False,
    redact_name: Annotated[list[str] | None, typer.Option(
        "--redact-name", help="A name to redact as well (repeatable).")] = None,
    redact_pattern: Annotated[list[str] | None, typer.Option(
        "--redact-pattern", help="A regular expression to redact as well (repeatable).")]
    = None,
    redact_allow: Annotated[list[str] | None, typer.Option(
        "--redact-allow", help="A name never to redact, e.g. the business's (repeatable).")]
    = None,
    redact_config: Annotated[Path | None, typer.Option(
        "--redact-config", help="Redaction settings: names, patterns, allow (default: "
                                "$VOICEREPLAY_HOME/redact.yaml if it exists).")] = None,
    provider: ProviderOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Save a replay (or a call) as a self-contained regression scenario."""
    if (dry_run or redact_name or redact_pattern or redact_allow or redact_config) \
            and not redact:
        raise ConfigError("--dry-run and the --redact-* options go with --redact")
    redactor = None
    if redact:
        from voicereplay.pipeline.redact_config import load_redact_config
        from voicereplay.pipeline.scenario_redaction import ScenarioRedaction

        kept = load_redact_config(settings(), redact_config)
        redactor = ScenarioRedaction(names=[*kept.names, *(redact_name or ())],
                                     patterns=[*kept.pattern_args(), *(redact_pattern or ())],
                                     allow=[*kept.allow, *(redact_allow or ())])
    store, loaded = open_store(), load_checks(checks) if checks else None
    if dry_run and redactor is not None:
        scenario, segments = scenario_from(store, ref, name=name, provider=provider,
                                           checks=loaded)
        redactor(scenario, segments)
        report = redactor.report
        if json_out:
            print_json(report.to_json() if report else {})
        elif report is not None:
            out.print(Text(report.render()))  # masked values, printed literally
        return
    saved = save_scenario(store, ref, directory, name=name, provider=provider,
                          checks=loaded, force=force, redactor=redactor)
    if json_out:
        print_json({"path": str(saved.path), "folder": str(saved.folder),
                    "name": saved.scenario.name, "segments": saved.segments,
                    "checks": len(saved.scenario.checks)})
        return
    out.print(Text(str(saved.path)))
    if redactor is not None and redactor.report is not None:
        err.print(Text(redactor.report.render(), style="dim"))
    err.print(Text(f"saved {saved.scenario.name}: {len(saved.scenario.checks)} check(s), "
                   f"{saved.segments} caller audio segment(s) in {saved.folder}; run it with "
                   f"`voicereplay test {saved.path}`", style="dim"))


@agent_app.command("export")
@handle_errors
def agent_export(
    ref: Annotated[str, typer.Argument(help="Call id or snapshot id (prefix).")],
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the agent file here (default: print it).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    provider: ProviderOpt = None,
) -> None:
    """Write a starting agent file from a stored snapshot."""
    snapshot, _label = pipeline.resolve_snapshot(open_store(), ref, provider=provider)
    text = agent_yaml(snapshot)
    if output is None:
        sys.stdout.write(text)  # as it is: a console would wrap a long prompt line
        return
    if output.exists() and not force:
        raise ConfigError(f"{output} exists; pass --force to replace it")
    write_text(output, text)
    err.print(Text(f"wrote {output}; use it with `voicereplay test --agent {output}`",
                   style="dim"))


def _verdict(outcome: ScenarioOutcome | None) -> Text:
    if outcome is None:
        return Text("running…", style="yellow")
    style = {"pass": "green", "fail": "bold red", "error": "bold red"}[outcome.verdict]
    label = outcome.verdict.upper()
    if outcome.runs > 1:
        label += f" {outcome.passed_runs}/{outcome.runs}" + (" flaky" if outcome.flaky else "")
    return Text(label, style=style)


def _failing(outcome: ScenarioOutcome | None) -> Text:
    if outcome is None:
        return Text("")
    if outcome.error:
        return Text(outcome.error)
    if not outcome.failing:
        return Text("")
    check = outcome.failing[0]
    evidence = next((e.text for e in check.evidence), check.message)
    turn = f"turn {check.turn}: " if check.turn is not None else ""
    more = f" (+{len(outcome.failing) - 1} more)" if len(outcome.failing) > 1 else ""
    return Text(f"{check.name}{more}\n{turn}{evidence}\n{check.location}")


def results_table(scenarios: list[Scenario],
                  done: dict[str, ScenarioOutcome], started: set[str]) -> Table:
    """The live table: one row per scenario (every cell printed literally)."""
    table = Table(header_style="bold", expand=False)
    for column in ("scenario", "verdict", "failing check", "divergence", "duration"):
        table.add_column(column, overflow="fold")
    for scenario in scenarios:
        key = str(scenario.path)
        outcome = done.get(key)
        if outcome is None and key not in started:
            table.add_row(Text(scenario.name), Text("waiting", style="dim"), "", "", "")
            continue
        table.add_row(Text(scenario.name), _verdict(outcome), _failing(outcome),
                      Text(outcome.divergence or "—") if outcome else Text(""),
                      Text(f"{outcome.duration:.1f} s") if outcome else Text(""))
    return table


@handle_errors
def run_tests(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Scenario files or folders (default: scenarios/).")] = None,
    agent: Annotated[Path | None, typer.Option(
        "--agent", help="Agent file: the agent under test for every scenario.")] = None,
    runs: Annotated[int | None, typer.Option(
        min=1, max=50, help="Replays per scenario (default: each scenario's runs).")] = None,
    pass_rate: Annotated[float, typer.Option(
        "--pass-rate", help="Share of runs that must pass (with --runs).")] = 1.0,
    pattern: Annotated[str | None, typer.Option(
        "-k", help="Only scenarios whose name or path contains this (or matches this glob).")]
    = None,
    workers: Annotated[int, typer.Option(min=1, max=32, help="Scenarios run at once.")] = 1,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")]
    = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write JSON results here.")]
    = None,
    model: ModelOpt = None,
    llm_base_url: LlmUrlOpt = None,
    llm_api_key: LlmKeyOpt = None,
    llm: Annotated[str | None, typer.Option(
        "--llm", help="An LLM backend registered by name (a plugin's).")] = None,
    stt: Annotated[str, typer.Option(help="Speech-to-text backend.")] = "faster-whisper",
    tts: Annotated[str, typer.Option(help="The agent's text-to-speech backend.")] = "piper",
    caller_tts: Annotated[str, typer.Option(
        help="The caller's voice when a caller turn has no audio.")] = "piper-caller",
    similarity: SimilarityOpt = None,
    figures: FiguresOpt = "png",
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    queue: Annotated[bool, typer.Option(
        "--queue", help="Run the scenarios on `voicereplay worker`s sharing the store, "
                        "instead of in this process.")] = False,
    rescore: Annotated[bool, typer.Option(
        "--rescore", help="Judge each scenario's newest stored replays again with its "
                          "current checks; replay nothing.")] = False,
    baseline: Annotated[Path | None, typer.Option(
        "--baseline", help="An earlier run's --json: report regressions, improvements and "
                           "missing scenarios, and fail only when something got worse.")]
    = None,
) -> None:
    """Run scenario files against the agent and report which fail (exit 1 if any fails;
    with --baseline, if any regressed, went missing or is new and failing)."""
    if not 0 < pass_rate <= 1:
        raise ConfigError(f"--pass-rate {pass_rate}: use a share above 0 and at most 1")
    before = read_baseline(baseline) if baseline is not None else None
    if queue and (rescore or llm_api_key):
        raise ConfigError("--queue replays on the workers: it does not go with --rescore, and "
                          "keys are never put in a job (set VOICEREPLAY_LLM_API_KEY for the "
                          "workers instead of --llm-api-key)")
    scenarios = load_suite(paths or [Path("scenarios")], pattern)
    options = SuiteOptions(
        agent=load_agent_file(agent) if agent else None, runs=runs, pass_rate=pass_rate,
        workers=workers,
        stages={k: v for k, v in {"model": model, "llm_base_url": llm_base_url, "llm": llm,
                                  "stt": stt, "tts": tts, "caller_tts": caller_tts}.items()
                if v is not None},
        report=report_options(similarity=similarity, figures=figures, judge_model=judge_model,
                              judge_base_url=judge_base_url),
        secrets=Secrets(llm_api_key=llm_api_key), rescore=rescore)
    for target in (junit, json_file):
        if target is not None and target.is_dir():
            raise ConfigError(f"{target} is a folder; name a file to write")
    done: dict[str, ScenarioOutcome] = {}
    started: set[str] = set()
    lock = threading.Lock()
    store = open_store()
    with Live(results_table(scenarios, done, started), console=out, auto_refresh=False,
              transient=False) as live:

        def refresh() -> None:
            live.update(Group(results_table(scenarios, done, started)), refresh=True)

        def on_start(scenario: Scenario) -> None:
            with lock:
                started.add(str(scenario.path))
                refresh()

        def on_done(outcome: ScenarioOutcome) -> None:
            with lock:
                done[str(outcome.path)] = outcome
                refresh()

        if queue:
            outcomes = _queued(store, scenarios, options, agent, on_start, on_done)
        else:
            outcomes = run_suite(store, scenarios, options, settings=settings(),
                                 on_start=on_start, on_done=on_done)
    if not out.is_terminal:
        out.line()  # the last rendering of the table ends without a newline
    diff = compare_with(before, outcomes) if before is not None else None
    _write_reports(outcomes, pass_rate, junit=junit, json_file=json_file,
                   baseline=diff.to_json() if diff is not None else None)
    failed = [o for o in outcomes if o.verdict != "pass"]
    summary = (f"{len(outcomes) - len(failed)} of {len(outcomes)} scenario(s) passed"
               + (f" (pass rate {pass_rate:g})" if any(o.runs > 1 for o in outcomes) else ""))
    flaky = [o.name for o in outcomes if o.flaky]
    if flaky:
        summary += f"; flaky: {', '.join(flaky)}"
    err.print(Text(summary, style="bold red" if failed else "bold green"))
    if diff is not None:
        for label, names in (("regressed", diff.regressed), ("missing", diff.missing),
                             ("new and failing", diff.new_failing),
                             ("improved", diff.improved), ("new and passing", diff.new_passing)):
            if names:
                err.print(Text(f"{label} since the baseline: {', '.join(names)}",
                               style="red" if label in ("regressed", "missing",
                                                        "new and failing") else "green"))
        if not diff.worse:
            err.print(Text(f"nothing got worse since the baseline ({len(diff.unchanged)} "
                           "unchanged)", style="bold green"))
        if diff.worse:
            raise typer.Exit(TESTS_FAILED)
        return
    if failed:
        raise typer.Exit(TESTS_FAILED)


def _queued(store: Any, scenarios: list[Scenario], options: SuiteOptions,
            agent: Path | None, on_start: Any, on_done: Any) -> list[ScenarioOutcome]:
    """``--queue``: one job per scenario for the workers; wait for their outcomes."""
    from voicereplay.pipeline.queue import JobQueue
    from voicereplay.pipeline.suite_queue import submit_suite, wait_for_outcomes

    jobs = submit_suite(JobQueue(store, settings()).submit_job, scenarios, agent_file=agent,
                        runs=options.runs, pass_rate=options.pass_rate, stages=options.stages)
    hinted: list[bool] = []

    def idle(seconds: float) -> None:
        if seconds >= 30 and not hinted:
            hinted.append(True)
            err.print(Text(f"{len(jobs)} scenario job(s) queued and none started yet: is a "
                           "`voicereplay worker` running on this store?", style="yellow"))

    return wait_for_outcomes(store, scenarios, jobs, on_start=on_start, on_done=on_done,
                             on_idle=idle)


def _write_reports(outcomes: list[ScenarioOutcome], pass_rate: float, *,
                   junit: Path | None, json_file: Path | None,
                   baseline: dict[str, Any] | None = None) -> None:
    if json_file is not None:
        data = suite_json(outcomes, pass_rate)
        if baseline is not None:
            data["baseline"] = baseline
        write_text(json_file, dumps(data))
    if junit is not None:
        write_text(junit, suite_junit(outcomes))
