"""A plain named registry of factories: built-ins register the way a plugin would.

    STT = Registry[SpeechToText]("speech-to-text backend", builtins=("voicereplay.simulate.stt",))
    STT.register("faster-whisper", FasterWhisperSTT)
    STT.create("faster-whisper", model_path=...)   # unknown names list the known ones
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from voicereplay.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, *, builtins: Iterable[str] = ()) -> None:
        self.kind = kind
        self._builtins = tuple(builtins)
        self._loaded = False
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
        if not self._loaded:
            self._loaded = True
            for module in self._builtins:
                importlib.import_module(module)
