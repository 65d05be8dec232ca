"""Who may use the web app, and forms that cannot be forged from another site.

- ``VOICEREPLAY_API_TOKEN`` unset: the app is open (``serve`` then listens on loopback only).
- Set: the API takes ``Authorization: Bearer <token>``; the pages a sign-in form that sets an
  HttpOnly, SameSite=Strict cookie. (Being written: issue 10.)
- Cross-site request forgery: every state-changing request made with the cookie (forms, htmx)
  carries the CSRF token — the hidden form field ``csrf_token`` or the ``X-CSRF-Token`` header —
  which must equal the ``vr_csrf`` cookie (double submit). Templates call
  ``{{ csrf_token(request) }}``; the middleware sets the cookie when it is missing.
"""

from __future__ import annotations

import secrets

from fastapi import Request

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "CSRF_HEADER", "csrf_token"]

CSRF_COOKIE = "vr_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (from its cookie, or a new one the response will set)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf_token", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.csrf_token = token
    return str(token)
