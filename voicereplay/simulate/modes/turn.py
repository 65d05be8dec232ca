"""Turn mode: every original agent reply is asked again, on the original history up to it.

For every baseline agent turn *k* that answered something (every agent turn after the first
caller turn; with ``agent-generates-first`` also the opening), the agent gets the **original**
history up to *k* — the snapshot's system prompt, the baseline's caller turns (their transcript
text) as ``user`` messages, its agent turns as ``assistant`` messages, its tool calls and results
as ``assistant`` ``tool_calls`` + ``tool`` messages in OpenAI form — and writes reply *k* anew.
Tool calls the baseline made right after the caller spoke (before reply *k*) are left out of
the history: they belong to reply *k*, and the new agent makes its own, answered by the
:class:`~voicereplay.simulate.tools.ToolServer` in the same tool loop (and up to the same cap)
as :mod:`~voicereplay.simulate.conversation`. One reply never feeds the next: a change shows
turn by turn, in isolation. Knowledge-base context (``Call.knowledge``) is served as in the
other modes: a Vapi context of an earlier reply sits in the history before the agent turn it
informed (unless the history already holds it as the result of the knowledge-base tool the
baseline called), and the contexts of reply *k* are served before it is asked.

Audio: the caller track is the baseline caller's own audio, turn by turn at the baseline's
times (the same segments as scripted mode: the customer channel, or TTS of the transcript);
each new reply is synthesized and starts where the original agent turn *k* started, so the
replay plays like the call with the agent's words swapped (a longer reply may overlap the next
caller turn). Caller turns are not transcribed — the agent reads the baseline's text — so their
``heard`` is ``None``; agent turns have LLM/TTS timings but no ``response`` latency (they are
placed at the baseline's times, not after measured latencies). A reply that would end the call
does not stop the replay: every turn is asked.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from voicereplay import knowledge as kb
from voicereplay.audio import Audio
from voicereplay.models import Call, KnowledgeContext, Replay, ReplayTurn, StageTimings, ToolCall
from voicereplay.simulate.conversation import Step, openai_tool_call
from voicereplay.simulate.plan import agent_lead_in, wait
from voicereplay.simulate.session import ReplaySession
from voicereplay.simulate.stages import Synthesis
from voicereplay.simulate.timeline import Timeline
from voicereplay.snapshot import AgentSnapshot
from voicereplay.turns import agent_replies

__all__ = ["ReplyUnit", "baseline_messages", "reply_units", "run", "served_now"]


@dataclass(frozen=True)
class ReplyUnit:
    """Baseline agent turn ``agent`` is asked on the baseline's turns before ``history_end``;
    the baseline's tool turns in ``tools`` (between the two) belong to this reply."""

    agent: int
    history_end: int
    tools: tuple[int, ...]


def reply_units(call: Call, snapshot: AgentSnapshot) -> list[ReplyUnit]:
    """The baseline agent turns turn mode asks again, with the history each one gets.

    Every spoken turn of every agent reply (:mod:`voicereplay.turns`) that answers a caller
    turn; with ``agent-generates-first`` also the opening's first spoken turn. Tool turns that
    open a reply, before its first spoken turn, belong to that turn.
    """
    units: list[ReplyUnit] = []
    generates_first = snapshot.first_message_mode == "agent-generates-first"
    for reply in agent_replies(call.turns):
        opening = reply.after_caller is None
        if opening and not generates_first:
            continue
        for index in reply.spoken[:1] if opening else reply.spoken:
            before = [i for i in reply.indices if i < index]
            leading = (not opening and index == reply.spoken[0] and bool(before)
                       and all(call.turns[i].role in ("tool_call", "tool_result")
                               for i in before))
            end = before[0] if leading else index
            units.append(ReplyUnit(index, end, tuple(range(end, index))))
    return units


def baseline_messages(call: Call, end: int) -> list[dict[str, Any]]:
    """The baseline's turns before ``end`` as OpenAI chat messages (no system message), with
    the knowledge-base context that stayed in the production agent's history."""
    messages: list[dict[str, Any]] = []
    pending: list[ToolCall] = []  # calls not answered yet
    for index, turn in enumerate(call.turns[:end]):
        messages.extend(kb.message(c) for c in call.knowledge
                        if c.turn == index and _in_history(call, c, end))
        if turn.role == "user":
            messages.append({"role": "user", "content": turn.text})
        elif turn.role == "agent":
            messages.append({"role": "assistant", "content": turn.text})
        elif turn.role == "tool_call" and turn.tool_calls:
            calls = [c if c.id else c.model_copy(update={"id": f"baseline-{index}-{n}"})
                     for n, c in enumerate(turn.tool_calls)]
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" not in last:
                last["tool_calls"] = [openai_tool_call(c) for c in calls]  # said, then called
            else:
                messages.append({"role": "assistant", "content": None,
                                 "tool_calls": [openai_tool_call(c) for c in calls]})
            pending.extend(calls)
        elif turn.role == "tool_result" and turn.tool_result is not None:
            result = turn.tool_result
            answered = next((c for c in pending if c.id == result.id), None) or next(
                (c for c in pending if c.name == result.name), None) or (
                pending[0] if pending else None)
            if answered is not None:
                pending.remove(answered)
            call_id = result.id or (answered.id if answered else f"baseline-{index}")
            messages.append({"role": "tool", "tool_call_id": call_id, "content": result.result})
    return messages


@dataclass
class _Reply:
    unit: ReplyUnit | None  # None: the snapshot's first message
    steps: list[Step]
    speech: list[Future[Synthesis] | None]  # per step: its synthesis (say steps with text)


