"""`voicereplay calls sync`: import the calls whose webhook was missed, and run the rules.

Each call the provider lists that is not stored becomes a ``backfill`` event, processed like a
webhook (:mod:`voicereplay.pipeline.triggers`): here, in this process, unless ``--background``
leaves the events to a worker. The replays the rules trigger are queued for a worker
(``voicereplay worker`` or ``serve``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from voicereplay.cli.calls import calls_app
from voicereplay.cli.common import (
    JsonOpt,
    check_provider,
    err,
    error_line,
    handle_errors,
    open_store,
    out,
    parse_when,
    print_json,
    settings,
    use_rules,
)
from voicereplay.errors import ConfigError


@calls_app.command("sync")
@handle_errors
def calls_sync(
    provider: Annotated[str | None, typer.Option(
        "--provider", "-p", help="vapi or retell (default: each one with an API key).")]
    = None,
    since: Annotated[str, typer.Option(help="Calls started at/after this (ISO or 24h, 7d).")]
    = "24h",
    limit: Annotated[int | None, typer.Option(min=1, help="List at most this many calls.")]
    = None,
    rules: Annotated[Path | None, typer.Option(
        help="The flag rules file (default: VOICEREPLAY_RULES or "
             "$VOICEREPLAY_HOME/rules.yaml).")] = None,
    background: Annotated[bool, typer.Option(
        "--background", help="Queue the imports for a worker instead of running them here.")]
    = False,
    json_out: JsonOpt = False,
) -> None:
    """List the provider's recent calls, import the ones missing from the store and run the
    flag rules on them, as if their webhooks had arrived."""
    from voicereplay.jobs.sync import sync_providers
    from voicereplay.pipeline.jobs import Worker, run_job
    from voicereplay.pipeline.queue import JOB_RUNNERS, JobQueue
    from voicereplay.pipeline.rules import load_configured_rules
    from voicereplay.pipeline.triggers import sync_calls

    use_rules(rules)
    config = settings()
    load_configured_rules(config)  # a broken rules file stops here
    since_at = parse_when(since, option="--since")
    if provider is not None:
        check_provider(provider, stored=True)
        names = [provider]
    else:
        names = sync_providers(config)
        if not names:
            raise ConfigError("no provider API key: set VAPI_API_KEY or RETELL_API_KEY (or "
                              "name one with --provider)")
    store = open_store()
    queue = JobQueue(store, config)
    rows: list[dict[str, Any]] = []
    failed = 0
    for name in names:
        report = sync_calls(store, config, queue.submit_job, name, since=since_at, limit=limit)
        if not json_out:
            err.print(Text(f"{name}: {report.listed} call(s) listed, {report.known} already "
                           f"stored, {len(report.events)} to import"))
        for job in report.jobs:
            row: dict[str, Any] = {"provider": name, "call_id": job.call_id,
                                   "event_job": job.id, "status": "queued", "triggered": []}
            if not background:
                outcome = run_job(store, job.id, Worker(config), runners=JOB_RUNNERS,
                                  submit=queue.submit_job)
                done = outcome.job or store.jobs.get(job.id)
                row["status"] = done.status.lower()
                row["error"] = done.error
                row["triggered"] = (done.result or {}).get("triggered", [])
                failed += done.status != "COMPLETED"
            rows.append(row)
            if not json_out:
                _say(row)
    if json_out:
        print_json(rows)
    elif rows and any(r["triggered"] for r in rows):
        err.print(Text("replays are queued: `voicereplay worker` (or `serve`) runs them; "
                       "`voicereplay jobs list` shows them"))
    if failed:
        error_line(f"{failed} call(s) could not be imported; `voicereplay jobs retry <id>` "
                   "tries again")
        raise typer.Exit(1)


def _say(row: dict[str, Any]) -> None:
    line = Text(f"{row['provider']}:{row['call_id']} ")
    if row["status"] == "queued":
        line.append(f"queued (event job {row['event_job'][:12]})")
    elif row["status"] == "completed":
        triggered = row["triggered"]
        line.append("imported; " + ("rules matched: " + ", ".join(
            f"{t['rule']} → replay job {t['job_id'][:12]}" for t in triggered)
            if triggered else "no rule matched"))
    else:
        line.append(f"{row['status']}: {row.get('error') or ''}", style="red")
    out.print(line)
