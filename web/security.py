"""Who may use the web app, and requests that cannot be forged from another site.

**Sign-in.** With ``VOICEREPLAY_API_TOKEN`` unset the app is open (``voicereplay serve`` then
listens on loopback only, unless ``--insecure``). With a token set, every path but the public
prefixes (``/static/``, and whatever :class:`SecurityMiddleware` is given, e.g. webhooks with
their own signatures) needs either

- ``Authorization: Bearer <token>`` (scripts, CI): a wrong token is a 401, never a redirect; or
- the session cookie ``vr_session`` that ``POST /signin`` sets after checking the token with a
  constant-time compare: HttpOnly, SameSite=Strict, holding a signed expiry (HMAC-SHA256 with a
  key derived from the token) — not the token. Changing the token signs everyone out.

Without either, ``/api/`` and ``/files/`` answer 401 JSON; a page redirects to ``/signin``.

**Cross-site request forgery.** Every POST, PUT, PATCH and DELETE not carrying a valid bearer
token — whether a token is configured or not, since a local app is reachable from any page the
browser opens — must

1. come from this site: an ``Origin`` header (or, without one, a ``Referer``) naming another
   host, or ``null``, is refused (the host is compared, not the scheme, so a TLS proxy in front
   does not break it); and
2. carry the CSRF token (double submit): the form field ``csrf_token`` or the header
   ``X-CSRF-Token`` equal to the ``vr_csrf`` cookie. Templates call ``{{ csrf_token(request) }}``;
   this middleware sets the cookie when a template made a new token. A JSON body
   (``Content-Type: application/json``) is exempt from this step only: another site cannot send
   one without a CORS preflight, which this app never grants — so ``curl`` and scripts can use
   the API of an open local app without a cookie.

A refused request is a 403 (``CSRFError``), JSON under ``/api/`` and ``/files/``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from fastapi import Request
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "CSRF_HEADER", "PUBLIC_PREFIXES", "SESSION_COOKIE",
           "SecurityMiddleware", "check_token", "csrf_token", "new_session", "read_limited",
           "safe_next", "valid_session"]

CSRF_COOKIE = "vr_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_COOKIE = "vr_session"
SESSION_SECONDS = 7 * 24 * 3600
PUBLIC_PREFIXES: tuple[str, ...] = ("/static/", "/webhooks/")  # webhooks: signed
SIGN_IN_PATHS = ("/signin",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
JSON_PREFIXES = ("/api/", "/files/")
MAX_FORM_BYTES = 16 * 1024 * 1024  # a form body read to find its csrf_token field


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (from its cookie, or a new one the response will set)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf_token", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.csrf_token = token
    return str(token)


# -- the session cookie ---------------------------------------------------------------------
def _key(api_token: str) -> bytes:
    return hmac.new(api_token.encode(), b"voicereplay session v1", hashlib.sha256).digest()


def _mac(api_token: str, body: str) -> str:
    return hmac.new(_key(api_token), body.encode(), hashlib.sha256).hexdigest()


def new_session(api_token: str, *, now: float | None = None,
                seconds: int = SESSION_SECONDS) -> str:
    """A signed session value: ``v1.<expires>.<nonce>.<mac>`` (the token is not in it)."""
    body = f"v1.{int((now if now is not None else time.time()) + seconds)}." \
           f"{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(api_token, body)}"


def valid_session(api_token: str, value: str | None, *, now: float | None = None) -> bool:
    """Was ``value`` signed with this token, and has it not expired?"""
    if not value or value.count(".") != 3:
        return False
    body, _, mac = value.rpartition(".")
    if not hmac.compare_digest(mac.encode(), _mac(api_token, body).encode()):
        return False
    try:
        expires = int(body.split(".")[1])
    except ValueError:
        return False
    return (now if now is not None else time.time()) < expires


def check_token(api_token: str, given: str) -> bool:
    """Constant-time comparison of a token a user gave with the configured one."""
    return hmac.compare_digest(given.encode(), api_token.encode())


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/calls"
    return target


# -- the middleware ---------------------------------------------------------------------------
class SecurityMiddleware:
    """Sign-in and CSRF checks for every HTTP request (see the module docs).

    ``api_token``: the configured token, None for an open app. ``public``: path prefixes that
    need neither (static files; webhooks that verify their own signatures)."""

    def __init__(self, app: ASGIApp, *, api_token: str | None,
                 public: Iterable[str] = PUBLIC_PREFIXES) -> None:
        self.app = app
        self.api_token = api_token or None
        self.public = tuple(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(self.public):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":  # none yet; when there are, they need a sign-in
            if self.api_token is None or self._signed_in(HTTPConnection(scope)):
                await self.app(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        scope.setdefault("state", {})
        send = self._setting_csrf_cookie(scope, send)
        request = Request(scope, receive)
        bearer = self._bearer(request)
        if self.api_token is not None:
            if bearer is not None and not check_token(self.api_token, bearer):
                await self._unauthorized(request, "the bearer token is wrong")(
                    scope, receive, send)
                return
            if not self._signed_in(request) and scope["path"] not in SIGN_IN_PATHS:
                await self._sign_in_first(request)(scope, receive, send)
                return
        if request.method in SAFE_METHODS or (bearer is not None and self.api_token):
            await self.app(scope, receive, send)
            return
        refusal, body = await self._forged(request)
        if refusal is not None:
            await _error(request, 403, "CSRFError", refusal)(scope, receive, send)
            return
        await self.app(scope, _replaying(body, receive) if body is not None else receive, send)

    def _signed_in(self, request: HTTPConnection) -> bool:
        """A valid bearer token or session cookie (with a token configured)."""
        if self.api_token is None:
            return False
        bearer = self._bearer(request)
        if bearer is not None:
            return check_token(self.api_token, bearer)
        return valid_session(self.api_token, request.cookies.get(SESSION_COOKIE))

    @staticmethod
    def _bearer(request: HTTPConnection) -> str | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None

    @staticmethod
    def _unauthorized(request: Request, message: str) -> Response:
        response = _error(request, 401, "Unauthorized", message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="voicereplay"'
        return response

    def _sign_in_first(self, request: Request) -> Response:
        path = request.url.path
        if path.startswith(JSON_PREFIXES) or request.method not in ("GET", "HEAD"):
            return self._unauthorized(
                request, "sign in: send Authorization: Bearer <VOICEREPLAY_API_TOKEN>")
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)

    async def _forged(self, request: Request) -> tuple[str | None, bytes | None]:
        """Why the request looks forged (None when it does not), and its body when it had
        to be read (to be handed on to the app)."""
        host = request.headers.get("host", "").lower()
        origin = request.headers.get("origin")
        referer = request.headers.get("referer")
        if origin is not None:
            if origin == "null" or urlsplit(origin).netloc.lower() != host:
                return f"cross-site request refused (Origin {origin})", None
        elif referer and urlsplit(referer).netloc.lower() != host:
            return "cross-site request refused (Referer from another site)", None
        if _is_json(request.headers):
            return None, None
        cookie = request.cookies.get(CSRF_COOKIE)
        given = request.headers.get(CSRF_HEADER)
        body = None
        if given is None and _is_form(request.headers):
            body = await read_limited(request, MAX_FORM_BYTES)
            if body is None:
                return "the form is too large to check", None
            form = await Request(request.scope, _replaying(body, None)).form()
            field = form.get(CSRF_FIELD)
            given = field if isinstance(field, str) else None
            await form.close()
        if not cookie or not given or not hmac.compare_digest(cookie.encode(), given.encode()):
            return ("the CSRF token is missing or does not match: reload the page and submit "
                    "again (API clients: send a JSON body, Content-Type: application/json, "
                    "or the bearer token)"), body
        return None, body

    @staticmethod
    def _setting_csrf_cookie(scope: Scope, send: Send) -> Send:
        """``send`` that adds the ``vr_csrf`` cookie when a template made a new token."""
        existing = Request(scope).cookies.get(CSRF_COOKIE)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                token = scope.get("state", {}).get("csrf_token")
                if token and token != existing:
                    headers = MutableHeaders(scope=message)
                    secure = "; Secure" if scope.get("scheme") == "https" else ""
                    headers.append("set-cookie", f"{CSRF_COOKIE}={token}; Path=/; "
                                                 f"SameSite=Lax{secure}")
            await send(message)

        return sending


def _content_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _is_json(headers: Headers) -> bool:
    kind = _content_type(headers)
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


def _is_form(headers: Headers) -> bool:
    return _content_type(headers) in ("application/x-www-form-urlencoded",
                                      "multipart/form-data")


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The raw body, or None once it passes ``limit`` bytes (a declared Content-Length over
    it is refused before anything is read)."""
    if int(request.headers.get("content-length") or 0) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive | None) -> Receive:
    """A ``receive`` that gives ``body`` once, then waits on the real one (disconnects)."""
    done = False

    async def replay() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        if receive is None:
            return {"type": "http.disconnect"}
        return await receive()

    return replay


def _error(request: Request, status: int, kind: str, message: str) -> Response:
    if request.url.path.startswith(JSON_PREFIXES) or "application/json" in request.headers.get(
            "accept", ""):
        return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)
    from voicereplay.web.errors import error_response

    return error_response(request, status, kind, message)
