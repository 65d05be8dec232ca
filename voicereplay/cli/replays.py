"""`voicereplay call <call-id>` (import → snapshot → overrides → replay) and `replays list|show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from voicereplay import pipeline, render
from voicereplay.cli.common import (
    JsonOpt,
    ProviderOpt,
    err,
    handle_errors,
    open_store,
    out,
    print_json,
)
from voicereplay.cli.compare import (
    ChecksOpt,
    FiguresOpt,
    JudgeModelOpt,
    JudgeUrlOpt,
    ReportOptions,
    SimilarityOpt,
    checks_of,
    finish,
    report_replays,
    stored_judgements,
)
from voicereplay.compare.model import CheckResult
from voicereplay.compare.terminal import comparison_view
from voicereplay.errors import ConfigError, NotStoredError
from voicereplay.models import Call, Replay
from voicereplay.pipeline.replaying import ReplayOptions, replay_call
from voicereplay.store import Store

replays_app = typer.Typer(no_args_is_help=True, help="List and show stored replays.")


def _ensure_call(store: Store, call_id: str, provider: str | None,
                 directory: Path | None) -> Call:
    """The stored call, imported first when it is not stored yet."""
    try:
        return store.get_call(call_id, provider)
    except NotStoredError:
        if directory is None and provider is None:
            provider = "vapi"
    name = "files" if directory is not None else provider or "vapi"
    err.print(f"importing call {call_id} from {name}")
    with pipeline.open_provider(name, directory=directory) as source:
        [outcome] = pipeline.import_calls(store, source, [call_id])
    if not outcome.ok:
        raise NotStoredError(f"could not import call {call_id}: {outcome.error}")
    return store.get_call(outcome.call_id or call_id, outcome.provider)


def _mocks(pairs: list[str]) -> dict[str, Any]:
    mocks: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--mock {pair!r}: expected tool=result, e.g. "
                              "check_status='{\"status\":\"shipped\"}'")
        try:
            mocks[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            mocks[name.strip()] = raw
    return mocks


def run_replay(
    call_id: str,
    *,
    provider: str | None = None,
    directory: Path | None = None,
    prompt_file: Path | None = None,
    overrides_file: Path | None = None,
    pairs: list[str] | None = None,
    options: ReplayOptions,
    report: ReportOptions | None = None,
    json_out: bool = False,
) -> list[Replay]:
    """The steps behind `voicereplay call` (and the demo): shared, printed the same way."""
    store = open_store()
    call = _ensure_call(store, call_id, provider, directory)
    base = store.snapshot_for_call(call.call_id, call.provider)
    if base is None:
        raise NotStoredError(
            f"call {call.call_id} has no agent snapshot to replay against; re-import it with "
            "access to its assistant/agent config (API key, or the config JSON beside the file)"
        )
    snapshot = pipeline.apply_overrides(base, overrides_file=overrides_file,
                                        prompt_file=prompt_file, pairs=pairs or ())
    overrides = _override_record(base, snapshot)
    with err.status("replaying", spinner="dots") as status:
        replays = replay_call(
            store, call, snapshot, base_snapshot=base, overrides=overrides, options=options,
            on_progress=lambda message: status.update(f"replaying: {message}"),
        )
    comparisons = report_replays(store, call, replays, report or ReportOptions(),
                                 json_out=json_out)
    finish(comparisons)
    return replays


def _override_record(base: Any, snapshot: Any) -> dict[str, Any]:
    from voicereplay.snapshot import diff

    return {c.path: c.after for c in diff(base, snapshot)}


@handle_errors
def call(
    call_id: Annotated[str, typer.Argument(help="The call to replay (imported if needed).")],
    provider: ProviderOpt = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Import the call from this directory of call files.")] = None,
    mode: Annotated[str, typer.Option(help="scripted, turn or adaptive.")] = "scripted",
    model: Annotated[str | None, typer.Option(
        help="LLM: a model name for the snapshot's provider, 'local' (embedded SmolLM2), "
             "a .gguf path, or 'recorded' (the baseline's replies).")] = None,
    llm_base_url: Annotated[str | None, typer.Option(
        help="Any OpenAI-compatible Chat Completions endpoint.")] = None,
    llm_api_key: Annotated[str | None, typer.Option(help="Key for --llm-base-url.")] = None,
    prompt_file: Annotated[Path | None, typer.Option(help="Replace the system prompt.")] = None,
    temperature: Annotated[float | None, typer.Option(min=0, max=2)] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="key=value override, e.g. model.max_tokens=150 (repeatable).")] = None,
    overrides: Annotated[Path | None, typer.Option(help="YAML file of overrides.")] = None,
    mock: Annotated[list[str] | None, typer.Option(
        help="tool=result served for a tool call with no recorded result (repeatable).")] = None,
    live_tools: Annotated[bool, typer.Option(
        "--live-tools", help="Call the real tool server for tools with no recorded result.")]
    = False,
    seed: Annotated[int | None, typer.Option(help="Seed passed to every stage.")] = None,
    runs: Annotated[int, typer.Option(min=1, max=50, help="Replay N times (one batch).")] = 1,
    stt_model: Annotated[str | None, typer.Option(
        help="Path of another CTranslate2 Whisper model (e.g. Whisper base).")] = None,
    checks: ChecksOpt = None,
    similarity: SimilarityOpt = None,
    figures: FiguresOpt = "png",
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replay a real call against the (changed) agent and show what changed."""
    if mode not in ("scripted", "turn", "adaptive"):
        raise ConfigError(f"--mode {mode!r}: use scripted, turn or adaptive")
    report = ReportOptions(checks=checks, similarity=similarity, figures=figures,
                           judge_model=judge_model, judge_base_url=judge_base_url)
    report.compare_ready()
    pairs = list(set_ or [])
    if temperature is not None:
        pairs.append(f"model.temperature={temperature}")
    if seed is not None:
        pairs.append(f"model.seed={seed}")
    options = ReplayOptions(mode=mode, model=model,  # type: ignore[arg-type]
                            llm_base_url=llm_base_url, llm_api_key=llm_api_key, seed=seed,
                            runs=runs, live_tools=live_tools, tool_mocks=_mocks(mock or []),
                            stt_model=stt_model,
                            checks=[c.model_dump(mode="json", exclude_none=True,
                                                 exclude={"api_key"}) for c in report.checks])
    run_replay(call_id, provider=provider, directory=directory, prompt_file=prompt_file,
               overrides_file=overrides, pairs=pairs, options=options, report=report,
               json_out=json_out)



