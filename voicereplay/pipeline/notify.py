"""Notifications: where a triggered replay's outcome is posted (a rule's ``notify`` list), and
one delivery attempt.

A :class:`NotifyTarget` is one URL and the format it speaks: ``json`` (voicereplay's own
summary) or ``slack`` (an incoming-webhook message). A notification job builds the summary of
the finished replay job (:func:`build_summary`), renders it for the target
(:func:`render`) and makes one attempt to deliver it (:func:`post`); retrying with backoff is
the job's part, guided by the :class:`~voicereplay.errors.NotificationError` it gets:
``retryable`` for connection errors, timeouts, 429 (``retry_after`` from ``Retry-After``) and
5xx, permanent for other 4xx and bad redirects.

Secrets: a Slack webhook URL is itself a secret (the last path segment), and extra headers
usually carry a token. Errors and logs name a target by :func:`redacted` — scheme, host and
path with long segments shortened, never the query string or a header value.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from voicereplay.errors import NotificationError
from voicereplay.pipeline.notify_format import escape, render, slack_message
from voicereplay.pipeline.notify_summary import build_summary
from voicereplay.retry import parse_retry_after

__all__ = ["NotificationError", "NotifyTarget", "build_summary", "escape", "post", "redacted",
           "render", "slack_message"]

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
SECRET_SEGMENT = 16  # path segments this long are shortened in messages (tokens, Slack secrets)
BODY_CHARS = 200  # characters of a refusing receiver's body quoted in the error
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field name
_VALUE = re.compile(r"[\x20-\x7e\t]*")  # visible ASCII, spaces and tabs


class NotifyTarget(BaseModel):
    """One place a triggered replay's summary is posted."""

    # the URL and header values are secrets: a validation error never quotes them
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: str = Field(description="http(s) URL the summary is POSTed to")
    format: Literal["json", "slack"] = Field(
        default="json", description="json: voicereplay's summary; slack: an incoming-webhook "
                                    "message")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="extra request headers (never logged)")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("a notification URL starts with http:// or https://")
        return url

    @field_validator("headers")
    @classmethod
    def _sendable(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"{name!r} is not an HTTP header name")
            if not _VALUE.fullmatch(value):  # the value is a secret: not quoted
                raise ValueError(f"the value of header {name} has characters HTTP cannot "
                                 "send (line breaks, control or non-ASCII characters)")
        return headers

    def __repr__(self) -> str:  # the URL and headers are secrets
        return f"NotifyTarget(url={redacted(self.url)!r}, format={self.format!r})"

    __str__ = __repr__


def redacted(url: str) -> str:
    """``url`` as errors and logs may name it: scheme, host (and port) and path, with path
    segments of 16 characters or more shortened to their first four (a Slack webhook's secret,
    a token in the path); never the query string, the fragment or user info."""
    parts = urlsplit(url)
    segments = [s if len(s) < SECRET_SEGMENT else s[:4] + "…" for s in parts.path.split("/")]
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{'/'.join(segments)}"


def _version() -> str:
    from voicereplay import __version__

    return __version__


def post(target: NotifyTarget, payload: dict[str, Any], *, timeout: float = 10.0,
         client: httpx.Client | None = None) -> int:
    """POST ``payload`` as JSON to ``target`` once (following up to five redirects, which are
    POSTed to again: a GET would deliver nothing); the HTTP status on 2xx. Any other outcome is
    a :class:`NotificationError` (see the module docs). A redirect to another origin does not
    carry the target's extra headers along."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    base = {"content-type": "application/json", "user-agent": f"voicereplay/{_version()}"}
    owned = client is None
    http = client or httpx.Client(timeout=timeout)
    name = redacted(target.url)
    try:
        url = target.url
        for _hop in range(MAX_REDIRECTS + 1):
            same_origin = _origin(url) == _origin(target.url)
            headers = {**base, **target.headers} if same_origin else base
            response = _send(http, url, body, headers, timeout, name, target)
            if response.is_success:
                log.debug("notification delivered to %s: HTTP %d", name, response.status_code)
                return response.status_code
            if not response.is_redirect:
                raise _refused(response, name, target)
            url = _next_url(url, response, name)
        raise NotificationError(f"notification to {name}: more than {MAX_REDIRECTS} redirects",
                                target=name, status=None)
    finally:
        if owned:
            http.close()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _send(http: httpx.Client, url: str, body: bytes, headers: dict[str, str], timeout: float,
          name: str, target: NotifyTarget) -> httpx.Response:
    try:
        return http.post(url, content=body, headers=headers, timeout=timeout,
                         follow_redirects=False)
    except httpx.TimeoutException:
        raise NotificationError(f"notification to {name}: no answer within {timeout:g} s",
                                target=name, retryable=True) from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL):
        raise NotificationError(f"notification to {name}: not a URL that can be posted to",
                                target=name) from None
    except httpx.LocalProtocolError:  # a request we cannot send: sending again will not help
        raise NotificationError(f"notification to {name}: the request could not be sent "
                                "(check the target's headers)", target=name) from None
    except httpx.TransportError as exc:  # the cause may hold the URL: not chained
        reason = _scrub(str(exc) or type(exc).__name__, target)
        raise NotificationError(f"notification to {name}: could not connect "
                                f"({type(exc).__name__}: {reason})",
                                target=name, retryable=True) from None


def _next_url(url: str, response: httpx.Response, name: str) -> str:
    status = response.status_code  # a redirect status with a Location (is_redirect)
    nxt = urljoin(url, response.headers["location"].strip())
    if urlsplit(nxt).scheme not in ("http", "https"):
        raise NotificationError(f"notification to {name}: HTTP {status} redirects to a "
                                f"{urlsplit(nxt).scheme or 'schemeless'} URL, not http(s)",
                                target=name, status=status)
    return nxt


def _refused(response: httpx.Response, name: str, target: NotifyTarget) -> NotificationError:
    status = response.status_code
    said = _scrub(" ".join(response.text[:BODY_CHARS * 2].split())[:BODY_CHARS], target)
    detail = f": {said}" if said else ""
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        wait = f" (retry after {retry_after:g} s)" if retry_after is not None else ""
        return NotificationError(f"notification to {name}: HTTP 429, rate limited{wait}",
                                 target=name, status=status, retryable=True,
                                 retry_after=retry_after)
    if status >= 500:
        return NotificationError(f"notification to {name}: HTTP {status}{detail}",
                                 target=name, status=status, retryable=True)
    return NotificationError(f"notification to {name}: HTTP {status}, refused{detail}",
                             target=name, status=status)


def _scrub(text: str, target: NotifyTarget) -> str:
    """``text`` without the target's URL, query string or header values (a receiver or an
    exception may echo them)."""
    parts = urlsplit(target.url)
    secrets = [target.url, parts.query, parts.path, *target.headers.values()]
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
