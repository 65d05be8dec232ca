"""Scripted mode: the caller says exactly what the real caller said, in order; the agent
answers fresh.

The caller's turns are the baseline's (:mod:`~voicereplay.simulate.caller`: the original
audio, or TTS of the transcript); the agent (:mod:`~voicereplay.simulate.conversation`)
answers each one it hears, its tool calls answered by the session's
:class:`~voicereplay.simulate.tools.ToolServer`. Work that does not depend on the LLM runs
beside it: every caller turn is transcribed up front on one STT worker thread (one at a time,
so turns do not compete with each other; they may still compete with a local LLM for the CPU,
which shows in their latency) while the agent's opening is synthesized, and each agent reply is
synthesized on one TTS worker thread while the LLM writes the next reply. The timeline is laid
out once all of it is done.

A turn heard as nothing gets no reply (a voice agent does not answer silence). The call ends
when the agent ends it (an end-call phrase or tool: ``agent-ended-call``), when the caller has
said everything (``caller-done``), or at the snapshot's max duration (``max-duration``).

:class:`ScriptedLoop` is the loop itself; adaptive mode runs it too, with a ``stop`` test that
hands over to its simulated caller.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from voicereplay.models import Replay
from voicereplay.simulate.conversation import Conversation, Step
from voicereplay.simulate.plan import Heard, Said, caller_label, wait
from voicereplay.simulate.session import ReplaySession
from voicereplay.turns import AgentReply

__all__ = ["ScriptedLoop", "run"]


class ScriptedLoop:
    """The plan of a scripted replay, built turn by turn: caller turns heard, agent replies."""

    def __init__(self, session: ReplaySession, conversation: Conversation,
                 stt_pool: ThreadPoolExecutor, tts_pool: ThreadPoolExecutor) -> None:
        self.session = session
        self.conversation = conversation
        self.stt_pool = stt_pool
        self.tts_pool = tts_pool
        self.plan: list[Heard | Said] = []
        self.ended = False  # the agent ended the call

    def open(self) -> None:
        """The agent's opening (the first message, a generated one, or nothing)."""
        opening = self.session.open(self.conversation, self.tts_pool)
        self.plan.extend(opening)
        self.ended = any(s.step.ends_call for s in opening)

    def answer(self, item: Heard, answering: AgentReply | None) -> list[Step]:
        """Place caller turn ``item``; the agent replies to what it heard (nothing: no reply).

        ``answering`` is the baseline reply the new one stands for (None: none).
        """
        transcription = wait(item.transcription, caller_label(item))
        self.plan.append(item)
        if not transcription.text.strip():
            return []  # nothing heard: a voice agent does not answer silence
        self.session.say(f"agent reply to {caller_label(item)}")
        steps = self.session.reply(self.conversation, transcription.text, item)
        self.plan.extend(self.session.synthesize(steps, answering, self.tts_pool,
                                                 f"agent reply to {caller_label(item)}"))
        if any(s.ends_call for s in steps):
            self.ended = True
        return steps

    def run(self, heard: list[Heard],
            stop: Callable[[Heard, list[Step]], bool] | None = None) -> Heard | None:
        """Answer ``heard`` in order until the agent ends the call or ``stop(item, steps)`` is
        true after a reply; returns the caller turn it stopped at (None: it did not stop)."""
        for item in heard:
            if self.ended:
                return None
            steps = self.answer(item, self.session.answering(item))
            if not self.ended and stop is not None and stop(item, steps):
                return item
        return None

    def position(self, item: Heard) -> int:
        """Where ``item`` sits in the plan (= its index among the replay's turns)."""
        return next(i for i, p in enumerate(self.plan) if p is item)


def run(session: ReplaySession) -> Replay:
    """Replay the session's call in scripted mode (see the module docstring)."""
    conversation = session.conversation()
    with session.workers() as (stt_pool, tts_pool):
        heard = session.hear_all(stt_pool)
        loop = ScriptedLoop(session, conversation, stt_pool, tts_pool)
        loop.open()
        loop.run(heard)
        session.say("laying out the replay's audio")
        timeline, turns = session.lay_out(loop.plan)
    reason = ("max-duration" if timeline.stopped
              else "agent-ended-call" if loop.ended else "caller-done")
    return session.finish(mode="scripted", timeline=timeline, turns=turns, reason=reason)
