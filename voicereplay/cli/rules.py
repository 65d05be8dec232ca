"""`voicereplay rules test|check`: validate a flag-rules file; see which rules a stored call
matches and why (the file format is documented in :mod:`voicereplay.pipeline.rules`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from voicereplay.cli.common import (
    JsonOpt,
    ProviderOpt,
    check_provider,
    handle_errors,
    open_store,
    out,
    print_json,
    settings,
)
from voicereplay.errors import ConfigError
from voicereplay.pipeline.rules import RuleSet, load_configured_rules, load_rules, rules_path

rules_app = typer.Typer(no_args_is_help=True,
                        help="Flag rules: which calls trigger a replay (rules.yaml).")


@rules_app.command("test")
@handle_errors
def rules_test(
    rules_file: Annotated[Path, typer.Argument(help="The rules file to validate.")],
    json_out: JsonOpt = False,
) -> None:
    """Validate a rules file and summarize each rule: conditions, replay, notifications."""
    ruleset = load_rules(rules_file)
    summaries = [{"name": r.name, "when": r.when.summary(), "replay": r.replay.summary(),
                  "notify": r.notify_summary()} for r in ruleset.rules]
    if json_out:
        print_json({"file": str(rules_file), "valid": True, "rules": summaries})
        return
    out.print(Text(f"{rules_file}: valid, {len(summaries)} rule(s)"))
    for summary in summaries:
        out.print(Text(summary["name"], style="bold"))
        for key in ("when", "replay", "notify"):
            out.print(Text.assemble((f"  {key:<7}", "dim"), summary[key]))


@rules_app.command("check")
@handle_errors
def rules_check(
    call_id: Annotated[str, typer.Argument(help="A stored call id (or provider:id).")],
    provider: ProviderOpt = None,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="The rules file (default: $VOICEREPLAY_HOME/rules.yaml).")] = None,
    flagged: Annotated[bool, typer.Option(
        "--flagged", help="Evaluate as if the call were flagged by hand (a call flagged "
                          "with the Flag button or the API is).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show which rules a stored call matches, condition by condition."""
    check_provider(provider, stored=True)
    ruleset = _configured(rules)
    store = open_store()
    call = store.get_call(call_id, provider)
    flagged = flagged or store.events.find(call.provider, call.call_id, "flag") is not None
    matches = ruleset.evaluate(call, flagged=flagged)
    if json_out:
        print_json({"call_id": call.call_id, "provider": call.provider, "flagged": flagged,
                    "rules_file": str(rules_path(settings(), rules)),
                    "matched": [m.rule.name for m in matches if m.matched],
                    "rules": [m.to_json() for m in matches]})
        return
    hits = sum(m.matched for m in matches)
    out.print(Text(f"{call.provider}:{call.call_id} matches {hits} of {len(matches)} rule(s)"))
    for match in matches:
        verdict = ("matched", "bold green") if match.matched else ("not matched", "yellow")
        out.print(Text.assemble((match.rule.name, "bold"), "  ", verdict))
        for condition in match.conditions:
            mark = ("✓", "green") if condition.held else ("✗", "red")
            out.print(Text.assemble("  ", mark, " ", condition.reason))


def _configured(explicit: Path | None) -> RuleSet:
    ruleset = load_configured_rules(settings(), explicit)
    if ruleset is None:
        raise ConfigError(f"no rules file: {rules_path(settings())} does not exist; write one "
                          "(see the README's Flag rules section) or pass --rules FILE")
    return ruleset
