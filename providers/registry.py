"""A plain registry of provider adapters: built-ins register the way a plugin would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from voicereplay.errors import ConfigError
from voicereplay.providers.base import CallProvider

__all__ = ["create", "names", "register"]

Factory = Callable[..., CallProvider]
_FACTORIES: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    _FACTORIES[name] = factory


def names() -> list[str]:
    _load_builtins()
    return sorted(_FACTORIES)


def create(name: str, **options: Any) -> CallProvider:
    """Build the provider called ``name``; unknown names list the known ones."""
    _load_builtins()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        known = ", ".join(sorted(_FACTORIES))
        raise ConfigError(f"unknown provider {name!r}; known providers: {known}") from None
    return factory(**options)


def _load_builtins() -> None:
    from voicereplay.providers import files, retell, vapi  # noqa: F401  (they register)
