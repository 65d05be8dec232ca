"""The ``voicereplay`` command line: a thin face over :mod:`voicereplay.pipeline` and the store.

Every command prints one clear line and exits non-zero on a :class:`VoiceReplayError`; ``--json``
prints machine-readable output on stdout (progress and errors go to stderr).
"""

from __future__ import annotations

from typing import Annotated

import typer

from voicereplay.cli.batch import batch_app
from voicereplay.cli.calls import calls_app
from voicereplay.cli.common import out, parse_when
from voicereplay.cli.compare import compare
from voicereplay.cli.demo import demo
from voicereplay.cli.jobs import jobs_app, worker
from voicereplay.cli.replays import call, replays_app
from voicereplay.cli.rules import rules_app
from voicereplay.cli.scenarios import agent_app, run_tests, save
from voicereplay.cli.serve import serve
from voicereplay.cli.snapshots import snapshot_app
from voicereplay.cli.sync import calls_sync

__all__ = ["app", "calls_sync", "main", "parse_when"]  # calls_sync: `calls sync`

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Replay real Vapi/Retell voice-agent calls against a changed agent.",
)
app.add_typer(calls_app, name="calls")
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(replays_app, name="replays")
app.add_typer(jobs_app, name="jobs")
app.add_typer(rules_app, name="rules")
app.add_typer(agent_app, name="agent")
app.add_typer(batch_app, name="batch")
app.command()(call)
app.command()(compare)
app.command()(demo)
app.command()(worker)
app.command()(serve)
app.command()(save)
app.command("test")(run_tests)


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


def main() -> None:
    app()
