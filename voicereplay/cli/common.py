"""What every ``voicereplay`` command shares: consoles, error handling, options, parsing."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from voicereplay.config import Settings
from voicereplay.errors import ConfigError, VoiceReplayError
from voicereplay.store import Store

__all__ = ["JsonOpt", "ProviderOpt", "as_dict", "err", "handle_errors", "open_store", "out",
           "parse_when", "print_json"]

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
if not out.is_terminal:  # piped or captured: room for ids and times instead of 80 columns
    out.width = 140

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", "-p", help="vapi, retell or files (default: files with --dir, "
                                          "else vapi)."),
]


def handle_errors(fn: F) -> F:
    """Turn a VoiceReplayError into one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VoiceReplayError as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def open_store() -> Store:
    return Store.from_settings(Settings.from_env())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


_RELATIVE = re.compile(r"^(\d+)([mhdw])$")


def parse_when(value: str | None, *, option: str) -> datetime | None:
    """ISO date/datetime (naive = UTC) or a relative age like ``30m``, ``24h``, ``7d``, ``2w``."""
    if value is None:
        return None
    match = _RELATIVE.match(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        span = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount),
                "d": timedelta(days=amount), "w": timedelta(weeks=amount)}[unit]
        return datetime.now(UTC) - span
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {value!r}: use an ISO date (2025-06-01, 2025-06-01T12:00Z) or an age "
            "like 24h, 7d"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)



def as_dict(row: Any) -> dict[str, Any]:
    if hasattr(row, "model_dump"):
        return dict(row.model_dump(mode="json"))
    return asdict(row)