@replays_app.command("list")
@handle_errors
def replays_list(
    call_id: Annotated[str | None, typer.Argument(help="Only the replays of this call.")] = None,
    provider: ProviderOpt = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Replays, newest first."""
    rows = open_store().replays.list(call_id=call_id, provider=provider, limit=limit)
    if json_out:
        print_json([r.model_dump(mode="json") for r in rows])
    elif not rows:
        err.print("no replays yet; run `voicereplay call <call-id>` (or `voicereplay demo`)")
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
    store = open_store()
    replay = store.replays.get(replay_id)
    call = store.get_call(replay.call_id, replay.call_provider)
    checks = checks_of(replay)
    judged = stored_judgements(replay)
    report = ReportOptions(similarity=similarity)
    comparison = report.compare(store, call, replay, [c for c in checks
                                                      if c.type != "llm_judge"], write=False)
    for check in checks:  # the judge's verdict as stored, instead of judging again
        if check.type == "llm_judge":
            comparison.checks.append(judged.get(("llm_judge", check.label), CheckResult(
                name=check.label, type="llm_judge", status="error",
                message="no stored verdict; `voicereplay compare` judges it again")))
    if json_out:
        print_json({**replay.model_dump(mode="json"),
                    "comparison": comparison.model_dump(mode="json")})
        return
    out.print(render.replay_view(call, replay))
    out.print(comparison_view(comparison, call, replay))
