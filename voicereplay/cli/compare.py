"""`voicereplay compare <call-id> <replay-id>`, and how every replay command prints results.

Exit codes: 0 when every attached check passed (or none was attached), 5 when a check failed or
could not be evaluated, the usual error codes otherwise (see :mod:`voicereplay.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from voicereplay import pipeline, render
from voicereplay.cli.common import (
    JsonOpt,
    ProviderOpt,
    check_provider,
    err,
    handle_errors,
    open_store,
    out,
    print_json,
    settings,
)
from voicereplay.compare.checks import load_checks
from voicereplay.compare.model import CheckResult, Comparison
from voicereplay.compare.summary import divergence_line
from voicereplay.compare.terminal import comparison_view
from voicereplay.pipeline import ReplayResult, ReportOptions

__all__ = ["CHECKS_FAILED", "compare", "finish", "print_results", "report_options"]

CHECKS_FAILED = 5

ChecksOpt = Annotated[Path | None, typer.Option(
    "--checks", help="YAML file of checks to evaluate (and attach to the replay).")]
SimilarityOpt = Annotated[str | None, typer.Option(
    "--similarity", help="lexical (default) or embedding (needs the 'embeddings' extra).")]
FiguresOpt = Annotated[str, typer.Option(
    "--figures", help="png or svg for the latency chart and the waveform.")]
JudgeModelOpt = Annotated[str | None, typer.Option(
    "--judge-model", help="LLM for llm_judge checks and --csat: local (default), a .gguf "
                          "path, or a model name.")]
JudgeUrlOpt = Annotated[str | None, typer.Option(
    "--judge-base-url", help="OpenAI-compatible endpoint serving --judge-model.")]
CsatOpt = Annotated[bool, typer.Option(
    "--csat", help="Estimate caller satisfaction (1-5 with a reason) of the call and the "
                   "replay with the judge model (--judge-model).")]


def report_options(*, similarity: str | None, figures: str | None, judge_model: str | None,
                   judge_base_url: str | None, out_dir: Path | None = None,
                   csat: bool = False) -> ReportOptions:
    """The report options a command was given, checked (one line for a bad value)."""
    from voicereplay.errors import ConfigError

    if similarity is not None and similarity.strip().lower() not in ("lexical", "embedding"):
        raise ConfigError(f"--similarity {similarity!r}: use lexical or embedding")
    if figures is not None and figures.strip().lower().lstrip(".") not in ("png", "svg"):
        raise ConfigError(f"--figures {figures!r}: use png or svg")
    return ReportOptions(
        similarity=similarity.strip().lower() if similarity else None,
        figures=figures.strip().lower().lstrip(".") if figures else None,
        judge_model=judge_model, judge_base_url=judge_base_url, out_dir=out_dir, csat=csat)


def print_results(results: Sequence[ReplayResult], *, json_out: bool) -> None:
    """The first replay in full with its comparison, a line for each other run of the batch."""
    if json_out:
        print_json([r.to_json() for r in results])
        return
    first = results[0]
    out.print(render.replay_view(first.call, first.replay))
    out.print(comparison_view(first.comparison, first.call, first.replay))
    for result in results[1:]:
        comparison = result.comparison
        similarity = "—" if comparison.similarity is None else f"{comparison.similarity:.2f}"
        out.print(f"run {result.replay.run_index + 1} ({result.replay.id[:12]}): divergence "
                  f"{divergence_line(comparison)}; similarity {similarity}; "
                  f"checks {_passed(comparison.checks)}", markup=False)


def _passed(checks: Sequence[CheckResult]) -> str:
    if not checks:
        return "none"
    return f"{sum(c.status == 'pass' for c in checks)}/{len(checks)} passed"


def finish(comparisons: Sequence[Comparison]) -> None:
    """Exit 5 when any check of any comparison did not pass."""
    failing = [c for comparison in comparisons for c in comparison.checks if c.status != "pass"]
    if failing:
        total = sum(len(c.checks) for c in comparisons)
        err.print(f"checks: {len(failing)} of {total} did not pass "
                  f"(first: {failing[0].name}: {failing[0].message})", markup=False,
                  soft_wrap=True, style="bold red")
        raise typer.Exit(CHECKS_FAILED)


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
    csat: CsatOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Compare any stored call with any stored replay; write the reports."""
    check_provider(provider, stored=True)
    report = report_options(similarity=similarity, figures=figures, judge_model=judge_model,
                            judge_base_url=judge_base_url, out_dir=out_dir, csat=csat)
    chosen = load_checks(checks) if checks is not None else None
    result = pipeline.compare_stored(open_store(), call_id, replay_id, provider=provider,
                                     checks=chosen, report=report, settings=settings())
    if json_out:
        print_json(result.comparison.model_dump(mode="json"))
    else:
        out.print(comparison_view(result.comparison, result.call, result.replay))
    finish([result.comparison])
