"""``voicereplay batch run|list|show|compare``: many calls against one candidate agent.

``batch run`` stores the batch and one replay job per call (:mod:`voicereplay.pipeline.batches`),
then runs them in this process with ``--concurrency`` worker threads (any ``voicereplay
worker`` sharing the store helps), with a live progress line; ``--background`` only submits.
Interrupted (Ctrl-C), it hands its running jobs back; the same command again continues.

Exit codes: 0 every call replayed and every check passed; 5 a check failed (as ``call``);
1 a call's replay failed; 130 interrupted; 2 bad input.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from voicereplay.cli.batch_view import batch_table, comparison_view, report_view, status_line
from voicereplay.cli.common import (
    JsonOpt,
    ProviderOpt,
    check_provider,
    err,
    error_line,
    handle_errors,
    open_store,
    out,
    print_json,
    settings,
)
from voicereplay.cli.compare import (
    CHECKS_FAILED,
    ChecksOpt,
    CsatOpt,
    FiguresOpt,
    JudgeModelOpt,
    JudgeUrlOpt,
    SimilarityOpt,
)
from voicereplay.cli.replay_options import (
    CallerTtsOpt,
    LiveToolsOpt,
    LlmBackendOpt,
    LlmUrlOpt,
    MockOpt,
    ModelOpt,
    ModeOpt,
    OverridesOpt,
    PromptOpt,
    RunsOpt,
    SetOpt,
    SttModelOpt,
    SttOpt,
    TemperatureOpt,
    TtsOpt,
    replay_request,
)
from voicereplay.errors import ConfigError
from voicereplay.pipeline import CallRef
from voicereplay.pipeline.batch_reports import (
    BatchReport,
    batch_report,
    calls_csv,
    compare_batch_reports,
)
from voicereplay.pipeline.batches import (
    BatchSelection,
    BatchStatus,
    batch_status,
    parse_filter,
    start_batch,
)
from voicereplay.store import Store
from voicereplay.store.batches import Batch

if TYPE_CHECKING:
    from voicereplay.jobs.worker import EmbeddedWorker

__all__ = ["batch_app"]

batch_app = typer.Typer(no_args_is_help=True, help="Replay many calls against one candidate "
                                                   "agent and see the aggregate.")

INTERRUPTED = 130
POLL = 0.5  # seconds between looks at the batch's jobs


@batch_app.command("run")
@handle_errors
def batch_run(
    call_ids: Annotated[list[str] | None, typer.Argument(
        help="Stored calls to replay (or use --filter / --all).")] = None,
    provider: ProviderOpt = None,
    filter_: Annotated[str | None, typer.Option(
        "--filter", help="Calls matching e.g. provider=vapi,agent=asst_1,since=7d,"
                         "ended_reason=customer-ended-call,failed=true.")] = None,
    all_calls: Annotated[bool, typer.Option("--all", help="Every stored call.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N calls (newest first).")]
    = None,
    sample: Annotated[int | None, typer.Option(
        min=1, help="A random sample of N of the selected calls (seeded by --seed).")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Seed of --sample, also passed to every stage of every replay.")] = None,
    name: Annotated[str | None, typer.Option(help="A name for the batch.")] = None,
    mode: ModeOpt = "scripted",
    model: ModelOpt = None,
    llm_base_url: LlmUrlOpt = None,
    prompt_file: PromptOpt = None,
    temperature: TemperatureOpt = None,
    set_: SetOpt = None,
    overrides: OverridesOpt = None,
    mock: MockOpt = None,
    live_tools: LiveToolsOpt = False,
    runs: RunsOpt = 1,
    stt_model: SttModelOpt = None,
    stt: SttOpt = "faster-whisper",
    tts: TtsOpt = "piper",
    caller_tts: CallerTtsOpt = "piper-caller",
    llm_backend: LlmBackendOpt = None,
    checks: ChecksOpt = None,
    similarity: SimilarityOpt = None,
    figures: FiguresOpt = "png",
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    csat: CsatOpt = False,
    concurrency: Annotated[int, typer.Option(
        min=1, max=64, help="Replays at once in this process.")] = 2,
    background: Annotated[bool, typer.Option(
        "--background", help="Only submit the jobs; `voicereplay worker`s run them.")]
    = False,
    new: Annotated[bool, typer.Option(
        "--new", help="Start a new batch even if one with these arguments is stored.")]
    = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Continuing a batch: run its failed calls again.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Replay many stored calls against one (changed) agent; show the aggregate. Running the
    same command again continues an interrupted batch."""
    check_provider(provider)
    selection = BatchSelection(
        call_ids=list(call_ids or []), provider=provider,
        filters=parse_filter(filter_).model_dump(exclude={"page"}, exclude_defaults=True)
        if filter_ is not None else {},
        all_calls=all_calls, limit=limit, sample=sample, seed=seed or 0)
    selection.check()
    request = replay_request(
        CallRef(call_id="*"), mode=mode, overrides=overrides, prompt_file=prompt_file,
        checks=checks, set_=set_, mock=mock, llm_backend=llm_backend, similarity=similarity,
        figures=figures, judge_model=judge_model, judge_base_url=judge_base_url, csat=csat,
        model=model, llm_base_url=llm_base_url, temperature=temperature, seed=seed, runs=runs,
        stt_model=stt_model, stt=stt, tts=tts, caller_tts=caller_tts, live_tools=live_tools)
    from voicereplay.jobs.worker import EmbeddedWorker

    store = open_store()
    worker = None if background else EmbeddedWorker(settings(), store,
                                                    concurrency=concurrency)
    if worker is not None:
        queue = worker.queue
    else:
        from voicereplay.pipeline.queue import JobQueue

        queue = JobQueue(store, settings())
    started = start_batch(store, queue, selection, request, name=name, fresh=new,
                          retry_failed=retry_failed)
    batch = started.batch
    status = batch_status(store, [batch])[batch.id]
    if started.created:
        what = f"batch {batch.id[:12]}: {len(batch.calls)} calls"
    else:
        what = (f"batch {batch.id[:12]} (continued): {status.completed} of "
                f"{len(batch.calls)} calls already done"
                + (f", {started.retried} failed call(s) run again" if started.retried else ""))
    err.print(Text(what))
    if background:
        out.print(Text(batch.id))
        err.print(Text(f"`voicereplay batch show {batch.id[:12]}` follows it "
                       "(`voicereplay worker`s run it)", style="dim"))
        return
    assert worker is not None
    done = status.done or _run(store, batch, worker)
    report = batch_report(store, batch)
    if json_out:
        print_json(report.to_json())
    else:
        out.print(report_view(report))
        out.print(Text(f"next: voicereplay batch show {batch.id[:12]} --csv aggregate.csv",
                       style="dim"))
    if not done:
        error_line(f"interrupted: {report.status.finished} of {report.status.total} calls "
                   "done; run the same command again to continue", "stopped")
        raise typer.Exit(INTERRUPTED)
    _exit(report)


