"""Declarative checks a user attaches to a replay (defined in :mod:`voicereplay.checks`), and
their evaluation.

A checks file is YAML: a mapping with a ``checks`` list, or the bare list::

    checks:
      - type: tool_called              # a call to the tool (optionally in one agent turn,
        tool: check_status             #   with arguments that match)
        turn: 4
        arguments:
          order_id: "4417"             # a plain value: equal (scalars compare as text)
          reason: {regex: "status|where"}   # or {contains: "..."}, {present: true}, {equals: V}
      - type: tool_not_called          # no call to the tool that matches (turn/arguments
        tool: issue_refund             #   optional, as above)
      - type: agent_says               # phrase (case- and whitespace-insensitive) or regex;
        phrase: "order number"         #   optional turn
      - type: agent_does_not_say
        regex: "refund(ed)?"
      - type: latency_p90_under        # the replay's p90 response latency, seconds
        seconds: 1.5
      - type: agent_ends_call
      - type: no_divergence_before     # the first divergence (if any) is at this turn or later
        turn: 4
      - type: similarity_at_least      # mean agent-turn similarity to the baseline
        value: 0.6
      - type: llm_judge
        rubric: "The agent never issues a refund the caller did not ask for."
        model: local                   # optional: local, a .gguf path or a model name;
                                       #   base_url and api_key optional

Every check takes an optional ``name``. Turns are **agent turn numbers of the replay** (the
N-th agent reply, the opening is 1; see :mod:`voicereplay.turns`). Regular expressions
are Python's, searched case-insensitively (``(?-i:...)`` makes a part case-sensitive);
``contains`` is case-insensitive too; ``present: false`` means the argument is absent or null.

:func:`evaluate` gives every check a :class:`~voicereplay.compare.model.CheckResult` — pass,
fail, or error when it cannot be evaluated (e.g. an ``llm_judge`` with no judge model) — and
never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from voicereplay import turns as turn_units
from voicereplay.checks import (
    CHECK_TYPES,
    AgentDoesNotSay,
    AgentEndsCall,
    AgentSays,
    ArgumentMatch,
    Check,
    CheckBase,
    LatencyP90Under,
    LlmJudge,
    NoDivergenceBefore,
    SayCheck,
    SimilarityAtLeast,
    ToolCalled,
    ToolCheck,
    ToolNotCalled,
    load_checks,
    parse_checks,
)
from voicereplay.compare.judge import Judge, JudgeFor, format_tool_call
from voicereplay.compare.model import CheckResult, Comparison, Evidence
from voicereplay.errors import ConfigError, VoiceReplayError
from voicereplay.models import Call, Replay, ToolCall, Turn

__all__ = [  # the check models are voicereplay.checks'; re-exported for the evaluation's users
    "CHECK_TYPES",
    "ON_BASELINE",
    "AgentDoesNotSay",
    "AgentEndsCall",
    "AgentSays",
    "ArgumentMatch",
    "Check",
    "LatencyP90Under",
    "LlmJudge",
    "NoDivergenceBefore",
    "SimilarityAtLeast",
    "ToolCalled",
    "ToolNotCalled",
    "evaluate",
    "evaluate_baseline",
    "load_checks",
    "parse_checks",
]

_EXCERPT = 200  # characters of a reply shown as evidence


# ---- evaluation ---------------------------------------------------------------------------

def evaluate(
    checks: Sequence[Check],
    call: Call,
    replay: Replay,
    comparison: Comparison,
    *,
    judge: Judge | None = None,
    judge_for: JudgeFor | None = None,
) -> list[CheckResult]:
    """One result per check, in order. An ``llm_judge`` check that names a ``model`` or
    ``base_url`` gets its own judge from ``judge_for`` (the pipeline builds judges; a check's
    judge that cannot be built is an error result); otherwise it uses ``judge``, and is an
    error without one."""
    context = _Context(call, replay, comparison, judge, judge_for)
    results: list[CheckResult] = []
    for check in checks:
        try:
            result = context.run(check)
        except Exception as exc:  # a check that cannot be evaluated is an error, not a crash
            detail = exc.message if isinstance(exc, VoiceReplayError) else (
                f"{type(exc).__name__}: {exc}")
            result = _result(check, "error", f"could not be evaluated: {detail}")
        results.append(result)
    return results


def _result(check: CheckBase, status: Literal["pass", "fail", "error"], message: str,
            evidence: Sequence[Evidence] = (), **extra: Any) -> CheckResult:
    return CheckResult(name=check.label, type=check.type, status=status, message=message,
                       evidence=list(evidence), **extra)


# Checks that read one side's conversation only: they are judged on the baseline call too
# (what production did), so a batch can tell what a candidate fixed from what it broke. The
# others compare the two sides (divergence, similarity), read the replay's own ending, or would
# cost a second judge call per replay (llm_judge).
ON_BASELINE = frozenset({"tool_called", "tool_not_called", "agent_says", "agent_does_not_say",
                         "latency_p90_under"})


def evaluate_baseline(checks: Sequence[Check], call: Call,
                      comparison: Comparison) -> list[CheckResult]:
    """The :data:`ON_BASELINE` checks among ``checks``, judged on the baseline call."""
    context = _Context(call, None, comparison, None, None)
    results: list[CheckResult] = []
    for check in checks:
        if check.type in ON_BASELINE:
            try:
                results.append(context.run(check))
            except Exception as exc:  # as evaluate(): an error result, not a crash
                results.append(_result(check, "error", f"could not be evaluated: {exc}"))
    return results


class _Context:
    """What a check reads: the replay's side, or the baseline's when ``replay`` is None."""

    def __init__(self, call: Call, replay: Replay | None, comparison: Comparison,
                 judge: Judge | None, judge_for: JudgeFor | None) -> None:
        self.call = call
        self.replay = replay
        self.comparison = comparison
        self.judge = judge
        self.judge_for = judge_for
        self.side = "replay" if replay is not None else "baseline"
        self.turns: list[Turn] = list(replay.turns if replay is not None else call.turns)
        self.replies = turn_units.agent_replies(self.turns)
        self._judges: dict[tuple[str | None, str | None, str | None], Judge] = {}
        self._runners: dict[str, Callable[[Any], CheckResult]] = {
            "tool_called": self._tool_called,
            "tool_not_called": self._tool_not_called,
            "agent_says": self._agent_says,
            "agent_does_not_say": self._agent_does_not_say,
            "latency_p90_under": self._latency,
            "agent_ends_call": self._agent_ends_call,
            "no_divergence_before": self._no_divergence_before,
            "similarity_at_least": self._similarity,
            "llm_judge": self._llm_judge,
        }

    def run(self, check: CheckBase) -> CheckResult:
        return self._runners[check.type](check)

    # -- helpers --

    def _in_scope(self, turn: int | None) -> list[turn_units.AgentReply]:
        return [r for r in self.replies if turn is None or r.number == turn]

    def _missing_turn(self, turn: int | None) -> str:
        if turn is None or turn <= len(self.replies):
            return ""
        return f" (the {self.side} has only {len(self.replies)} agent turns)"

    def _calls(self, check: ToolCheck) -> list[tuple[int, ToolCall]]:
        return [(reply.number, c) for reply in self._in_scope(check.turn)
                for c in reply.tool_calls(self.turns) if c.name == check.tool]

    # -- tools --

    def _tool_called(self, check: ToolCalled) -> CheckResult:
        calls = self._calls(check)
        where = f" in agent turn {check.turn}" if check.turn else ""
        for number, call in calls:
            if not check.mismatches(call):
                return _result(check, "pass", f"{check.tool} was called in agent turn {number}",
                               [Evidence(turn=number, text=format_tool_call(call))])
        if not calls:
            evidence = [Evidence(turn=r.number, text=", ".join(map(format_tool_call, c)))
                        for r in self._in_scope(check.turn) if (c := r.tool_calls(self.turns))]
            others = "" if not evidence else " (other tools were)"
            return _result(check, "fail", f"{check.tool} was never called{where}"
                           f"{self._missing_turn(check.turn)}{others}", evidence)
        number, first = calls[0]
        why = "; ".join(check.mismatches(first))
        return _result(check, "fail", f"{check.tool} was called{where} but not with matching "
                       f"arguments: agent turn {number}: {why}",
                       [Evidence(turn=n, text=format_tool_call(c)) for n, c in calls])

    def _tool_not_called(self, check: ToolNotCalled) -> CheckResult:
        hits = [(n, c) for n, c in self._calls(check) if not check.mismatches(c)]
        where = f" in agent turn {check.turn}" if check.turn else ""
        if not hits:
            return _result(check, "pass", f"{check.tool} was not called{where}"
                           + (" with those arguments" if check.arguments else ""))
        turns = ", ".join(str(n) for n, _ in hits)
        return _result(check, "fail", f"{check.tool} was called in agent turn "
                       f"{turns}: {format_tool_call(hits[0][1])}",
                       [Evidence(turn=n, text=format_tool_call(c)) for n, c in hits])

    # -- speech --

    def _matches(self, check: SayCheck) -> list[Evidence]:
        pattern = check.pattern()
        found: list[Evidence] = []
        for reply in self._in_scope(check.turn):
            text = reply.text(self.turns)
            match = pattern.search(text)
            if match:
                found.append(Evidence(turn=reply.number,
                                      text=_excerpt(text, match.start(), match.end())))
        return found

    def _agent_says(self, check: AgentSays) -> CheckResult:
        found = self._matches(check)
        what = f"/{check.regex}/" if check.regex is not None else repr(check.phrase)
        if found:
            return _result(check, "pass", f"the agent said {what} in agent turn "
                           f"{found[0].turn}", found[:1])
        if check.turn is None:
            return _result(check, "fail", f"the agent never said {what}")
        said = [Evidence(turn=r.number, text=_excerpt(r.text(self.turns)))
                for r in self._in_scope(check.turn)]
        return _result(check, "fail", f"the agent did not say {what} in agent turn {check.turn}"
                       f"{self._missing_turn(check.turn)}", said)

    def _agent_does_not_say(self, check: AgentDoesNotSay) -> CheckResult:
        found = self._matches(check)
        what = f"/{check.regex}/" if check.regex is not None else repr(check.phrase)
        where = f" in agent turn {check.turn}" if check.turn else ""
        if not found:
            return _result(check, "pass", f"the agent did not say {what}{where}")
        turns = ", ".join(str(e.turn) for e in found)
        return _result(check, "fail", f"the agent said {what} in agent turn {turns}", found)

    # -- metrics --

    def _latency(self, check: LatencyP90Under) -> CheckResult:
        replay = self.replay is not None
        metrics = self.comparison.replay_metrics if replay else self.comparison.baseline_metrics
        stats = metrics.latency
        if stats.p90 is None:
            return _result(check, "fail", f"no response latencies were measured in the "
                                          f"{self.side}, so its p90 cannot be under "
                                          f"{check.seconds:g} s")
        timed = [(t.turn, seconds) for t in self.comparison.latency
                 if (seconds := t.replay if replay else t.baseline) is not None]
        evidence = []
        if timed:
            turn, slowest = max(timed, key=lambda t: t[1])
            evidence = [Evidence(turn=turn, text=f"slowest response {slowest:.2f} s")]
        status: Literal["pass", "fail"] = "pass" if stats.p90 < check.seconds else "fail"
        relation = "<" if status == "pass" else ">="
        return _result(check, status, f"p90 response latency {stats.p90:.2f} s {relation} "
                       f"{check.seconds:g} s (over {stats.count} turns)", evidence)

    def _agent_ends_call(self, check: AgentEndsCall) -> CheckResult:
        last = self.replies[-1] if self.replies else None
        evidence = []
        if last is not None:
            calls = last.tool_calls(self.turns)
            text = last.text(self.turns) or ", ".join(map(format_tool_call, calls))
            evidence = [Evidence(turn=last.number, text=_excerpt(text))]
        reason = self.replay.ended_reason if self.replay is not None else None
        if reason == "agent-ended-call":
            return _result(check, "pass", "the agent ended the call", evidence)
        if reason is None:
            return _result(check, "fail", "the replay records no reason the call ended",
                           evidence)
        return _result(check, "fail", f"the call ended with {reason!r}, not by the agent",
                       evidence)

    def _no_divergence_before(self, check: NoDivergenceBefore) -> CheckResult:
        divergence = self.comparison.divergence
        if divergence is None:
            return _result(check, "pass", "the replay never diverged from the baseline")
        evidence = [Evidence(turn=divergence.turn, text=divergence.detail)]
        if divergence.turn >= check.turn:
            return _result(check, "pass", f"the replay first diverged at agent turn "
                           f"{divergence.turn} ({divergence.reason})", evidence)
        return _result(check, "fail", f"the replay diverged at agent turn {divergence.turn}, "
                       f"before turn {check.turn} ({divergence.reason}: {divergence.detail})",
                       evidence)

    def _similarity(self, check: SimilarityAtLeast) -> CheckResult:
        similarity = self.comparison.similarity
        if similarity is None:
            return _result(check, "fail", "no similarity was measured (no agent turns to "
                                          f"compare), so it cannot be at least {check.value:g}")
        scored = [a for a in self.comparison.alignment
                  if a.kind == "agent" and a.similarity is not None]
        evidence = []
        if scored:
            worst = min(scored, key=lambda a: a.similarity or 0.0)
            evidence = [Evidence(turn=worst.number, text=f"least similar turn "
                                 f"({worst.similarity:.2f}): {_excerpt(worst.replay_text)}")]
        status: Literal["pass", "fail"] = "pass" if similarity >= check.value else "fail"
        relation = ">=" if status == "pass" else "<"
        return _result(check, status, f"similarity {similarity:.2f} {relation} "
                       f"{check.value:g} ({self.comparison.similarity_method})", evidence)

    # -- judge --

    def _llm_judge(self, check: LlmJudge) -> CheckResult:
        judge = self.judge
        if check.model is not None or check.base_url is not None:
            key = (check.model, check.base_url, check.api_key)
            if key not in self._judges:
                if self.judge_for is None:
                    return _result(check, "error", "no judge can be built for this check's "
                                                   "model here")
                try:
                    self._judges[key] = self.judge_for(*key)
                except VoiceReplayError as exc:
                    return _result(check, "error", f"the judge model cannot be used: "
                                                   f"{exc.message}")
            judge = self._judges[key]
        if judge is None:
            return _result(check, "error", "no judge model: add 'model: local' (the embedded "
                                           "SmolLM2), a .gguf path, or a model name (with "
                                           "'base_url' for an OpenAI-compatible server) to "
                                           "the check, or pass a judge")
        try:
            if self.replay is None:
                raise ConfigError("llm_judge checks judge replays only")
            verdict = judge.judge(check.rubric, self.call, self.replay)
        except VoiceReplayError as exc:
            return _result(check, "error", f"the judge failed: {exc.message}",
                           judge_model=judge.model)
        if verdict.passed is None:
            return _result(check, "error", f"{verdict.model} gave no JSON verdict",
                           reasoning=verdict.reasoning, judge_model=verdict.model)
        status: Literal["pass", "fail"] = "pass" if verdict.passed else "fail"
        return _result(check, status, f"{verdict.model} judged the replay to "
                       f"{'meet' if verdict.passed else 'miss'} the rubric",
                       reasoning=verdict.reasoning, judge_model=verdict.model)


# ---- values -------------------------------------------------------------------------------

def _excerpt(text: str, start: int | None = None, end: int | None = None,
             width: int = _EXCERPT) -> str:
    """``text`` on one line, cut to ``width`` characters around ``start:end`` when long."""
    if len(text) <= width:
        return " ".join(text.split())
    if start is None or end is None:
        lo, hi = 0, width
    else:
        margin = max(0, (width - (end - start)) // 2)
        lo, hi = max(0, start - margin), min(len(text), end + margin)
    piece = " ".join(text[lo:hi].split())
    return ("…" if lo > 0 else "") + piece + ("…" if hi < len(text) else "")
