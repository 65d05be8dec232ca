"""Agent replies and caller turns, as the comparison counts them: :mod:`voicereplay.turns`
(the one definition the replay and the comparison share), re-exported under its old name."""

from voicereplay.turns import AgentReply, CallerTurn, Unit, agent_replies, caller_turns, units

__all__ = ["AgentReply", "CallerTurn", "Unit", "agent_replies", "caller_turns", "units"]
