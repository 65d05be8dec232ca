"""``voicereplay call`` against an LLM server that refuses the key exits 3, as a provider's 401
does, in one line that never shows the key.

The replay hears the caller's first turn with the embedded Whisper before the LLM is asked,
hence the ``models`` marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fakes.openai_chat import chat_app
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fakes.server import serve
from voicereplay.cli import app

DEMO_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
DEMO = "dfed92e7-b86e-5139-835c-d451a4f9d515"
KEY = "sk-live-NOT-A-REAL-KEY-4242424242"


@pytest.mark.models
@pytest.mark.integration
def test_an_llm_401_exits_3_naming_the_server() -> None:
    with serve(chat_app(ScriptedLLM({}, default="Hi"), [])) as server:
        server.fail(r"/chat/completions$", status=401, times=10,
                    body={"error": {"message": f"Incorrect API key provided: {KEY}"}})
        result = CliRunner().invoke(app, [
            "call", DEMO, "--dir", str(DEMO_DIR), "--model", "gpt-4o-mini",
            "--llm-base-url", f"{server.url}/v1"])

    assert result.exit_code == 3, result.output
    error = result.stderr
    assert "401" in error and server.url in error and "API key" in error
    assert KEY not in result.output and KEY not in error
