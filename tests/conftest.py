"""Hermetic tests: every test gets its own VOICEREPLAY_HOME and no provider keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.backends import register as register_fake_backends

register_fake_backends()  # fake-stt, fake-llm, fake-tts: see tests/fakes/backends.py
pytest_plugins = ["tests.servers"]  # real PostgreSQL and redis-server: postgres_url, redis_url

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("VOICEREPLAY_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOICEREPLAY_HOME", str(tmp_path / "home"))
    for name in (
        "VAPI_API_KEY",
        "RETELL_API_KEY",
        "VAPI_BASE_URL",
        "RETELL_BASE_URL",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
