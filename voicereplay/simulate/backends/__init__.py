"""Stage backends. Each module registers its backends on import; heavy libraries are imported
when a backend is built, so a missing optional dependency only matters to whoever uses it."""

from voicereplay.simulate.backends import (
    llama_cpp,  # noqa: F401
    openai_compat,  # noqa: F401
    openai_speech,  # noqa: F401
    piper_tts,  # noqa: F401
    recorded,  # noqa: F401
    whisper,  # noqa: F401
)
