"""`voicereplay jobs list|show|cancel|retry` and `voicereplay worker`: background replays."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from voicereplay.cli.common import (
    JsonOpt,
    err,
    error_line,
    handle_errors,
    open_store,
    out,
    print_json,
    settings,
    use_rules,
)
from voicereplay.errors import NotStoredError
from voicereplay.pipeline.history import HistoryEntry, job_status
from voicereplay.render import add_row
from voicereplay.store.jobs import Job, JobStatus

__all__ = ["history_table", "jobs_app", "worker"]

FOLLOW_EVERY = 1.0  # seconds between looks at a followed job

jobs_app = typer.Typer(no_args_is_help=True, help="Background replay jobs.")

StatusOpt = Annotated[str | None, typer.Option(
    help="Only this status: pending, running, completed, failed or cancelled.")]


def check_status(value: str | None) -> JobStatus | None:
    return job_status(value, option="--status")


def _when(job: Job | HistoryEntry) -> str:
    return job.created_at.strftime("%Y-%m-%d %H:%M:%S")


def _call(provider: str | None, call_id: str | None) -> str:
    return f"{provider}:{call_id}" if provider else call_id or "?"


def _state(status: str, stage: str | None, progress: str | None, error: str | None) -> str:
    if status == "RUNNING":
        return f"RUNNING: {stage or 'starting'}" + (f" ({progress})" if progress else "")
    if error and status in ("FAILED", "PENDING"):
        return f"{status}: {error}"
    return status


def job_table(jobs: Sequence[Job]) -> Table:
    table = Table(title=f"{len(jobs)} job(s)", header_style="bold")
    for name in ("job", "kind", "call", "created (UTC)", "attempt", "status", "replays"):
        table.add_column(name, overflow="fold", no_wrap=name == "job")
    for job in jobs:
        rule = (job.trigger or {}).get("rule")
        kind = f"{job.kind} ({rule})" if rule and job.kind == "replay" else job.kind
        add_row(table, job.id[:12], kind, _call(job.call_provider, job.call_id),
                _when(job), f"{job.attempt}/{job.max_attempts}",
                _state(job.status, job.stage, job.progress, job.error),
                " ".join(r[:12] for r in job.replay_ids))
    return table


def history_table(entries: Sequence[HistoryEntry]) -> Table:
    """A call's replay history: jobs and foreground replays, one status vocabulary."""
    table = Table(title=f"{len(entries)} replay job(s) and replay(s)", header_style="bold")
    for name in ("id", "kind", "call", "created (UTC)", "mode", "status", "replays"):
        table.add_column(name, overflow="fold", no_wrap=name == "id")
    for e in entries:
        add_row(table, e.id[:12], e.kind, _call(e.call_provider, e.call_id),
                _when(e), e.mode or "", _state(e.status, e.stage, e.progress, e.error),
                " ".join(r[:12] for r in e.replay_ids))
    return table


def job_view(job: Job) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, Any]] = [
        ("job", f"{job.id} ({job.kind})"),
        ("call", _call(job.call_provider, job.call_id)),
        ("status", _state(job.status, job.stage, job.progress, None)),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("created", job.created_at.isoformat(timespec="seconds")),
        ("started", job.started_at.isoformat(timespec="seconds") if job.started_at else None),
        ("finished", job.finished_at.isoformat(timespec="seconds") if job.finished_at
         else None),
        ("worker", job.worker_id),
        ("heartbeat", job.heartbeat_at.isoformat(timespec="seconds") if job.heartbeat_at
         else None),
        ("error", f"{job.error_type}: {job.error}" if job.error else None),
        ("replays", " ".join(job.replay_ids) or None),
        ("rule", (job.trigger or {}).get("rule")),
        ("batch", job.batch_id[:12] if job.batch_id else None),
        *_result_rows(job),
        ("key", job.idempotency_key),
    ]
    for label, value in rows:
        if value is not None:
            add_row(grid, label, value)
    hint = None
    if job.status == "COMPLETED" and job.replay_ids:
        hint = f"voicereplay replays show {job.replay_ids[0][:12]}"
    elif job.status in ("FAILED", "CANCELLED"):
        hint = f"voicereplay jobs retry {job.id[:12]}"
    return Group(grid, Text(f"next: {hint}", style="dim")) if hint else grid


