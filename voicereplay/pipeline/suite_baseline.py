"""``voicereplay test --baseline previous.json``: this run against an earlier run of the suite.

Scenarios are matched by name (the JSON ``--json`` wrote, schema ``voicereplay.test/1``):

- **regressed**: passed before, does not pass now (fail or error);
- **improved**: did not pass before, passes now;
- **missing**: in the earlier run, not in this one — a missing scenario is not a passing one;
- **new**: only in this run (its own verdict counts as usual);
- everything else is **unchanged** (passing or still failing).

With a baseline, the run fails (exit 1) on regressions, missing scenarios and new scenarios
that do not pass — not on scenarios that were already failing — so CI can gate on "nothing got
worse".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicereplay.errors import ConfigError
from voicereplay.pipeline.suite_reports import JSON_SCHEMA
from voicereplay.pipeline.suites import ScenarioOutcome

__all__ = ["BaselineDiff", "compare_with", "read_baseline"]


@dataclass
class BaselineDiff:
    regressed: list[str] = field(default_factory=list)
    improved: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    new_failing: list[str] = field(default_factory=list)
    new_passing: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def worse(self) -> bool:
        """Did anything get worse (what fails a run with a baseline)?"""
        return bool(self.regressed or self.missing or self.new_failing)

    def to_json(self) -> dict[str, Any]:
        return {"regressed": self.regressed, "improved": self.improved,
                "missing": self.missing, "new_failing": self.new_failing,
                "new_passing": self.new_passing, "unchanged": self.unchanged,
                "worse": self.worse}


def read_baseline(path: Path) -> dict[str, str]:
    """Scenario name → verdict of an earlier run's JSON (one clear error for a bad file)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the baseline {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"the baseline {path} is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != JSON_SCHEMA:
        raise ConfigError(f"the baseline {path} is not a `voicereplay test --json` file "
                          f"(schema {JSON_SCHEMA})")
    verdicts: dict[str, str] = {}
    for entry in data.get("scenarios") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or entry.get("verdict") not in ("pass", "fail", "error"):
            raise ConfigError(f"the baseline {path} has a scenario without a name and a "
                              "verdict")
        verdicts[entry["name"]] = entry["verdict"]
    return verdicts


def compare_with(before: dict[str, str], outcomes: Sequence[ScenarioOutcome]) -> BaselineDiff:
    """This run's outcomes against an earlier run's verdicts (see the module docs)."""
    diff = BaselineDiff()
    now = {o.name: o.verdict for o in outcomes}
    for name, verdict in now.items():
        earlier = before.get(name)
        if earlier is None:
            (diff.new_passing if verdict == "pass" else diff.new_failing).append(name)
        elif earlier == "pass" and verdict != "pass":
            diff.regressed.append(name)
        elif earlier != "pass" and verdict == "pass":
            diff.improved.append(name)
        else:
            diff.unchanged.append(name)
    diff.missing = sorted(set(before) - set(now))
    return diff
