"""Adaptive mode: scripted until the agent departs from the baseline, then an LLM caller.

The replay runs as scripted mode (the caller's original turns, transcribed by the STT, answered by
the agent) until the **divergence turn**: the first agent reply that departs from the baseline's
reply to the same caller turn, by the same rule the comparison uses
(:func:`voicereplay.compare.divergence.departure`): a different sequence of tool-call names (or a
tool call against none), a different intent (a question against a statement, …), or words too
different (lexical similarity under ``threshold``, default :data:`DEFAULT_THRESHOLD`). Only replies
to caller turns are compared (not the opening). From there a simulated caller carries the call on: a
second :class:`~voicereplay.simulate.stages.LanguageModel` (the engine's ``caller_llm``, else its
``llm``) prompted with the caller's goal and persona from the baseline (:func:`caller_prompt`: the
analysis summary if any, and everything the real caller said). Its lines (origin ``"caller-llm"``)
are synthesized with the caller TTS and transcribed by the STT like any caller audio, so the agent
hears them through its transcriber.

The call ends when the agent ends it (``agent-ended-call``), the simulated caller says goodbye
(``caller-goodbye``, after the agent's answer to it), the caller has spoken twice as many turns as
in the baseline (``caller-turn-cap``), the caller has nothing to say (``caller-done``), or at the
snapshot's max duration (``max-duration``). Where the agent diverged is in
:attr:`~voicereplay.models.Replay.divergence` (``None`` if it never did: then the replay is a
scripted one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicereplay.compare.divergence import departure as reply_departure
from voicereplay.errors import SimulationError
from voicereplay.models import Call, RecordingKind, Replay
from voicereplay.simulate.caller import CallerSegment
from voicereplay.simulate.conversation import Conversation, Step
from voicereplay.simulate.plan import (
    Heard,
    Said,
    agent_lead_in,
    caller_label,
    endpointing_delay,
    guard,
    lay_out,
    wait,
    worker,
)
from voicereplay.simulate.stages import ChatRequest, LanguageModel
from voicereplay.simulate.timeline import Timeline
from voicereplay.simulate.tools import ToolServer
from voicereplay.snapshot import AgentSnapshot

if TYPE_CHECKING:
    from voicereplay.simulate.replay import ReplayEngine

__all__ = ["DEFAULT_THRESHOLD", "caller_prompt", "departure", "run_adaptive", "says_goodbye"]

DEFAULT_THRESHOLD = 0.5
CALLER_MAX_TOKENS = 80
_GOODBYE = re.compile(r"\b(good[\s-]?bye|bye)\b", re.IGNORECASE)


def caller_prompt(call: Call) -> str:
    """The simulated caller's system prompt: goal and persona from the baseline."""
    lines = [t.text.strip() for t in call.turns if t.role == "user" and t.text.strip()]
    summary = (call.analysis.summary or "").strip()
    goal = summary or "what you wanted in the original call, as your lines below show"
    said = "\n".join(f"- {line}" for line in lines) or "- (nothing was transcribed)"
    return ("You are the caller in this phone call. "
            f"Your goal: {goal}\n"
            f"In the original call you said, in order:\n{said}\n"
            "Speak as that caller, with the same goal and manner. Stay in character, reply in "
            "one or two short sentences, say goodbye when your goal is met or the agent cannot "
            "help.")


def says_goodbye(text: str) -> bool:
    return bool(_GOODBYE.search(text))


def departure(call: Call, after: int, steps: list[Step],
              threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any] | None:
    """How ``steps`` (the reply to baseline turn ``after``) depart from the baseline's reply."""
    expected_tools: list[str] = []
    expected_text: list[str] = []
    for turn in call.turns[after + 1:]:
        if turn.role == "user":
            break
        if turn.role == "agent":
            expected_text.append(turn.text)
        expected_tools.extend(c.name for c in turn.tool_calls)
    got_tools = [s.tool_call.name for s in steps if s.tool_call is not None]
    got_text = " ".join(s.text for s in steps if s.kind == "say")
    expected = " ".join(expected_text)
    found = reply_departure(expected, expected_tools, got_text, got_tools, threshold=threshold)
    if found is None:
        return None
    return {"reason": found.reason, "detail": found.detail,
            "similarity": None if found.similarity is None else round(found.similarity, 3),
            "threshold": threshold, "expected": expected, "got": got_text,
            "expected_tools": expected_tools, "got_tools": got_tools}


