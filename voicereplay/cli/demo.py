"""`voicereplay demo`: the bundled demo call, offline, in two honest replays.

1. The call replayed with its own agent and the baseline's recorded replies: the audio path
   alone (the real caller re-heard by the STT, the replies re-spoken), which must reproduce the
   call — fidelity 1.00.
2. The fixed prompt with an LLM: the embedded SmolLM2-135M by default, which is far too small to
   choose tools, so the demo says plainly that tool-call verdicts need a real model and how to
   pass one (``--llm-base-url``/``--model``, or ``VOICEREPLAY_LLM_BASE_URL``); with a real model
   the comparison reads ``turn 4: issue_refund → check_status``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from voicereplay import pipeline, render
from voicereplay.cli.common import handle_errors, open_store, out, settings
from voicereplay.cli.replay_options import LlmKeyOpt, LlmUrlOpt, ModelOpt
from voicereplay.cli.replays import run_request
from voicereplay.errors import ConfigError
from voicereplay.pipeline import CallRef, ReplayRequest, Secrets
from voicereplay.pipeline.request import read_prompt
from voicereplay.snapshot import diff as snapshot_diff

EMBEDDED_NOTE = (
    "Note: the embedded SmolLM2-135M runs anywhere offline but is far too small to choose "
    "tools, so this replay cannot tell whether the fixed prompt stops the refund — its "
    "tool-call verdict means nothing. For a real verdict run a real model, e.g. Ollama or "
    "llama.cpp's server:\n"
    "  voicereplay demo --llm-base-url http://localhost:11434/v1 --model qwen2.5:7b-instruct\n"
    "or a hosted one (--llm-base-url https://api.openai.com/v1 --model gpt-4o-mini "
    "--llm-api-key …), or set VOICEREPLAY_LLM_BASE_URL."
)


@handle_errors
def demo(
    seed: Annotated[int, typer.Option(help="Seed for the replays.")] = 7,
    model: ModelOpt = None,
    llm_base_url: LlmUrlOpt = None,
    llm_api_key: LlmKeyOpt = None,
) -> None:
    """Replay the bundled demo call: first its audio path (recorded replies), then the fixed
    prompt with an LLM (the embedded one offline, or a real one you name)."""
    directory = pipeline.demo_dir()
    store_settings = settings()
    store = open_store()
    with pipeline.open_provider("files", store_settings, directory=directory) as source:
        outcomes = pipeline.import_calls(store, source)
    failed = [o for o in outcomes if not o.ok]
    if failed or not outcomes:
        raise ConfigError(f"the demo call in {directory} did not import: "
                          f"{failed[0].error if failed else 'no call file found'}")
    call = store.get_call(outcomes[0].call_id or "", outcomes[0].provider)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    if snapshot is None:
        raise ConfigError(f"the demo call in {directory} has no agent snapshot")
    ref = CallRef(call_id=call.call_id, provider=call.provider)
    out.print(f"Demo call {call.provider}:{call.call_id} — on its fourth turn the production "
              "agent called issue_refund when the caller only asked where the order was.",
              markup=False, style="bold")

    out.print("\nStep 1 of 2: the call replayed with its own agent and recorded replies — the "
              "real caller audio re-heard, the replies re-spoken (expect fidelity 1.00).",
              markup=False, style="bold")
    run_request(ReplayRequest(call=ref, model="recorded", seed=seed))

    fixed = directory / "fixed-prompt.txt"
    patched = pipeline.apply_overrides(snapshot, prompt_file=fixed)
    out.print("\nStep 2 of 2: the fixed prompt.", markup=False, style="bold")
    out.print(render.diff_view(snapshot_diff(snapshot, patched), "production agent",
                               "fixed prompt"))
    real = model not in (None, "local") or llm_base_url or store_settings.llm_base_url
    if not real:
        out.print(EMBEDDED_NOTE, markup=False, style="yellow")
    results = run_request(
        ReplayRequest(call=ref, system_prompt=read_prompt(fixed), model=model or (
            None if real else "local"), llm_base_url=llm_base_url, seed=seed,
            set=[] if real else ["model.max_tokens=80"]),
        Secrets(llm_api_key=llm_api_key))
    if not real:
        out.print("Reminder: the embedded SmolLM2 cannot choose tools, so the tool-call verdict "
                  "above means nothing; rerun with --llm-base-url URL --model NAME for a real "
                  "one.", markup=False, style="yellow")
    out.print(f"\nStored in {store_settings.home}. Next: `voicereplay replays show "
              f"{results[0].replay.id[:12]}`, or `voicereplay call {call.call_id} --llm-base-url "
              "URL --model NAME --prompt-file fixed-prompt.txt` with a real model.",
              markup=False)
