"""Adaptive mode: scripted until the agent departs from the baseline, then an LLM caller.

The replay runs the scripted loop (:class:`~voicereplay.simulate.modes.scripted.ScriptedLoop`:
the caller's original turns, transcribed by the STT, answered by the agent) until the
**divergence turn**: the first agent reply that departs from the baseline's reply to the same
caller turn (:func:`voicereplay.turns.reply_to`), by the same rule the comparison uses
(:func:`voicereplay.compare.divergence.departure`): a different sequence of tool-call names (or
a tool call against none), a different intent (a question against a statement, …), or words
too different (lexical similarity under ``threshold``, default :data:`DEFAULT_THRESHOLD`). Only
replies to caller turns are compared (not the opening). From there a simulated caller
carries the call on: a second :class:`~voicereplay.simulate.stages.LanguageModel` (the stages'
``caller_llm``, else the agent's ``llm``) prompted with the caller's goal and persona from the
baseline (:func:`caller_prompt`: the analysis summary if any, and everything the real caller
said). Its lines (origin ``"caller-llm"``) are synthesized with the caller TTS and transcribed
by the STT like any caller audio, so the agent hears them through its transcriber.

The call ends when the agent ends it (``agent-ended-call``), the simulated caller says goodbye
(``caller-goodbye``, after the agent's answer to it), the caller has spoken twice as many turns as
in the baseline (``caller-turn-cap``), the caller has nothing to say (``caller-done``), or at the
snapshot's max duration (``max-duration``). Where the agent diverged is in
:attr:`~voicereplay.models.Replay.divergence` (``None`` if it never did: then the replay is a
scripted one).
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from voicereplay.compare.divergence import departure as reply_departure
from voicereplay.errors import SimulationError
from voicereplay.models import Call, Replay, ReplayDivergence
from voicereplay.simulate.caller import CallerSegment
from voicereplay.simulate.conversation import Step
from voicereplay.simulate.modes.scripted import ScriptedLoop
from voicereplay.simulate.plan import Heard, Said, guard
from voicereplay.simulate.session import ReplaySession
from voicereplay.simulate.stages import ChatRequest, LanguageModel
from voicereplay.turns import reply_to

__all__ = ["DEFAULT_THRESHOLD", "caller_prompt", "departure", "run", "says_goodbye"]

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
    answered = reply_to(call.turns, after)
    expected_tools = answered.tools(call.turns) if answered else []
    expected = answered.text(call.turns) if answered else ""
    got_tools = [s.tool_call.name for s in steps if s.tool_call is not None]
    got_text = " ".join(s.text for s in steps if s.kind == "say")
    found = reply_departure(expected, expected_tools, got_text, got_tools, threshold=threshold)
    if found is None:
        return None
    return {"reason": found.reason, "detail": found.detail,
            "similarity": None if found.similarity is None else round(found.similarity, 3),
            "threshold": threshold, "expected": expected, "got": got_text,
            "expected_tools": expected_tools, "got_tools": got_tools}


def run(session: ReplaySession, threshold: float = DEFAULT_THRESHOLD) -> Replay:
    """Replay the session's call in adaptive mode (see the module docstring)."""
    call, stages, say = session.call, session.stages, session.say
    if stages.tts_caller is None:
        raise SimulationError("adaptive mode needs a caller text-to-speech backend")
    tts_caller = stages.tts_caller
    caller_llm = stages.caller_llm or stages.llm
    conversation = session.conversation()
    cap = 2 * len(call.turns_by("user"))
    divergence: ReplayDivergence | None = None
    reason = "caller-done"
    with session.workers() as (stt_pool, tts_pool):
        heard = session.hear_all(stt_pool)
        loop = ScriptedLoop(session, conversation, stt_pool, tts_pool)

        def departed(item: Heard, steps: list[Step]) -> bool:
            nonlocal divergence
            index = item.segment.turn_index
            found = departure(call, index, steps, threshold) if steps and index is not None \
                else None
            if found is None or index is None:
                return False
            answered = reply_to(call.turns, index)
            first = answered.of_role(call.turns, "agent", "tool_call")[:1] if answered else []
            divergence = ReplayDivergence(turn=loop.position(item) + 1,
                                          baseline_turn=first[0] if first else None,
                                          caller_turn=item.number, **found)
            say(f"the agent diverged at caller turn {item.number} ({found['reason']}): "
                "the simulated caller takes over")
            return True

        loop.open()
        stopped = loop.run(heard, stop=departed)
        if stopped is not None:
            system = caller_prompt(call)
            number = stopped.number
            while True:
                if number >= cap:
                    reason = "caller-turn-cap"
                    break
                if _over_time(session, loop.plan):
                    break
                text = _caller_line(caller_llm, system, _spoken(loop.plan),
                                    conversation.seed_used, f"simulated caller turn {number + 1}")
                if not text:
                    reason = "caller-done"
                    break
                synthesis = guard(partial(tts_caller.synthesize, text),
                                  f"synthesizing simulated caller turn {number + 1}")
                number += 1
                item = session.hear(stt_pool, number,
                                    CallerSegment(None, text, synthesis.audio, "caller-llm"))
                loop.answer(item, None)
                if loop.ended:
                    break
                if says_goodbye(text):
                    reason = "caller-goodbye"
                    break
        say("laying out the replay's audio")
        timeline, turns = session.lay_out(loop.plan)
    if timeline.stopped:
        reason = "max-duration"
    elif loop.ended:
        reason = "agent-ended-call"
    return session.finish(mode="adaptive", timeline=timeline, turns=turns, reason=reason,
                          divergence=divergence)


def _spoken(plan: list[Heard | Said]) -> list[tuple[str, str]]:
    """The call so far as the caller heard it: ("agent" | "caller", text), in order."""
    spoken: list[tuple[str, str]] = []
    for item in plan:
        if isinstance(item, Heard):
            spoken.append(("caller", item.segment.text))
        elif item.step.kind == "say" and item.step.text:
            spoken.append(("agent", item.step.text))
    return spoken


def _caller_line(llm: LanguageModel, system: str, spoken: list[tuple[str, str]],
                 seed: int | None, what: str) -> str:
    """The simulated caller's next line: the call so far from the caller's side."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    messages.extend({"role": "assistant" if who == "caller" else "user", "content": text}
                    for who, text in spoken)
    request = ChatRequest(messages=messages, max_tokens=CALLER_MAX_TOKENS, seed=seed)
    return guard(lambda: llm.complete(request), what).text.strip()


def _over_time(session: ReplaySession, plan: list[Heard | Said]) -> bool:
    """Has the call so far reached the max duration? (A trial layout; waits for the audio.)"""
    limit = session.snapshot.turn_taking.max_duration
    if limit is None:
        return False
    trial, _ = session.lay_out(plan)
    return trial.stopped or trial.speech_end >= limit
