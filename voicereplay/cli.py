"""The ``voicereplay`` command line: a thin face over :mod:`voicereplay.pipeline` and the store.

Every command prints one clear line and exits non-zero on a :class:`VoiceReplayError`; ``--json``
prints machine-readable output on stdout (progress and errors go to stderr).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from voicereplay import pipeline, render
from voicereplay.config import Settings
from voicereplay.errors import ConfigError, VoiceReplayError
from voicereplay.snapshot import diff as snapshot_diff
from voicereplay.store import Store

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Replay real Vapi/Retell voice-agent calls against a changed agent.",
)
calls_app = typer.Typer(no_args_is_help=True, help="Import, list and show calls.")
snapshot_app = typer.Typer(no_args_is_help=True, help="Show and diff agent snapshots.")
app.add_typer(calls_app, name="calls")
app.add_typer(snapshot_app, name="snapshot")

def _version(value: bool) -> None:
    if value:
        from voicereplay import __version__

        out.print(f"voicereplay {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Replay real Vapi/Retell voice-agent calls against a changed agent."""


out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
if not out.is_terminal:  # piped or captured: room for ids and times instead of 80 columns
    out.width = 140

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", "-p", help="vapi, retell or files (default: files with --dir, "
                                          "else vapi)."),
]


def _errors(fn: F) -> F:
    """Turn a VoiceReplayError into one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VoiceReplayError as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _store() -> Store:
    return Store.from_settings(Settings.from_env())


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


_RELATIVE = re.compile(r"^(\d+)([mhdw])$")


def parse_when(value: str | None, *, option: str) -> datetime | None:
    """ISO date/datetime (naive = UTC) or a relative age like ``30m``, ``24h``, ``7d``, ``2w``."""
    if value is None:
        return None
    match = _RELATIVE.match(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        span = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount),
                "d": timedelta(days=amount), "w": timedelta(weeks=amount)}[unit]
        return datetime.now(UTC) - span
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {value!r}: use an ISO date (2025-06-01, 2025-06-01T12:00Z) or an age "
            "like 24h, 7d"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- calls ----------------------------------------------------------------------------------------
@calls_app.command("import")
@_errors
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
    concurrency: Annotated[int, typer.Option(help="Parallel downloads.", min=1, max=64)] = 8,
    json_out: JsonOpt = False,
) -> None:
    """Import calls (and their recordings and agent snapshots) into the local store."""
    name = provider or ("files" if directory else "vapi")
    if name == "files" and directory is None:
        raise ConfigError("--provider files needs --dir DIR (a directory of exported call JSON)")
    since_at, until_at = parse_when(since, option="--since"), parse_when(until, option="--until")
    store = _store()
    with pipeline.open_provider(name, directory=directory, api_key=api_key,
                                base_url=base_url) as source:
        total = len(call_ids) if call_ids else limit
        if not call_ids and directory is not None and name == "files":
            from voicereplay.providers.files import scan

            total = min(len(scan(directory)), limit or 10**9)
        with Progress(SpinnerColumn(), TextColumn("[bold]importing[/] {task.description}"),
                      BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                      transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task(f"from {name}", total=total)

            def report(outcome: pipeline.ImportOutcome) -> None:
                progress.advance(task)
                if outcome.status == "failed":
                    err.print(f"[red]✗[/] {outcome.source}: {outcome.error}", soft_wrap=True)
                for warning in outcome.warnings:
                    err.print(f"[yellow]![/] {outcome.source}: {warning}", soft_wrap=True)

            outcomes = pipeline.import_calls(
                store, source, call_ids or (), since=since_at, until=until_at, limit=limit,
                recordings=not no_recordings, concurrency=concurrency, on_outcome=report,
            )
    counts = {s: sum(o.status == s for o in outcomes)
              for s in ("created", "updated", "unchanged", "failed")}
    if json_out:
        _print_json([asdict(o) for o in outcomes])
    else:
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        err.print(f"imported {len(outcomes)} call(s): {summary or 'nothing to import'}")
    if counts["failed"]:
        # one kind of failure for every call (a bad key, a wrong id) keeps its own exit code
        codes = {o.exit_code for o in outcomes}
        raise typer.Exit(codes.pop() if counts["failed"] == len(outcomes) and len(codes) == 1
                         else 1)


@calls_app.command("list")
@_errors
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
    rows = _store().list_calls(
        provider=provider, agent_id=agent, status=status,
        since=parse_when(since, option="--since"), until=parse_when(until, option="--until"),
        success=None if failed is None else not failed, limit=limit,
    )
    if json_out:
        _print_json([_as_dict(r) for r in rows])
    elif not rows:
        err.print("no calls stored yet; run `voicereplay calls import` (or `voicereplay demo`)")
    else:
        out.print(render.call_table(rows))


@calls_app.command("show")
@_errors
def calls_show(
    call_id: Annotated[str, typer.Argument(help="Call id (or provider:id).")],
    provider: ProviderOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one stored call: turns with times, tool calls, recordings."""
    store = _store()
    call = store.get_call(call_id, provider)
    if json_out:
        sys.stdout.write(call.model_dump_json(indent=2) + "\n")
        return
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    out.print(render.call_view(call, snapshot.id if snapshot else None))


