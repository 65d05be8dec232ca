"""`voicereplay compare <call-id> <replay-id>`, and the comparison every replay command prints.

Exit codes: 0 when every attached check passed (or none was attached), 5 when a check failed or
could not be evaluated, the usual error codes otherwise (see :mod:`voicereplay.errors`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from voicereplay import render
from voicereplay.cli.common import (
    JsonOpt,
    ProviderOpt,
    err,
    handle_errors,
    open_store,
    out,
    print_json,
)
from voicereplay.compare.checks import Check, load_checks, parse_checks
from voicereplay.compare.comparison import recordings_dir
from voicereplay.compare.model import CheckResult, Comparison
from voicereplay.compare.summary import divergence_line
from voicereplay.compare.terminal import comparison_view
from voicereplay.models import Call, Replay
from voicereplay.pipeline.comparing import compare_replay
from voicereplay.store import Store

__all__ = ["CHECKS_FAILED", "ReportOptions", "checks_of", "compare", "finish", "report_replays"]

CHECKS_FAILED = 5

ChecksOpt = Annotated[Path | None, typer.Option(
    "--checks", help="YAML file of checks to evaluate (and attach to the replay).")]
SimilarityOpt = Annotated[str | None, typer.Option(
    "--similarity", help="lexical (default) or embedding (needs the 'embeddings' extra).")]
FiguresOpt = Annotated[str, typer.Option(
    "--figures", help="png or svg for the latency chart and the waveform.")]
JudgeModelOpt = Annotated[str | None, typer.Option(
    "--judge-model", help="LLM for llm_judge checks: local (default), a .gguf path, or a model "
                          "name.")]
JudgeUrlOpt = Annotated[str | None, typer.Option(
    "--judge-base-url", help="OpenAI-compatible endpoint serving --judge-model.")]


class ReportOptions:
    """How replays are compared and reported (the options `call` and `compare` share)."""

    def __init__(self, *, checks: Path | None = None, similarity: str | None = None,
                 figures: str = "png", judge_model: str | None = None,
                 judge_base_url: str | None = None, out_dir: Path | None = None) -> None:
        self.checks: list[Check] = load_checks(checks) if checks is not None else []
        self.similarity = similarity
        self.figures = figures
        self.judge_model = judge_model
        self.judge_base_url = judge_base_url
        self.out_dir = out_dir

    def compare_ready(self) -> None:
        """Fail now, before a long replay, on a similarity the comparison could not use."""
        from voicereplay.compare.similarity import scorer

        scorer(self.similarity)

    def compare(self, store: Store, call: Call, replay: Replay,
                checks: Sequence[Check] | None = None, write: bool = True,
                batch: Sequence[Replay] | None = None) -> Comparison:
        return compare_replay(
            store, call, replay, batch=batch, checks=self.checks if checks is None else checks,
            similarity=self.similarity, figures=self.figures if write else None,
            out_dir=self.out_dir, judge_model=self.judge_model,
            judge_base_url=self.judge_base_url)


def checks_of(replay: Replay) -> list[Check]:
    """The checks attached to a stored replay."""
    return parse_checks(replay.checks, f"replay {replay.id[:12]}") if replay.checks else []


def report_replays(store: Store, call: Call, replays: Sequence[Replay], options: ReportOptions,
                   *, json_out: bool) -> list[Comparison]:
    """Compare every replay, write its reports, and print: the first replay in full, a line
    for each other run of the batch."""
    comparisons = []
    for n, replay in enumerate(replays):
        if len(replays) > 1:
            err.print(f"comparing run {n + 1} of {len(replays)}")
        comparisons.append(options.compare(store, call, replay, checks_of(replay),
                                           batch=replays))
    if json_out:
        print_json([{**r.model_dump(mode="json"), "comparison": c.model_dump(mode="json")}
                    for r, c in zip(replays, comparisons, strict=True)])
        return comparisons
    out.print(render.replay_view(call, replays[0]))
    out.print(comparison_view(comparisons[0], call, replays[0]))
    for replay, comparison in zip(replays[1:], comparisons[1:], strict=True):
        similarity = "—" if comparison.similarity is None else f"{comparison.similarity:.2f}"
        out.print(f"run {replay.run_index + 1} ({replay.id[:12]}): divergence "
                  f"{divergence_line(comparison)}; similarity {similarity}; "
                  f"checks {_passed(comparison.checks)}")
    return comparisons


def _passed(checks: Sequence[CheckResult]) -> str:
    if not checks:
        return "none"
    return f"{sum(c.status == 'pass' for c in checks)}/{len(checks)} passed"


def finish(comparisons: Sequence[Comparison]) -> None:
    """Exit 5 when any check of any comparison did not pass."""
    failing = [c for comparison in comparisons for c in comparison.checks if c.status != "pass"]
    if failing:
        total = sum(len(c.checks) for c in comparisons)
        err.print(f"[bold red]checks:[/] {len(failing)} of {total} did not pass "
                  f"(first: {failing[0].name}: {failing[0].message})", soft_wrap=True)
        raise typer.Exit(CHECKS_FAILED)


def stored_judgements(replay: Replay) -> dict[tuple[str, str], CheckResult]:
    """llm_judge results in the replay's report.json, so showing a replay does not re-judge."""
    folder = recordings_dir(replay)
    path = folder / "report.json" if folder else None
    if path is None or not path.exists():
        return {}
    try:
        stored: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        results = [CheckResult.model_validate(c) for c in stored.get("checks", [])]
    except (OSError, ValueError):
        return {}
    return {(c.type, c.name): c for c in results if c.type == "llm_judge"}


@handle_errors
def compare(
    call_id: Annotated[str, typer.Argument(help="The baseline call.")],
    replay_id: Annotated[str, typer.Argument(help="Replay id (or a prefix of 6+ characters).")],
    provider: ProviderOpt = None,
    checks: Annotated[Path | None, typer.Option(
        "--checks", help="YAML file of checks to evaluate (default: the checks attached to "
                         "the replay).")] = None,
    similarity: SimilarityOpt = None,
    figures: FiguresOpt = "png",
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Write the reports here (default: beside the replay's audio).")] = None,
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare any stored call with any stored replay; write the reports."""
    options = ReportOptions(checks=checks, similarity=similarity, figures=figures,
                            judge_model=judge_model, judge_base_url=judge_base_url,
                            out_dir=out_dir)
    store = open_store()
    call = store.get_call(call_id, provider)
    replay = store.replays.get(replay_id)
    if (replay.call_provider, replay.call_id) != (call.provider, call.call_id):
        err.print(f"[yellow]note:[/] replay {replay.id[:12]} replays call "
                  f"{replay.call_provider}:{replay.call_id}, not {call.key}")
    chosen = options.checks if checks is not None else checks_of(replay)
    comparison = options.compare(store, call, replay, chosen)
    if json_out:
        print_json(comparison.model_dump(mode="json"))
    else:
        out.print(comparison_view(comparison, call, replay))
    finish([comparison])
