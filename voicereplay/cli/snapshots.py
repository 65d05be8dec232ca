"""`voicereplay snapshot show|diff`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voicereplay import pipeline, render
from voicereplay.cli.common import (
    JsonOpt,
    ProviderOpt,
    handle_errors,
    open_store,
    out,
    print_json,
)
from voicereplay.errors import ConfigError
from voicereplay.snapshot import diff as snapshot_diff

snapshot_app = typer.Typer(no_args_is_help=True, help="Show and diff agent snapshots.")


# -- snapshot -------------------------------------------------------------------------------------
@snapshot_app.command("show")
@handle_errors
def snapshot_show(
    ref: Annotated[str, typer.Argument(help="Call id or snapshot id (prefix).")],
    provider: ProviderOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the agent snapshot of a call."""
    snapshot, label = pipeline.resolve_snapshot(open_store(), ref, provider=provider)
    if json_out:
        print_json(snapshot.model_dump(mode="json") | {"id": snapshot.id})
    else:
        out.print(render.snapshot_view(snapshot, f"({label})"))


@snapshot_app.command("diff")
@handle_errors
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
    store = open_store()
    left, a_label = pipeline.resolve_snapshot(store, a, provider=provider)
    right, b_label = (pipeline.resolve_snapshot(store, b, provider=provider) if b
                      else (left, f"{a_label} + overrides"))
    right = pipeline.apply_overrides(right, overrides_file=overrides, prompt_file=prompt_file,
                                     pairs=set_ or ())
    changes = snapshot_diff(left, right)
    if json_out:
        print_json({"a": left.id, "b": right.id,
                     "changes": [c.model_dump(mode="json") for c in changes]})
    else:
        out.print(render.diff_view(changes, a_label, b_label))