# -- snapshot -------------------------------------------------------------------------------------
@snapshot_app.command("show")
@_errors
def snapshot_show(
    ref: Annotated[str, typer.Argument(help="Call id or snapshot id (prefix).")],
    provider: ProviderOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the agent snapshot of a call."""
    snapshot, label = pipeline.resolve_snapshot(_store(), ref, provider=provider)
    if json_out:
        _print_json(snapshot.model_dump(mode="json") | {"id": snapshot.id})
    else:
        out.print(render.snapshot_view(snapshot, f"({label})"))


@snapshot_app.command("diff")
@_errors
def snapshot_diff_cmd(
    a: Annotated[str, typer.Argument(help="Call id or snapshot id.")],
    b: Annotated[str | None, typer.Argument(help="Call id or snapshot id (default: A with the "
                                                 "overrides below).")] = None,
    overrides: Annotated[Path | None, typer.Option(help="YAML overrides applied to B.")] = None,
    prompt_file: Annotated[Path | None, typer.Option(help="System prompt file applied to B.")]
    = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value override applied "
                                                                 "to B (repeatable).")] = None,
    provider: ProviderOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Field-level differences between two snapshots (or a snapshot and its overrides)."""
    if b is None and not (overrides or prompt_file or set_):
        raise ConfigError("give a second call/snapshot id, or overrides "
                          "(--set, --prompt-file, --overrides) to compare against")
    store = _store()
    left, a_label = pipeline.resolve_snapshot(store, a, provider=provider)
    right, b_label = (pipeline.resolve_snapshot(store, b, provider=provider) if b
                      else (left, f"{a_label} + overrides"))
    right = pipeline.apply_overrides(right, overrides_file=overrides, prompt_file=prompt_file,
                                     pairs=set_ or ())
    changes = snapshot_diff(left, right)
    if json_out:
        _print_json({"a": left.id, "b": right.id,
                     "changes": [c.model_dump(mode="json") for c in changes]})
    else:
        out.print(render.diff_view(changes, a_label, b_label))


# -- demo -----------------------------------------------------------------------------------------
@app.command()
@_errors
def demo() -> None:
    """Import the bundled demo call (offline) and show it, its snapshot and the prompt fix."""
    directory = pipeline.demo_dir()
    store = _store()
    with pipeline.open_provider("files", directory=directory) as source:
        outcomes = pipeline.import_calls(store, source)
    failed = [o for o in outcomes if not o.ok]
    if failed or not outcomes:
        raise ConfigError(f"the demo call in {directory} did not import: "
                          f"{failed[0].error if failed else 'no call file found'}")
    call = store.get_call(outcomes[0].call_id or "", outcomes[0].provider)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    out.print(render.call_view(call, snapshot.id if snapshot else None))
    if snapshot is not None:
        out.print(render.snapshot_view(snapshot, f"(call {call.call_id})"))
        fixed = directory / "fixed-prompt.txt"
        if fixed.exists():
            patched = pipeline.apply_overrides(snapshot, prompt_file=fixed)
            out.print(render.diff_view(snapshot_diff(snapshot, patched), "production agent",
                                       "fixed prompt"))
    out.print(f"\nStored in {Settings.from_env().home}. Next: `voicereplay calls show "
              f"{call.call_id}`.")


def _as_dict(row: Any) -> dict[str, Any]:
    if hasattr(row, "model_dump"):
        return dict(row.model_dump(mode="json"))
    return asdict(row)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
