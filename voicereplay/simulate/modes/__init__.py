"""The replay modes of DESIGN.md, "Replay modes", each a function of one
:class:`~voicereplay.simulate.session.ReplaySession` returning the
:class:`~voicereplay.models.Replay`:

- :mod:`.scripted` (default): the caller says what the real caller said, in order; the agent
  answers fresh;
- :mod:`.turn`: every original agent reply is asked again on the original history up to it;
- :mod:`.adaptive`: the scripted loop until the agent departs from the baseline, then an LLM
  caller carries the call on.
"""

from __future__ import annotations

from collections.abc import Callable

from voicereplay.models import Replay
from voicereplay.simulate.modes import adaptive, scripted, turn
from voicereplay.simulate.session import ReplaySession

__all__ = ["MODES"]

MODES: dict[str, Callable[[ReplaySession], Replay]] = {
    "scripted": scripted.run,
    "turn": turn.run,
    "adaptive": adaptive.run,
}
