"""The voice simulation: STT → LLM (with tools) → TTS per agent turn, on a virtual clock."""
