"""The registry of provider adapters (Vapi, Retell, files); plugins register the same way."""

from __future__ import annotations

from typing import Any

from voicereplay.providers.base import CallProvider
from voicereplay.registry import Registry

__all__ = ["PROVIDERS", "create", "names", "register"]

PROVIDERS: Registry[CallProvider] = Registry(
    "provider",
    builtins=(
        "voicereplay.providers.files",
        "voicereplay.providers.retell",
        "voicereplay.providers.vapi",
    ),
)
register = PROVIDERS.register
names = PROVIDERS.names


def create(name: str, **options: Any) -> CallProvider:
    """Build the provider called ``name``; unknown names list the known ones."""
    return PROVIDERS.create(name, **options)
