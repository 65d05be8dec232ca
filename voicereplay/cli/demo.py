"""`voicereplay demo`: the bundled demo call, fully offline."""

from __future__ import annotations

from voicereplay import pipeline, render
from voicereplay.cli.common import (
    handle_errors,
    open_store,
    out,
)
from voicereplay.config import Settings
from voicereplay.errors import ConfigError
from voicereplay.snapshot import diff as snapshot_diff


# -- demo -----------------------------------------------------------------------------------------
@handle_errors
def demo() -> None:
    """Import the bundled demo call (offline) and show it, its snapshot and the prompt fix."""
    directory = pipeline.demo_dir()
    store = open_store()
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