def run_adaptive(
    engine: ReplayEngine,
    call: Call,
    snapshot: AgentSnapshot,
    recordings: Mapping[RecordingKind, Path] | Mapping[str, Path],
    *,
    seed: int | None,
    tools: ToolServer,
    out_dir: Path,
    on_progress: Callable[[str], None] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> Replay:
    """Replay ``call`` in adaptive mode (see the module docstring)."""
    say = on_progress or (lambda _message: None)
    if engine.tts_caller is None:
        raise SimulationError("adaptive mode needs a caller text-to-speech backend")
    tts_caller = engine.tts_caller
    caller_llm = engine.caller_llm or engine.llm
    prepared = engine._prepare(call, snapshot, recordings, say)
    conversation = Conversation(snapshot, seed)
    language = snapshot.transcriber.language
    cap = 2 * len(call.turns_by("user"))
    spoken: list[tuple[str, str]] = []  # ("agent" | "caller", text), as the caller heard it
    divergence: dict[str, Any] | None = None
    reason = "caller-done"
    with ExitStack() as stack:
        stt_pool = worker(stack, "replay-stt")
        tts_pool = worker(stack, "replay-tts")
        heard = [Heard(n, s, stt_pool.submit(engine.stt.transcribe, s.audio, language=language))
                 for n, s in enumerate(prepared.segments, start=1)]
        plan: list[Heard | Said] = list(engine._open(call, snapshot, conversation, tools,
                                                     tts_pool, say))
        spoken.extend(("agent", s.step.text) for s in plan if isinstance(s, Said) and s.step.text)

        def answer(item: Heard, after: int | None) -> list[Step]:
            transcription = wait(item.transcription, caller_label(item))
            plan.append(item)
            spoken.append(("caller", item.segment.text))
            if not transcription.text.strip():
                return []
            say(f"agent reply to caller turn {item.number}")
            steps = engine._reply(call, conversation, transcription.text, item, tools)
            plan.extend(engine._synthesize(call, steps, after, tts_pool, snapshot,
                                           f"agent reply to {caller_label(item)}"))
            spoken.extend(("agent", s.text) for s in steps if s.kind == "say" and s.text)
            return steps

        ended = any(isinstance(s, Said) and s.step.ends_call for s in plan)
        number = 0
        for item in heard if not ended else []:
            number = item.number
            at = len(plan) + 1  # where the reply's first turn will sit
            index = item.segment.turn_index
            steps = answer(item, index)
            if any(s.ends_call for s in steps):
                ended = True
                break
            found = departure(call, index, steps, threshold) if steps and index is not None \
                else None
            if found is not None and index is not None:
                divergence = {"turn": at, "baseline_turn": _baseline_at(call, index),
                              "caller_turn": item.number, **found}
                say(f"the agent diverged at caller turn {item.number} ({found['reason']}): "
                    "the simulated caller takes over")
                break
        if divergence is not None and not ended:
            system = caller_prompt(call)
            while True:
                if number >= cap:
                    reason = "caller-turn-cap"
                    break
                if _over_time(plan, snapshot, prepared.rate, call):
                    break
                text = _caller_line(caller_llm, system, spoken, conversation.seed_used,
                                    f"simulated caller turn {number + 1}")
                if not text:
                    reason = "caller-done"
                    break
                synthesis = guard(partial(tts_caller.synthesize, text),
                                  f"synthesizing simulated caller turn {number + 1}")
                number += 1
                segment = CallerSegment(None, text, synthesis.audio, "caller-llm")
                item = Heard(number, segment, stt_pool.submit(engine.stt.transcribe,
                                                              synthesis.audio, language=language))
                if any(s.ends_call for s in answer(item, None)):
                    ended = True
                    break
                if says_goodbye(text):
                    reason = "caller-goodbye"
                    break
        say("laying out the replay's audio")
        timeline = Timeline(prepared.rate, limit=snapshot.turn_taking.max_duration)
        turns = lay_out(plan, timeline, endpointing_delay(snapshot), agent_lead_in(call))
    if timeline.stopped:
        reason = "max-duration"
    elif ended:
        reason = "agent-ended-call"
    return engine._finish(call, snapshot, prepared, mode="adaptive",
                          seed=conversation.seed_used, timeline=timeline, turns=turns,
                          reason=reason, out_dir=out_dir, say=say, divergence=divergence)


def _caller_line(llm: LanguageModel, system: str, spoken: list[tuple[str, str]],
                 seed: int | None, what: str) -> str:
    """The simulated caller's next line: the call so far from the caller's side."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    messages.extend({"role": "assistant" if who == "caller" else "user", "content": text}
                    for who, text in spoken)
    request = ChatRequest(messages=messages, max_tokens=CALLER_MAX_TOKENS, seed=seed)
    return guard(lambda: llm.complete(request), what).text.strip()


def _over_time(plan: list[Heard | Said], snapshot: AgentSnapshot, rate: int,
               call: Call) -> bool:
    """Has the call so far reached the max duration? (A trial layout; waits for the audio.)"""
    limit = snapshot.turn_taking.max_duration
    if limit is None:
        return False
    trial = Timeline(rate, limit=limit)
    lay_out(plan, trial, endpointing_delay(snapshot), agent_lead_in(call))
    return trial.stopped or trial.speech_end >= limit


def _baseline_at(call: Call, after: int) -> int | None:
    """The baseline's first agent (or tool-call) turn answering turn ``after``."""
    for index in range(after + 1, len(call.turns)):
        role = call.turns[index].role
        if role == "user":
            return None
        if role in ("agent", "tool_call"):
            return index
    return None
