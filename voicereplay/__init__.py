"""voicereplay: replay real Vapi/Retell voice-agent calls against a changed agent."""

from voicereplay.errors import VoiceReplayError
from voicereplay.models import Call, Recording, ToolCall, ToolResult, Turn, Word
from voicereplay.scenario import Scenario, load_scenario
from voicereplay.snapshot import AgentSnapshot, Overrides

__version__ = "0.1.0"

__all__ = [
    "AgentSnapshot",
    "Call",
    "Overrides",
    "Recording",
    "Scenario",
    "ToolCall",
    "ToolResult",
    "Turn",
    "VoiceReplayError",
    "Word",
    "__version__",
    "load_scenario",
]