def _run(store: Store, batch: Batch, worker: EmbeddedWorker) -> bool:
    """Run the batch's jobs with the in-process worker until every one is finished; False
    when interrupted (Ctrl-C), after handing the running jobs back."""
    quiet = [logging.getLogger(n) for n in ("voicereplay", "huey")]
    levels = [q.level for q in quiet]
    for q in quiet:  # a failed call is in the summary; log lines would tear the bar
        q.setLevel(logging.ERROR)
    worker.start()
    try:
        return _follow(store, batch)
    except KeyboardInterrupt:
        return False
    finally:
        err.print(Text("stopping the worker threads …", style="dim"))
        worker.stop()
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def _follow(store: Store, batch: Batch) -> bool:
    status = batch_status(store, [batch])[batch.id]
    if not err.is_terminal:
        return _follow_lines(store, batch, status)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("replaying", total=status.total, completed=status.finished,
                            detail="")
        while not status.done:
            time.sleep(POLL)
            status = batch_status(store, [batch])[batch.id]
            bar.update(task, completed=status.finished,
                       detail=f"{status.failed} failed · {status.running} running")
    return True


def _follow_lines(store: Store, batch: Batch, status: BatchStatus) -> bool:
    """Not a terminal (a CI log): one line whenever a call finishes, with an ETA."""
    start, first = time.monotonic(), status.finished
    last = -1
    while True:
        if status.finished != last:
            last = status.finished
            rate = (status.finished - first) / max(1e-9, time.monotonic() - start)
            eta = (f", about {(status.total - status.finished) / rate:.0f} s left"
                   if rate > 0 and not status.done else "")
            err.print(Text(f"batch {batch.id[:12]}: {status_line(status)}{eta}"))
        if status.done:
            return True
        time.sleep(POLL)
        status = batch_status(store, [batch])[batch.id]


