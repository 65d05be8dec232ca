"""The Jinja2 templates of the pages (autoescaped: provider and user text is never markup)."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from voicereplay.web.security import csrf_token

__all__ = ["STATIC", "templates"]

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["csrf_token"] = csrf_token
