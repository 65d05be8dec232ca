"""Settings read from the environment: where data lives and how to reach providers.

``VOICEREPLAY_HOME`` (default ``~/.voicereplay``) holds ``voicereplay.db`` and ``artifacts/``;
``VOICEREPLAY_DATABASE_URL`` points elsewhere (e.g. Postgres). Provider keys come from
``VAPI_API_KEY`` / ``RETELL_API_KEY`` and base URLs from ``VAPI_BASE_URL`` / ``RETELL_BASE_URL``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings"]


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    vapi_api_key: str | None = field(default=None, repr=False)
    retell_api_key: str | None = field(default=None, repr=False)
    vapi_base_url: str = "https://api.vapi.ai"
    retell_base_url: str = "https://api.retellai.com"
    download_concurrency: int = 8

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("VOICEREPLAY_HOME") or Path.home() / ".voicereplay").expanduser()
        return cls(
            home=home,
            database_url=_env("VOICEREPLAY_DATABASE_URL") or f"sqlite:///{home / 'voicereplay.db'}",
            vapi_api_key=_env("VAPI_API_KEY"),
            retell_api_key=_env("RETELL_API_KEY"),
            vapi_base_url=_env("VAPI_BASE_URL") or cls.vapi_base_url,
            retell_base_url=_env("RETELL_BASE_URL") or cls.retell_base_url,
            download_concurrency=int(_env("VOICEREPLAY_DOWNLOAD_CONCURRENCY") or 8),
        )
