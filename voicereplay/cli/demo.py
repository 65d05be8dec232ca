"""`voicereplay demo`: the bundled demo call, fully offline."""

from __future__ import annotations

from typing import Annotated

import typer

from voicereplay import pipeline, render
from voicereplay.cli.common import handle_errors, open_store, out
from voicereplay.cli.replays import run_replay
from voicereplay.config import Settings
from voicereplay.errors import ConfigError
from voicereplay.pipeline.replaying import ReplayOptions
from voicereplay.snapshot import diff as snapshot_diff


@handle_errors
def demo(
    seed: Annotated[int, typer.Option(help="Seed for the replay.")] = 7,
) -> None:
    """Replay the bundled demo call against its fixed prompt, fully offline."""
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
    if snapshot is None:
        raise ConfigError(f"the demo call in {directory} has no agent snapshot")
    fixed = directory / "fixed-prompt.txt"
    out.print(f"[bold]Demo call[/] {call.provider}:{call.call_id} — on its fourth turn the "
              "production agent called issue_refund when the caller only asked where the "
              "order was.")
    patched = pipeline.apply_overrides(snapshot, prompt_file=fixed)
    out.print(render.diff_view(snapshot_diff(snapshot, patched), "production agent",
                               "fixed prompt"))
    out.print("Replaying the real caller audio against the fixed prompt with the embedded "
              "offline models (faster-whisper tiny.en, SmolLM2-135M, piper)…")
    options = ReplayOptions(model="local", seed=seed)
    replays = run_replay(call.call_id, provider=call.provider, prompt_file=fixed,
                         pairs=[f"model.seed={seed}", "model.max_tokens=80"], options=options)
    out.print(f"\nStored in {Settings.from_env().home}. Next: `voicereplay replays show "
              f"{replays[0].id[:12]}`, or `voicereplay call {call.call_id} --model recorded` "
              "to hear the audio path alone, or `--llm-base-url` for a real model.")