def _exit(report: BatchReport) -> None:
    if report.status.failed or report.status.cancelled:
        raise typer.Exit(1)
    if report.aggregate is not None and report.aggregate.overall.passed < \
            report.aggregate.overall.total:
        raise typer.Exit(CHECKS_FAILED)


@batch_app.command("list")
@handle_errors
def batch_list(
    limit: Annotated[int, typer.Option(min=1)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Stored batches, newest first, with how far each one is."""
    store = open_store()
    batches = store.batches.list(limit=limit)
    statuses = batch_status(store, batches)
    if json_out:
        print_json([{"id": b.id, "name": b.name, "created_at": b.created_at.isoformat(),
                     "calls": len(b.calls), "state": statuses[b.id].state,
                     "completed": statuses[b.id].completed, "failed": statuses[b.id].failed}
                    for b in batches])
        return
    if not batches:
        err.print(Text("no batches yet: `voicereplay batch run --all --model recorded` "
                       "starts one", style="dim"))
        return
    out.print(batch_table(batches, statuses))


@batch_app.command("show")
@handle_errors
def batch_show(
    batch_id: Annotated[str, typer.Argument(help="Batch id (a 6+ character prefix) or name.")],
    regressions: Annotated[bool, typer.Option(
        "--regressions", help="Only what got worse.")] = False,
    worst: Annotated[int, typer.Option(min=1, max=1000, help="List the N worst calls.")]
    = 10,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv", help="Write the aggregate as CSV here.")] = None,
    calls_file: Annotated[Path | None, typer.Option(
        "--calls-csv", help="Write one CSV row per call here.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """A batch: its progress, failed calls, and the aggregate of the calls replayed."""
    from voicereplay.compare.aggregate import aggregate_csv

    store = open_store()
    report = batch_report(store, store.batches.get(batch_id), worst=worst)
    if csv_file is not None:
        _write(csv_file, aggregate_csv(report.aggregate) if report.aggregate else "")
    if calls_file is not None:
        _write(calls_file, calls_csv(report))
    if json_out:
        print_json(report.to_json())
        return
    out.print(report_view(report, regressions_only=regressions, limit=worst))


@batch_app.command("compare")
@handle_errors
def batch_compare(
    batch_a: Annotated[str, typer.Argument(help="The reference batch (e.g. production).")],
    batch_b: Annotated[str, typer.Argument(help="The batch compared with it (the candidate).")],
    json_out: JsonOpt = False,
) -> None:
    """Batch B against batch A, matched by call; calls in only one of them are listed."""
    store = open_store()
    a = batch_report(store, store.batches.get(batch_a))
    b = batch_report(store, store.batches.get(batch_b))
    if a.batch.id == b.batch.id:
        raise ConfigError("name two different batches")
    cmp = compare_batch_reports(a, b)
    if json_out:
        print_json(asdict(cmp))
        return
    out.print(comparison_view(a, b, cmp))


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    err.print(Text(f"wrote {path}", style="dim"))
