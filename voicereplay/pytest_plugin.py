"""The pytest plugin: a plain ``pytest`` runs ``*.voicereplay.yaml`` scenarios as tests.

Installed with voicereplay (entry point ``pytest11``), it collects every scenario file pytest
walks past (``pytest scenarios/``, or a ``testpaths`` that includes them): one test item per
scenario, replayed and compared like ``voicereplay test`` does (:func:`~voicereplay.pipeline.
suites.run_one`), in the store of the settings (``VOICEREPLAY_HOME``, …).

A failure shows, without a Python traceback: the scenario file and the line of each failing
check, the check and its message, the agent turn that decided it with the baseline's reply and
the replay's (text and tool calls), and the report files. ``item.user_properties`` carry the
replay ids and report paths, so ``pytest --junitxml`` has them as ``<properties>``.

Options (pytest's command line, group "voicereplay"): ``--vr-agent FILE`` (the agent under test
for every scenario), ``--vr-runs N`` and ``--vr-pass-rate R``, and the stages
``--vr-model``, ``--vr-llm-base-url``, ``--vr-llm``, ``--vr-stt``, ``--vr-tts``,
``--vr-caller-tts``. ``-p no:voicereplay`` turns the plugin off.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from voicereplay.scenario import SUFFIX

__all__ = ["ScenarioFailure", "ScenarioFile", "ScenarioItem"]

_STAGES = ("model", "llm_base_url", "llm", "stt", "tts", "caller_tts")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("voicereplay", "voicereplay scenarios (*.voicereplay.yaml)")
    group.addoption("--vr-agent", type=Path, default=None,
                    help="agent file: the agent under test for every scenario")
    group.addoption("--vr-runs", type=int, default=None, help="replays per scenario")
    group.addoption("--vr-pass-rate", type=float, default=1.0,
                    help="share of runs whose checks must pass (with --vr-runs)")
    for stage in _STAGES:
        group.addoption(f"--vr-{stage.replace('_', '-')}", dest=f"vr_{stage}", default=None,
                        help=f"the replay's {stage.replace('_', ' ')} (default: voicereplay's)")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """One scenario file: one item (a file that does not load is a collection error that
    names the file, the line and the field)."""

    def collect(self) -> Iterator[ScenarioItem]:
        from voicereplay.scenario import load_scenario

        scenario = load_scenario(self.path)
        yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)


class ScenarioFailure(Exception):
    """The scenario's checks did not pass (or it could not be replayed)."""

    def __init__(self, outcome: Any, details: str) -> None:
        super().__init__(details)
        self.outcome = outcome
        self.details = details


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        from voicereplay.config import Settings
        from voicereplay.pipeline.suites import SuiteOptions, run_one
        from voicereplay.registry import load_plugins
        from voicereplay.scenario import load_agent_file
        from voicereplay.store import Store

        config = self.config
        settings = Settings.from_env()
        load_plugins(settings.plugins)
        agent_file = config.getoption("vr_agent")
        stages = {stage: config.getoption(f"vr_{stage}") for stage in _STAGES}
        options = SuiteOptions(
            agent=load_agent_file(agent_file) if agent_file else None,
            runs=config.getoption("vr_runs"), pass_rate=config.getoption("vr_pass_rate"),
            stages={k: v for k, v in stages.items() if v is not None})
        with Store.from_settings(settings) as store:
            outcome = run_one(store, self.scenario, options, settings)
            for replay_id in outcome.replay_ids:
                self.user_properties.append(("voicereplay_replay", replay_id))
            for files in outcome.reports:
                for name, path in sorted(files.items()):
                    self.user_properties.append((f"voicereplay_report_{name}", path))
            if outcome.verdict != "pass":
                raise ScenarioFailure(outcome, _explain(store, self.scenario, outcome))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return excinfo.value.details
        from voicereplay.errors import VoiceReplayError

        if isinstance(excinfo.value, VoiceReplayError):
            return f"{self.path}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        lines = getattr(self.scenario, "check_lines", None) or [1]
        return self.path, lines[0] - 1, f"scenario {self.name}"


def _explain(store: Any, scenario: Any, outcome: Any) -> str:
    """The failure as a person reads it (see the module docs)."""
    head = (f"{outcome.path}: scenario {outcome.name} "
            + (f"could not be replayed: {outcome.error}" if outcome.verdict == "error" else
               f"failed ({outcome.passed_runs} of {outcome.runs} run(s) passed)"))
    lines = [head]
    baseline = _agent_replies(scenario.call().turns)
    replayed = _replay_replies(store, outcome.replay_ids[0]) if outcome.replay_ids else {}
    for check in outcome.failing:
        lines.append(f"  {check.location}: {check.name} ({check.type}) — {check.message}")
        for evidence in check.evidence[:3]:
            turn = evidence.turn
            lines.append(f"    agent turn {turn}: {evidence.text}" if turn is not None
                         else f"    {evidence.text}")
            if turn is not None:
                lines.append(f"      baseline: {baseline.get(turn, '(no such turn)')}")
                lines.append(f"      replay:   {replayed.get(turn, '(no such turn)')}")
    if outcome.divergence:
        lines.append(f"  divergence: {outcome.divergence}")
    for files in outcome.reports[:1]:
        lines += [f"  report ({name}): {files[name]}" for name in ("markdown", "json")
                  if name in files]
    return "\n".join(lines)


def _agent_replies(turns: Any) -> dict[int, str]:
    from voicereplay.turns import agent_replies

    found = {}
    for reply in agent_replies(turns):
        tools = ", ".join(f"→ {c.name}({_args(c.arguments)})" for c in reply.tool_calls(turns))
        found[reply.number] = " ".join(p for p in (reply.text(turns), tools) if p) or "(silent)"
    return found


def _replay_replies(store: Any, replay_id: str) -> dict[int, str]:
    from voicereplay.errors import VoiceReplayError

    try:
        return _agent_replies(store.replays.get(replay_id).turns)
    except VoiceReplayError:
        return {}


def _args(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())
