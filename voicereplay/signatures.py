"""Verifying that a webhook really comes from Vapi or Retell (pure functions, no I/O).

- Vapi (its server "authentication plans", see ``shared/reference/provider-apis.md`` §1.6):
  :class:`VapiAuth` is one of

  - ``secret``: a shared secret in a header (``X-Vapi-Secret`` by default; the legacy
    ``server.secret``, i.e. a bearer plan with ``bearerPrefixEnabled: false``);
  - ``bearer``: ``Authorization: Bearer <token>`` (header name configurable);
  - ``hmac``: ``signaturePrefix + hex|base64(HMAC_alg(secret, payload))`` in ``x-signature``,
    where ``payload`` is ``payloadFormat`` (default ``"{timestamp}.{body}"``) filled with the
    ``x-timestamp`` header and the raw body; the timestamp must be within ``max_skew``
    seconds of now (seconds or milliseconds since the epoch are both accepted).

- Retell: ``x-retell-signature: v=<ms>,d=<hex>`` with
  ``d = hex(HMAC-SHA256(api_key, body + str(ms)))``, within five minutes — exactly what
  ``retell.lib.webhook_auth.verify`` of retell-sdk checks.

Every check returns nothing or raises :class:`WebhookAuthError` with a one-line reason that
never contains a secret. All comparisons are constant-time (:func:`hmac.compare_digest`).
The clock is a parameter (``now``: seconds since the epoch) so tests need no wall clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from voicereplay.errors import VoiceReplayError

__all__ = [
    "RETELL_SIGNATURE_HEADER",
    "RETELL_WINDOW_MS",
    "VapiAuth",
    "WebhookAuthError",
    "retell_signature",
    "verify_retell",
    "verify_vapi",
]

RETELL_SIGNATURE_HEADER = "x-retell-signature"
RETELL_WINDOW_MS = 5 * 60 * 1000
_RETELL_FORMAT = re.compile(r"v=(\d+),d=([0-9a-f]{64})")
_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}

VapiScheme = Literal["secret", "bearer", "hmac"]


class WebhookAuthError(VoiceReplayError):
    """A webhook whose sender could not be verified (HTTP 401)."""

    exit_code = 3
    http_status = 401


@dataclass(frozen=True)
class VapiAuth:
    """How Vapi webhooks are authenticated (one of Vapi's authentication plans).

    ``header``: where the secret or token is (default ``X-Vapi-Secret`` for ``secret``,
    ``Authorization`` for ``bearer``); the HMAC fields mirror Vapi's ``HMACAuthenticationPlan``.
    """

    scheme: VapiScheme
    secret: str = field(repr=False)
    header: str | None = None
    algorithm: str = "sha256"
    signature_header: str = "x-signature"
    timestamp_header: str = "x-timestamp"
    payload_format: str = "{timestamp}.{body}"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    max_skew: float = 300.0

    def __post_init__(self) -> None:
        if self.scheme not in ("secret", "bearer", "hmac"):
            raise ValueError(f"unknown Vapi webhook scheme {self.scheme!r}")
        if self.algorithm not in _ALGORITHMS:
            raise ValueError(f"unsupported HMAC algorithm {self.algorithm!r}; "
                             f"use one of {', '.join(_ALGORITHMS)}")
        if self.encoding not in ("hex", "base64"):
            raise ValueError(f"unknown signature encoding {self.encoding!r}")
        if not self.secret:
            raise ValueError("the Vapi webhook secret is empty")
        unknown = set(re.findall(r"{([^}]*)}", self.payload_format)) - {"timestamp", "body"}
        if unknown:
            raise ValueError(f"payload format {self.payload_format!r}: only {{timestamp}} and "
                             f"{{body}} are supported, not {', '.join(sorted(unknown))}")

    @property
    def secret_header(self) -> str:
        return self.header or ("Authorization" if self.scheme == "bearer" else "X-Vapi-Secret")

    def sign(self, body: str, timestamp: str) -> str:
        """The signature header value Vapi would send for ``body`` at ``timestamp``."""
        payload = self.payload_format.replace("{timestamp}", timestamp).replace("{body}", body)
        mac = hmac.new(self.secret.encode(), payload.encode(), _ALGORITHMS[self.algorithm])
        value = (mac.hexdigest() if self.encoding == "hex"
                 else base64.b64encode(mac.digest()).decode())
        return self.prefix + value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (works on plain dicts and Starlette headers)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _timestamp_seconds(raw: str) -> float:
    """A timestamp header as seconds since the epoch; milliseconds (13 digits) accepted."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise WebhookAuthError(f"the timestamp header {raw[:40]!r} is not a number")
    return value / 1000.0 if value > 1e11 else value


def verify_vapi(auth: VapiAuth, body: bytes, headers: Mapping[str, str], *,
                now: float | None = None) -> None:
    """Raise :class:`WebhookAuthError` unless ``body`` + ``headers`` pass ``auth``."""
    if auth.scheme in ("secret", "bearer"):
        given = _header(headers, auth.secret_header)
        if given is None:
            raise WebhookAuthError(f"missing the {auth.secret_header} header")
        expected = f"Bearer {auth.secret}" if auth.scheme == "bearer" else auth.secret
        if auth.scheme == "bearer" and given[:7].lower() == "bearer ":
            given = "Bearer " + given[7:].strip()
        if not _same(given.strip(), expected):
            raise WebhookAuthError(f"the {auth.secret_header} header does not match")
        return
    signature = _header(headers, auth.signature_header)
    if signature is None:
        raise WebhookAuthError(f"missing the {auth.signature_header} header")
    timestamp = _header(headers, auth.timestamp_header)
    if timestamp is None:
        if "{timestamp}" in auth.payload_format:
            raise WebhookAuthError(f"missing the {auth.timestamp_header} header")
        timestamp = ""
    else:
        skew = abs((time.time() if now is None else now) - _timestamp_seconds(timestamp))
        if skew > auth.max_skew:
            raise WebhookAuthError(f"the signature timestamp is {skew:.0f} s away from now "
                                   f"(at most {auth.max_skew:.0f} s allowed)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookAuthError("the body is not UTF-8, so it cannot be verified") from None
    if not _same(signature.strip(), auth.sign(text, timestamp)):
        raise WebhookAuthError(f"the {auth.signature_header} signature does not match "
                               f"(HMAC-{auth.algorithm.upper()}, {auth.encoding})")


def retell_signature(body: str, api_key: str, timestamp_ms: int) -> str:
    """The ``x-retell-signature`` value Retell sends for ``body`` at ``timestamp_ms``."""
    digest = hmac.new(api_key.encode(), (body + str(timestamp_ms)).encode(),
                      hashlib.sha256).hexdigest()
    return f"v={timestamp_ms},d={digest}"


def verify_retell(api_key: str, body: bytes, headers: Mapping[str, str], *,
                  now: float | None = None) -> None:
    """Raise :class:`WebhookAuthError` unless the ``x-retell-signature`` header signs ``body``
    with ``api_key`` within five minutes of ``now`` (as retell-sdk's ``verify``)."""
    signature = _header(headers, RETELL_SIGNATURE_HEADER)
    if signature is None:
        raise WebhookAuthError(f"missing the {RETELL_SIGNATURE_HEADER} header")
    match = _RETELL_FORMAT.fullmatch(signature.strip())
    if match is None:
        raise WebhookAuthError(f"the {RETELL_SIGNATURE_HEADER} header is not v=<ms>,d=<hex>")
    stamp = int(match.group(1))
    now_ms = int((time.time() if now is None else now) * 1000)
    if abs(now_ms - stamp) > RETELL_WINDOW_MS:
        raise WebhookAuthError(f"the signature timestamp is {abs(now_ms - stamp) // 1000} s "
                               "away from now (at most 300 s allowed)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookAuthError("the body is not UTF-8, so it cannot be verified") from None
    if not _same(signature.strip(), retell_signature(text, api_key, stamp)):
        raise WebhookAuthError(f"the {RETELL_SIGNATURE_HEADER} signature does not match")
