"""What "agent turn N" is: turns grouped into agent replies and caller turns.

An **agent reply** is every agent, tool-call and tool-result turn between two caller turns (the
opening, before the caller first speaks, is reply 1). Replies and caller turns are numbered
from 1 in the order they happened; :func:`units` gives both, interleaved. Works on a baseline
``Call.turns`` and a ``Replay.turns`` alike (``system`` turns are skipped).

This is the one definition the replay modes (which baseline turns a new reply stands for, what
the recorded LLM answers, where adaptive mode diverges) and the comparison (alignment, metrics,
checks) share; :func:`reply_to` finds the reply that answers a given caller turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from voicereplay.models import ToolCall, Turn

__all__ = ["AgentReply", "CallerTurn", "Unit", "agent_replies", "caller_turns", "reply_to", "units"]


@dataclass
class AgentReply:
    number: int  # 1-based among the agent replies
    indices: list[int] = field(default_factory=list)  # all its turns, in Call/Replay.turns
    spoken: list[int] = field(default_factory=list)  # its agent (spoken) turns
    after_caller: int | None = None  # index of the caller turn it answers (None: the opening)

    def text(self, turns: Sequence[Turn]) -> str:
        return " ".join(turns[i].text.strip() for i in self.spoken if turns[i].text.strip())

    def tool_calls(self, turns: Sequence[Turn]) -> list[ToolCall]:
        return [c for i in self.indices for c in turns[i].tool_calls]

    def tools(self, turns: Sequence[Turn]) -> list[str]:
        return [c.name for c in self.tool_calls(turns)]

    def of_role(self, turns: Sequence[Turn], *roles: str) -> list[int]:
        """Its turns (indices) whose role is one of ``roles``, in order."""
        return [i for i in self.indices if turns[i].role in roles]

    def start(self, turns: Sequence[Turn]) -> float | None:
        """When the reply's first audio starts (its first spoken turn with a time)."""
        times = [t for t in (turns[i].start for i in self.spoken) if t is not None]
        return min(times) if times else None


@dataclass
class CallerTurn:
    number: int  # 1-based among the caller's turns
    index: int  # in Call/Replay.turns


Unit = AgentReply | CallerTurn


def units(turns: Sequence[Turn]) -> list[Unit]:
    """Caller turns and agent replies, in order."""
    found: list[Unit] = []
    reply: AgentReply | None = None
    last_caller: int | None = None
    callers = replies = 0
    for index, turn in enumerate(turns):
        if turn.role == "system":
            continue
        if turn.role == "user":
            callers += 1
            found.append(CallerTurn(callers, index))
            reply, last_caller = None, index
            continue
        if reply is None:
            replies += 1
            reply = AgentReply(replies, after_caller=last_caller)
            found.append(reply)
        reply.indices.append(index)
        if turn.role == "agent":
            reply.spoken.append(index)
    return found


def agent_replies(turns: Sequence[Turn]) -> list[AgentReply]:
    return [u for u in units(turns) if isinstance(u, AgentReply)]


def caller_turns(turns: Sequence[Turn]) -> list[CallerTurn]:
    return [u for u in units(turns) if isinstance(u, CallerTurn)]


def reply_to(turns: Sequence[Turn], caller: int | None) -> AgentReply | None:
    """The agent reply answering the caller turn at index ``caller`` (``None``: the opening),
    or None when the agent did not answer it (the caller spoke again, or hung up)."""
    for reply in agent_replies(turns):
        if reply.after_caller == caller:
            return reply
    return None