def run(session: ReplaySession) -> Replay:
    """Replay the session's call in turn mode (see the module docstring)."""
    call, snapshot, say = session.call, session.snapshot, session.say
    units = reply_units(call, snapshot)
    with session.workers() as (_stt_pool, tts_pool):

        def speak(steps: list[Step]) -> list[Future[Synthesis] | None]:
            return [tts_pool.submit(session.speak, s.text)
                    if s.kind == "say" and s.text else None for s in steps]

        asked: dict[int, tuple[ReplyUnit | None, list[Step]]] = {}
        first = next((i for i, t in enumerate(call.turns) if t.role == "agent"), None)
        if (first is not None and snapshot.first_message_mode == "agent-speaks-first"
                and snapshot.first_message):
            asked[first] = (None, [Step("say", 0.0, text=snapshot.first_message)])
        for number, unit in enumerate(units, start=1):
            say(f"agent turn {number} of {len(units)} (baseline turn {unit.agent})")
            asked[unit.agent] = (unit, _ask(session, unit))
        # speech only now: the replies are placed at the baseline's times, so nothing is
        # gained by synthesizing beside the LLM, and a local LLM and TTS fight for the CPU
        say("synthesizing the agent's replies")
        replies = {k: _Reply(unit, steps, speak(steps)) for k, (unit, steps) in asked.items()}
        say("laying out the replay's audio")
        timeline = session.timeline()
        segments = {s.turn_index: s for s in session.prepared.segments}
        turns: list[ReplayTurn] = []
        for index, turn in enumerate(call.turns):
            if timeline.stopped:
                break
            segment = segments.get(index)
            if segment is not None:
                at = turn.start if turn.start is not None else timeline.speech_end + segment.gap
                span = timeline.place("caller", segment.audio, at, lead=segment.lead,
                                      tail=segment.tail)
                if span is not None:
                    turns.append(ReplayTurn(role="user", text=segment.text, start=span.start,
                                            end=span.end, origin=segment.origin,
                                            baseline_turn=index))
            elif index in replies:
                lead_in = agent_lead_in(call) if replies[index].unit is None else 0.0
                at = turn.start if turn.start is not None else max(timeline.speech_end, lead_in)
                turns.extend(_place(call, index, replies[index], timeline, at))
    reason = "max-duration" if timeline.stopped else "all-turns-replayed"
    return session.finish(mode="turn", timeline=timeline, turns=turns, reason=reason)


def _in_history(call: Call, context: KnowledgeContext, end: int) -> bool:
    """Is ``context`` part of the history before turn ``end``, as its own message? Vapi
    contexts persist — except a tool result the history already has; Retell's do not."""
    if not kb.persists(context):
        return False
    return context.tool_call_id is None or not _answered_before(call, context, end)


def _answered_before(call: Call, context: KnowledgeContext, end: int) -> bool:
    return any(t.tool_result is not None and t.tool_result.id == context.tool_call_id
               for t in call.turns[:end])


def served_now(call: Call, unit: ReplyUnit) -> list[KnowledgeContext]:
    """The contexts of baseline agent turn ``unit.agent`` that its history does not hold."""
    return [c for c in call.knowledge if c.turn == unit.agent and not (
        c.tool_call_id is not None and _answered_before(call, c, unit.history_end))]


def _ask(session: ReplaySession, unit: ReplyUnit) -> list[Step]:
    """Reply ``unit.agent`` anew on the baseline's history up to it, tool loop included."""
    call = session.call
    conversation = session.conversation()
    conversation.history.extend(baseline_messages(call, unit.history_end))
    what = f"agent turn {unit.agent} ({call.turns[unit.agent].text[:40]!r})"
    return session.ask(conversation, None, what, f"turn-{unit.agent}",
                       knowledge=served_now(call, unit))


def _place(call: Call, index: int, reply: _Reply, timeline: Timeline,
           at: float) -> list[ReplayTurn]:
    """Lay one reply out so that its first speech starts at ``at``."""
    spoken = [s for s in reply.steps if s.kind == "say"]
    anchor = at - (spoken[0].offset if spoken else 0.0)  # when the LLM was asked
    baseline_tools = {role: [i for i in (reply.unit.tools if reply.unit else ())
                             if call.turns[i].role == role]
                      for role in ("tool_call", "tool_result")}
    what = f"agent turn {index}"
    turns: list[ReplayTurn] = []
    agent_end = at
    for step, future in zip(reply.steps, reply.speech, strict=True):
        if step.kind != "say":
            paired = baseline_tools[step.kind]
            turns.append(ReplayTurn(
                role=step.kind, start=max(0.0, anchor + step.offset), origin="tool",
                baseline_turn=paired.pop(0) if paired else None, llm_request=step.llm_request,
                tool_calls=[step.tool_call] if step.tool_call else [],
                tool_result=step.tool_result, prompt_tokens=step.prompt_tokens,
                completion_tokens=step.completion_tokens, knowledge=step.knowledge))
            continue
        synthesis = wait(future, what) if future is not None else None
        audio = synthesis.audio if synthesis else Audio.silence(0, timeline.rate)
        start = at if step is spoken[0] else max(agent_end, anchor + step.offset)
        span = timeline.place("agent", audio, start)
        if span is None:
            break
        agent_end = span.end
        timings = StageTimings(llm_ttft=step.llm_ttft, llm_total=step.llm_total,
                               tts_ttfa=synthesis.ttfa if synthesis else None,
                               tts_total=synthesis.latency if synthesis else None)
        turns.append(ReplayTurn(role="agent", text=step.text, start=span.start, end=span.end,
                                origin="first-message" if reply.unit is None else "llm",
                                baseline_turn=index, llm_request=step.llm_request,
                                timings=timings if reply.unit is not None else None,
                                prompt_tokens=step.prompt_tokens,
                                completion_tokens=step.completion_tokens,
                                knowledge=step.knowledge))
        if span.cut:
            break
    return turns
