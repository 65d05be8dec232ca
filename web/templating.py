"""The Jinja2 templates of the pages (autoescaped: provider and user text is never markup),
and the filters they format numbers with."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from voicereplay.compare.aggregate_stats import format_value
from voicereplay.web.security import csrf_token

__all__ = ["STATIC", "templates"]

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["csrf_token"] = csrf_token


def _delta(value: float | None, unit: str) -> str:
    """A change with its sign: ``+0.12 s``; ``—`` when there is none."""
    return "—" if value is None else format_value(value, unit)


def _value(value: float | None, unit: str) -> str:
    """A measured value: ``1.20 s``; ``—`` when there is none."""
    return "—" if value is None else format_value(value, unit).lstrip("+")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


templates.env.filters["delta"] = _delta
templates.env.filters["value"] = _value
templates.env.filters["percent"] = _percent
