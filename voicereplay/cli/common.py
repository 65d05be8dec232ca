"""What every ``voicereplay`` command shares: consoles, error handling, options, parsing."""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from voicereplay.config import Settings
from voicereplay.errors import ConfigError, VoiceReplayError
from voicereplay.pipeline.listing import relative_age
from voicereplay.store import Store

__all__ = ["JsonOpt", "ProviderOpt", "as_dict", "check_provider", "err", "error_line",
           "handle_errors", "open_store", "out", "parse_when", "print_json", "settings",
           "use_timeout"]

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
if not out.is_terminal:  # piped or captured: room for ids and times instead of 80 columns
    out.width = 140

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
TimeoutOpt = Annotated[float | None, typer.Option(
    "--timeout", min=0.1, help="Seconds per provider HTTP request (default: "
                               "VOICEREPLAY_HTTP_TIMEOUT, else 30).")]
PROVIDERS = ("vapi", "retell", "files")


def check_provider(value: str | None, *, stored: bool = False) -> str | None:
    """``value`` if it names a provider (for stored calls: vapi or retell), else ConfigError."""
    known = PROVIDERS[:2] if stored else PROVIDERS
    if value is not None and value not in known:
        raise ConfigError(f"unknown provider {value!r}; known: {', '.join(sorted(known))}")
    return value


ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", "-p",
                 help="vapi, retell or files (default: files with --dir, else vapi)."),
]


def handle_errors(fn: F) -> F:
    """Turn a VoiceReplayError into one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _settings.clear()  # each command reads the environment once
        try:
            return fn(*args, **kwargs)
        except VoiceReplayError as exc:
            error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def error_line(message: str, label: str = "error", *, sep: str = ": ") -> None:
    """``label: message`` on stderr; the message is printed literally (never as markup)."""
    err.print(Text.assemble((f"{label}{sep}", "bold red"), message), soft_wrap=True)


_settings: list[Settings] = []


def settings() -> Settings:
    """This command's settings, read from the environment once (see voicereplay.config)."""
    if not _settings:
        from voicereplay.registry import load_plugins

        read = Settings.from_env()
        load_plugins(read.plugins)
        _settings.append(read)
    return _settings[0]


def use_timeout(seconds: float | None) -> None:
    """``--timeout``: this command's provider HTTP timeout (VOICEREPLAY_HTTP_TIMEOUT's role)."""
    if seconds is not None:
        from dataclasses import replace

        _settings[:] = [replace(settings(), http_timeout=seconds)]


def open_store() -> Store:
    return Store.from_settings(settings())


def print_json(data: Any) -> None:
    """``data`` as strict JSON (non-finite numbers become null, never bare Infinity)."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, ensure_ascii=False, default=str,
                                allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def parse_when(value: str | None, *, option: str) -> datetime | None:
    """ISO date/datetime (naive = UTC) or a relative age like ``30m``, ``24h``, ``7d``, ``2w``."""
    if value is None:
        return None
    ago = relative_age(value)
    if ago is not None:
        return ago
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {value!r}: use an ISO date (2025-06-01, 2025-06-01T12:00Z) or an age "
            "like 24h, 7d"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)

def parse_interval(value: str | None, *, option: str) -> float | None:
    """A span like ``30s``, ``10m``, ``1h``, ``1d`` (or plain seconds), in seconds."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
    seconds = (float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[
        match.group(2)]) if match else 0.0
    if seconds < 1:
        raise ConfigError(f"{option} {value!r}: use a span like 30s, 10m, 1h (at least 1 s)")
    return seconds


def use_rules(path: Path | None) -> None:
    """``--rules``: this command's flag rules file (VOICEREPLAY_RULES's role)."""
    if path is not None:
        from dataclasses import replace

        _settings[:] = [replace(settings(), rules_file=path)]


def as_dict(row: Any) -> dict[str, Any]:
    if hasattr(row, "model_dump"):
        return dict(row.model_dump(mode="json"))
    return asdict(row)
