"""A plain named registry of factories: built-ins register the way a plugin would.

    STT = Registry[SpeechToText]("speech-to-text backend", builtins=("voicereplay.simulate.stt",))
    STT.register("faster-whisper", FasterWhisperSTT)
    STT.create("faster-whisper", model_path=...)   # unknown names list the known ones
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from voicereplay.errors import ConfigError

__all__ = ["Registry", "load_plugins"]

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, *, builtins: Iterable[str] = ()) -> None:
        self.kind = kind
        self._builtins = tuple(builtins)
        self._loaded = False
        self._lock = threading.RLock()
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str, factory: Callable[..., T]) -> None:
        self._factories[name] = factory

    def names(self) -> list[str]:
        self._load()
        return sorted(self._factories)

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``; unknown names list the known ones."""
        self._load()
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def create(self, name: str, **options: Any) -> T:
        return self.factory(name)(**options)

    def _load(self) -> None:
        # Worker threads may ask at once: the others wait until the built-ins are registered
        # (re-entrant, for a built-in module that looks itself up while it is imported).
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                for module in self._builtins:
                    importlib.import_module(module)
                self._loaded = True


def load_plugins(modules: Iterable[str]) -> list[str]:
    """Import each plugin module and call its ``register()`` when it has one (a plugin may
    also register backends on import). A worker loads the same plugins as the command that
    submitted its jobs, so a backend chosen by name exists in both."""
    loaded: list[str] = []
    for name in modules:
        name = name.strip()
        if not name:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"cannot import plugin {name!r}: {exc}") from exc
        register = getattr(module, "register", None)
        if callable(register):
            register()
        loaded.append(name)
    return loaded
