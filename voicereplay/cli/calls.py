"""`voicereplay calls import|list|show`."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from voicereplay import pipeline, render
from voicereplay.cli.common import (
    JsonOpt,
    ProviderOpt,
    TimeoutOpt,
    as_dict,
    check_provider,
    err,
    error_line,
    handle_errors,
    open_store,
    out,
    parse_when,
    print_json,
    settings,
    use_timeout,
)
from voicereplay.errors import ConfigError
from voicereplay.pipeline import ImportOutcome

calls_app = typer.Typer(no_args_is_help=True, help="Import, list and show calls.")


# -- calls ----------------------------------------------------------------------------------------
@calls_app.command("import")
@handle_errors
def calls_import(
    call_ids: Annotated[list[str] | None, typer.Argument(help="Call ids; none = list and "
                                                              "import every call.")] = None,
    provider: ProviderOpt = None,
    directory: Annotated[Path | None, typer.Option("--dir", help="Directory of exported call "
                                                                 "JSON (files provider).")] = None,
    since: Annotated[str | None, typer.Option(help="Only calls started at/after this "
                                                   "(ISO or 24h, 7d).")] = None,
    until: Annotated[str | None, typer.Option(help="Only calls started before this.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many calls.", min=1)] = None,
    api_key: Annotated[str | None, typer.Option(help="Provider API key (default: "
                                                     "VAPI_API_KEY / RETELL_API_KEY).")] = None,
    base_url: Annotated[str | None, typer.Option(help="Provider API base URL.")] = None,
    no_recordings: Annotated[bool, typer.Option("--no-recordings",
                                                help="Skip downloading audio.")] = False,
    concurrency: Annotated[int | None, typer.Option(
        help="Parallel downloads (default: VOICEREPLAY_DOWNLOAD_CONCURRENCY, else 8).", min=1,
        max=64)] = None,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import calls (and their recordings and agent snapshots) into the local store."""
    use_timeout(timeout)
    name = provider or ("files" if directory else "vapi")
    if name == "files" and directory is None:
        raise ConfigError("--provider files needs --dir DIR (a directory of exported call JSON)")
    since_at, until_at = parse_when(since, option="--since"), parse_when(until, option="--until")
    store = open_store()
    done: list[ImportOutcome] = []
    with pipeline.open_provider(name, settings(), directory=directory, api_key=api_key,
                                base_url=base_url) as source:
        total = len(call_ids) if call_ids else limit
        if not call_ids and directory is not None and name == "files":
            from voicereplay.providers.files import scan

            total = min(len(scan(directory)), limit or 10**9)
        with Progress(SpinnerColumn(), TextColumn("[bold]importing[/] {task.description}"),
                      BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                      transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task(f"from {name}", total=total)

            def report(outcome: ImportOutcome) -> None:
                done.append(outcome)
                progress.advance(task)
                if outcome.status == "failed":
                    error_line(f"{outcome.source}: {outcome.error}", "✗", sep=" ")
                for warning in outcome.warnings:
                    error_line(f"{outcome.source}: {warning}", "!", sep=" ")

            try:
                outcomes = pipeline.import_calls(
                    store, source, call_ids or (), since=since_at, until=until_at, limit=limit,
                    recordings=not no_recordings,
                    concurrency=concurrency or settings().download_concurrency,
                    on_outcome=report)
            except KeyboardInterrupt:
                progress.stop()
                stored = sum(o.ok for o in done)
                error_line(f"after {len(done)} call(s) ({stored} stored, "
                           f"{len(done) - stored} failed); every stored call is complete — run "
                           "the same import again to continue", "interrupted")
                raise typer.Exit(130) from None
    counts = {s: sum(o.status == s for o in outcomes)
              for s in ("created", "updated", "unchanged", "failed")}
    if json_out:
        print_json([asdict(o) for o in outcomes])
    else:
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        err.print(f"imported {len(outcomes)} call(s): {summary or 'nothing to import'}")
    if counts["failed"]:
        # one kind of failure for every call (a bad key, a wrong id) keeps its own exit code
        codes = {o.exit_code for o in outcomes}
        raise typer.Exit(codes.pop() if counts["failed"] == len(outcomes) and len(codes) == 1
                         else 1)


@calls_app.command("list")
@handle_errors
def calls_list(
    provider: ProviderOpt = None,
    agent: Annotated[str | None, typer.Option(help="Only calls of this assistant/agent id.")]
    = None,
    status: Annotated[str | None, typer.Option(help="Only calls with this status.")] = None,
    since: Annotated[str | None, typer.Option(help="Started at/after (ISO or 24h, 7d).")]
    = None,
    until: Annotated[str | None, typer.Option(help="Started before.")] = None,
    failed: Annotated[bool | None, typer.Option("--failed/--succeeded",
                                                help="By success evaluation.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """List stored calls, newest first."""
    check_provider(provider, stored=True)
    store = open_store()
    rows = store.list_calls(
        provider=provider, agent_id=agent, status=status,
        since=parse_when(since, option="--since"), until=parse_when(until, option="--until"),
        success=None if failed is None else not failed, limit=limit,
    )
    if json_out:
        print_json([as_dict(r) for r in rows])
    elif not rows:
        stored = store.count_calls()
        err.print(f"no calls match ({stored} stored)" if stored else
                  "no calls stored yet; run `voicereplay calls import` (or `voicereplay demo`)",
                  markup=False)
    else:
        out.print(render.call_table(rows))


@calls_app.command("show")
@handle_errors
def calls_show(
    call_id: Annotated[str, typer.Argument(help="Call id (or provider:id).")],
    provider: ProviderOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one stored call: turns with times, tool calls, recordings."""
    check_provider(provider, stored=True)
    store = open_store()
    call = store.get_call(call_id, provider)
    if json_out:
        sys.stdout.write(call.model_dump_json(indent=2) + "\n")
        return
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    out.print(render.call_view(call, snapshot.id if snapshot else None))


