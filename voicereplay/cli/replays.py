"""`voicereplay call <call-id>` and `replays list|show`: options → ReplayRequest → pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from voicereplay import pipeline, render
from voicereplay.cli.common import (
    JsonOpt,
    ProviderOpt,
    TimeoutOpt,
    check_provider,
    err,
    error_line,
    handle_errors,
    open_store,
    out,
    print_json,
    settings,
    use_timeout,
)
from voicereplay.cli.compare import (
    ChecksOpt,
    CsatOpt,
    FiguresOpt,
    JudgeModelOpt,
    JudgeUrlOpt,
    SimilarityOpt,
    finish,
    print_results,
    report_options,
)
from voicereplay.cli.jobs import StatusOpt, check_status, history_table
from voicereplay.cli.replay_options import (
    CallerTtsOpt,
    LiveToolsOpt,
    LlmBackendOpt,
    LlmKeyOpt,
    LlmUrlOpt,
    MockOpt,
    ModelOpt,
    ModeOpt,
    OverridesOpt,
    PromptOpt,
    RunsOpt,
    SeedOpt,
    SetOpt,
    SttModelOpt,
    SttOpt,
    TemperatureOpt,
    TtsOpt,
    replay_request,
)
from voicereplay.compare.terminal import comparison_view
from voicereplay.errors import ConfigError
from voicereplay.pipeline import CallRef, ReplayRequest, ReplayResult, Secrets

__all__ = ["call", "replays_app", "run_request"]

replays_app = typer.Typer(no_args_is_help=True, help="List and show stored replays.")

ApiKeyOpt = Annotated[str | None, typer.Option(
    "--api-key", help="Provider API key for importing the call (default: VAPI_API_KEY / "
                      "RETELL_API_KEY).")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    "--base-url", help="Provider API base URL (default: VAPI_BASE_URL / RETELL_BASE_URL).")]


def run_request(request: ReplayRequest, secrets: Secrets | None = None, *,
                json_out: bool = False) -> list[ReplayResult]:
    """Run ``request`` with a live status line on stderr, then print the results."""
    with err.status("replaying", spinner="dots") as status:

        def show(progress: pipeline.Progress) -> None:
            if progress.warning:
                error_line(progress.message, "warning")
            status.update(f"{progress.stage}: {progress.message}")

        results = pipeline.run_call(open_store(), request, show, settings=settings(),
                                    secrets=secrets)
    print_results(results, json_out=json_out)
    return results


@handle_errors
def call(
    call_id: Annotated[str, typer.Argument(help="The call to replay (imported if needed).")],
    provider: ProviderOpt = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Import the call from this directory of call files.")] = None,
    api_key: ApiKeyOpt = None,
    base_url: BaseUrlOpt = None,
    timeout: TimeoutOpt = None,
    mode: ModeOpt = "scripted",
    model: ModelOpt = None,
    llm_base_url: LlmUrlOpt = None,
    llm_api_key: LlmKeyOpt = None,
    prompt_file: PromptOpt = None,
    temperature: TemperatureOpt = None,
    set_: SetOpt = None,
    overrides: OverridesOpt = None,
    mock: MockOpt = None,
    live_tools: LiveToolsOpt = False,
    seed: SeedOpt = None,
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
    background: Annotated[bool, typer.Option(
        "--background", help="Submit a job for `voicereplay worker` and print its id.")]
    = False,
    json_out: JsonOpt = False,
) -> None:
    """Replay a real call against the (changed) agent and show what changed."""
    check_provider(provider)
    use_timeout(timeout)
    request = replay_request(
        CallRef(call_id=call_id, provider=provider, directory=directory, base_url=base_url),
        mode=mode, overrides=overrides, prompt_file=prompt_file, checks=checks, set_=set_,
        mock=mock, llm_backend=llm_backend, similarity=similarity, figures=figures,
        judge_model=judge_model, judge_base_url=judge_base_url, csat=csat, model=model,
        llm_base_url=llm_base_url, temperature=temperature, seed=seed, runs=runs,
        stt_model=stt_model, stt=stt, tts=tts, caller_tts=caller_tts, live_tools=live_tools)
    if background:
        if api_key or llm_api_key:
            raise ConfigError("keys are never stored in a job: set VAPI_API_KEY / "
                              "RETELL_API_KEY / VOICEREPLAY_LLM_API_KEY where the worker runs")
        submit(request, json_out=json_out)
        return
    results = run_request(request, Secrets(provider_api_key=api_key, llm_api_key=llm_api_key),
                          json_out=json_out)
    finish([r.comparison for r in results])


def submit(request: ReplayRequest, *, json_out: bool) -> None:
    """``call --background``: store and deliver a job; print its id."""
    from voicereplay.pipeline.queue import JobQueue

    store = open_store()
    job, created = JobQueue(store, settings()).submit(request)
    if json_out:
        print_json({**job.model_dump(mode="json"), "created": created})
    elif created:
        out.print(Text(job.id))
        err.print(Text(f"submitted job {job.id[:12]}; `voicereplay jobs show {job.id[:12]}` "
                       "follows it (a `voicereplay worker` runs it)", style="dim"))
    else:
        out.print(Text(job.id))
        err.print(Text(f"the same request is already job {job.id[:12]} ({job.status}); "
                       f"`voicereplay jobs show {job.id[:12]}`", style="dim"))


@replays_app.command("list")
@handle_errors
def replays_list(
    call_id: Annotated[str | None, typer.Argument(help="Only the replays of this call.")] = None,
    provider: ProviderOpt = None,
    status: StatusOpt = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Replays, newest first. With --status: the replay history, background jobs included
    (pending, running, completed, failed with the error, cancelled)."""
    check_provider(provider, stored=True)
    if status is not None:
        from voicereplay.pipeline.history import call_history

        entries = call_history(open_store(), call_id, provider=provider,
                               status=check_status(status), limit=limit)
        if json_out:
            print_json([e.model_dump(mode="json") for e in entries])
        elif not entries:
            err.print(f"no {status.lower()} replays or jobs", markup=False)
        else:
            out.print(history_table(entries))
        return
    rows = open_store().replays.list(call_id=call_id, provider=provider, limit=limit)
    if json_out:
        print_json([r.model_dump(mode="json") for r in rows])
    elif not rows:
        err.print("no replays yet; run `voicereplay call <call-id>` (or `voicereplay demo`)",
                  markup=False)
    else:
        out.print(render.replay_table(rows))


@replays_app.command("show")
@handle_errors
def replays_show(
    replay_id: Annotated[str, typer.Argument(help="Replay id (or a prefix of 6+ characters).")],
    similarity: SimilarityOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """One replay beside its baseline call: the comparison again (no files are rewritten)."""
    report = report_options(similarity=similarity, figures=None, judge_model=None,
                            judge_base_url=None)
    result = pipeline.show_replay(open_store(), replay_id, similarity=report.similarity,
                                  settings=settings())
    if json_out:
        print_json(result.to_json())
        return
    out.print(render.replay_view(result.call, result.replay))
    out.print(comparison_view(result.comparison, result.call, result.replay))
