"""A scripted LLM for batch tests: what each call's candidate does is written in its prompt.

A batch test stores copies of the demo call whose system prompts end with ``[batch: good]``,
``[batch: bad]`` or ``[batch: same]``. ``batch-llm`` answers like the production agent when
the request's temperature is not :data:`CANDIDATE_TEMPERATURE`, and like the candidate when it
is (``voicereplay batch run --temperature 0.05``). At the caller's third turn (the order
question of the demo call):

- ``good``: production calls ``issue_refund`` (the bug), the candidate ``check_status``
  (fixed), and the candidate answers fast (:data:`FAST`);
- ``bad``: production calls ``check_status``, the candidate ``issue_refund`` (broken), and the
  candidate answers slowly (:data:`SLOW`);
- ``same``: ``check_status`` on both sides, at the default speed.
"""

from __future__ import annotations

import dataclasses
import re

from tests.fakes.backends import FakeLLM
from tests.fakes.prompt_llm import REFUND, STATUS, _third_caller_turn
from tests.fakes.scripted_llm import Reply
from voicereplay.simulate.stages import LLMS, ChatRequest

__all__ = ["CANDIDATE_TEMPERATURE", "FAST", "SLOW", "register"]

CANDIDATE_TEMPERATURE = 0.05
FAST = 0.02  # seconds to the first token
SLOW = 3.0
_TAG = re.compile(r"\[batch: (good|bad|same)\]")


class BatchLLM(FakeLLM):
    name = "batch-llm"

    def reply_for(self, request: ChatRequest, index: int) -> Reply:
        system = next((str(m.get("content")) for m in request.messages
                       if m.get("role") == "system"), "")
        found = _TAG.search(system)
        kind = found.group(1) if found else "same"
        candidate = request.temperature == CANDIDATE_TEMPERATURE
        if _third_caller_turn(request):
            refund = (kind == "good") != candidate if kind != "same" else False
            reply = REFUND if refund else STATUS
        else:
            reply = super().reply_for(request, index)
        if candidate and kind in ("good", "bad"):
            return dataclasses.replace(reply, ttft=FAST if kind == "good" else SLOW)
        return reply


def register() -> None:
    LLMS.register("batch-llm", lambda **_: BatchLLM({}, default="Okay, let me check that.",
                                                    ttft=0.2, duration=0.3))