def _result_rows(job: Job) -> list[tuple[str, Any]]:
    """What an event job queued, or where a notification went and how it was answered."""
    result = job.result or {}
    if job.kind == "event" and "triggered" in result:
        queued = [f"{t['rule']} → job {t['job_id'][:12]}{'' if t['new'] else ' (known)'}"
                  for t in result["triggered"]]
        return [("triggered", ", ".join(queued) or "no rule matched")]
    if job.kind == "notify" and "status_code" in result:
        return [("delivered", f"{result.get('target')} answered HTTP {result['status_code']}")]
    return []


@jobs_app.command("list")
@handle_errors
def jobs_list(
    status: StatusOpt = None,
    call_id: Annotated[str | None, typer.Option("--call", help="Only this call's jobs.")]
    = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Jobs, newest first."""
    wanted = check_status(status)
    store = open_store()
    if call_id is not None:
        try:
            call_id = store.get_call(call_id).call_id
        except NotStoredError:
            pass  # a job may name a call it has not imported yet
    jobs = store.jobs.list(status=wanted, call_id=call_id, limit=limit)
    if json_out:
        print_json([j.model_dump(mode="json") for j in jobs])
    elif not jobs:
        err.print("no jobs; `voicereplay call <call-id> --background` submits one",
                  markup=False)
    else:
        out.print(job_table(jobs))


@jobs_app.command("show")
@handle_errors
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="Job id (or a prefix of 6+ characters).")],
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Show the stage live until the job finishes; exit 1 unless it "
                               "completed.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """One job: status, the stage it is in, attempts, error, replays."""
    store = open_store()
    job = store.jobs.get(job_id)
    if follow and not job.finished:
        with err.status("waiting", spinner="dots") as status:
            while not job.finished:
                status.update(Text(_state(job.status, job.stage, job.progress, job.error)))
                time.sleep(FOLLOW_EVERY)
                job = store.jobs.get(job.id)
    if json_out:
        print_json(job.model_dump(mode="json"))
    else:
        out.print(job_view(job))
    if follow and job.status != "COMPLETED":
        raise typer.Exit(1)


@jobs_app.command("cancel")
@handle_errors
def jobs_cancel(
    job_id: Annotated[str, typer.Argument(help="Job id (or a prefix of 6+ characters).")],
) -> None:
    """Cancel a pending or running job (a running attempt's result is then discarded)."""
    from voicereplay.pipeline.job_control import cancel_job

    store = open_store()
    job = store.jobs.get(job_id)
    cancel_job(store, job.id)
    out.print(Text(f"cancelled job {job.id[:12]} (was {job.status})"))


@jobs_app.command("retry")
@handle_errors
def jobs_retry(
    job_id: Annotated[str, typer.Argument(help="Job id (or a prefix of 6+ characters).")],
) -> None:
    """Run a failed or cancelled job again, with all its attempts."""
    from voicereplay.pipeline.job_control import retry_job
    from voicereplay.pipeline.queue import JobQueue

    store = open_store()
    job = retry_job(JobQueue(store, settings()), job_id)
    out.print(Text(f"job {job.id[:12]} is pending again; a worker will run it "
                   "(`voicereplay worker`)"))


@handle_errors
def worker(
    concurrency: Annotated[int, typer.Option(
        min=1, max=64, help="Jobs run at once (threads sharing the loaded models).")] = 3,
    plugin: Annotated[list[str] | None, typer.Option(
        help="A module that registers backends (repeatable; also VOICEREPLAY_PLUGINS).")]
    = None,
    lease: Annotated[float | None, typer.Option(
        min=1, help="Seconds a job attempt holds its job between heartbeats (default: "
                    "VOICEREPLAY_JOB_LEASE or 60).")] = None,
    poll: Annotated[float, typer.Option(
        min=0.05, max=60, help="Longest wait between looks at an empty SQLite queue, seconds.")]
    = 0.25,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every task.")] = False,
    rules: Annotated[Path | None, typer.Option(
        help="The flag rules file webhook events are matched against (default: "
             "VOICEREPLAY_RULES or $VOICEREPLAY_HOME/rules.yaml).")] = None,
) -> None:
    """Run background jobs (replays, webhook events, notifications) until SIGTERM or
    Ctrl-C."""
    from voicereplay.jobs import WorkerOptions, run_worker
    from voicereplay.registry import load_plugins

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        for quiet in ("huey", "alembic"):
            logging.getLogger(quiet).setLevel(logging.WARNING)
    load_plugins(plugin or [])
    use_rules(rules)
    code = run_worker(settings(), WorkerOptions(concurrency=concurrency, lease=lease, poll=poll),
                      ready=lambda line: err.print(Text(line)))
    if code:
        error_line("the worker stopped with an error")
    raise typer.Exit(code)
