"""The HTTP client every provider adapter talks through.

One place owns retries and error translation: 429 (honouring ``Retry-After``), 5xx, timeouts
and connection errors are retried by the shared :class:`~voicereplay.retry.RetryPolicy`
(exponential backoff and jitter); 401/403/404 fail at once. Failures become
:mod:`voicereplay.errors` types whose message names what was asked for (``what``, e.g.
``"call 1f2e…"``), how many tries took how long, and what to check. The API key is sent only as
a header and is masked in every message, even when an error body echoes it. Tests inject an
``httpx`` transport.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from voicereplay.config import DEFAULT_HTTP_TIMEOUT
from voicereplay.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    PayloadError,
    ProviderError,
    ProviderUnavailable,
    RateLimitError,
    VoiceReplayError,
)
from voicereplay.providers.fields import check_depth
from voicereplay.retry import RetryPolicy, parse_retry_after

__all__ = ["ProviderHTTP", "path_segment"]

_RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


class ProviderHTTP:
    def __init__(
        self,
        provider: str,
        base_url: str,
        api_key: str | None,
        *,
        key_env: str,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_HTTP_TIMEOUT,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_connections: int = 64,
    ) -> None:
        self.provider = provider
        self.key_env = key_env
        self.retry = retry or RetryPolicy(
            attempts=max_retries + 1, backoff=backoff, max_backoff=max_backoff, sleep=sleep
        )
        self.max_retries = self.retry.attempts - 1
        self.timeout = timeout
        self._clock = clock
        self._secrets = [api_key] if api_key else []
        headers = {"Accept": "application/json", "User-Agent": "voicereplay"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._has_key = bool(api_key)
        self._config_cache: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
        self._cache_lock = threading.Lock()
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            transport=transport,
            timeout=timeout,
            follow_redirects=True,  # httpx drops Authorization when a redirect leaves the host
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
        )

    def close(self) -> None:
        self.client.close()

    # -- requests ---------------------------------------------------------------------------
    def get_json(self, path: str, *, what: str, params: dict[str, Any] | None = None) -> Any:
        return self._json(self.request("GET", path, what=what, params=params), what)

    def get_config_json(self, path: str, *, what: str, params: dict[str, Any] | None = None) -> Any:
        """``get_json`` for agent configuration, fetched once per client.

        An import touches the same assistant (or agent at a version) for call after call; this
        asks the provider once and hands each caller its own copy.
        """
        key = (path, tuple(sorted((params or {}).items())))
        with self._cache_lock:
            if key in self._config_cache:
                return copy.deepcopy(self._config_cache[key])
        body = self.get_json(path, what=what, params=params)
        with self._cache_lock:
            self._config_cache[key] = body
        return copy.deepcopy(body)

    def post_json(self, path: str, body: dict[str, Any], *, what: str) -> Any:
        return self._json(self.request("POST", path, what=what, json=body), what)

    def request(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        started = self._clock()
        for attempt in range(self.retry.attempts):
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if not self.retry.gives_up(attempt):
                    self.retry.sleep(self.retry.delay(attempt))
                    continue
                raise self._unreachable(exc, what, attempt + 1, started) from exc
            if response.status_code in _RETRY_STATUSES and not self.retry.gives_up(attempt):
                self.retry.sleep(self._delay(attempt, response))
                continue
            self._raise_for_status(response, what, attempt + 1, started)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def stream(
        self, url: str, *, what: str, authorize: bool | None = None
    ) -> Iterator[Iterator[bytes]]:
        """Stream a (possibly redirected) download, retrying before the first byte arrives.

        The API key goes only to the API's own host: an absolute URL elsewhere (a CDN, a signed
        storage URL) is fetched without it, as httpx already does for cross-host redirects.
        ``authorize=False`` never sends it, for URLs that are not the API's whatever their host.
        """
        started = self._clock()
        for attempt in range(self.retry.attempts):
            request = self.client.build_request("GET", url)
            foreign = (request.url.host, request.url.port) != (
                self.client.base_url.host, self.client.base_url.port
            )
            if authorize is False or (authorize is None and foreign):
                request.headers.pop("Authorization", None)
            try:
                response = self.client.send(request, stream=True)
                with contextlib.closing(response):
                    retry = response.status_code in _RETRY_STATUSES
                    if retry and not self.retry.gives_up(attempt):
                        delay = self._delay(attempt, response)
                    else:
                        if response.is_error:
                            response.read()
                        self._raise_for_status(response, what, attempt + 1, started)
                        yield self._guarded(response.iter_bytes(1 << 16), what)
                        return
            except httpx.TransportError as exc:
                if self.retry.gives_up(attempt):
                    raise self._unreachable(exc, f"downloading {what}", attempt + 1,
                                            started) from exc
                delay = self.retry.delay(attempt)
            self.retry.sleep(delay)

    # -- helpers ----------------------------------------------------------------------------
    def _guarded(self, chunks: Iterator[bytes], what: str) -> Iterator[bytes]:
        """Chunks of a started download; a broken connection mid-body is not retried here."""
        try:
            yield from chunks
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"{self._name}: the download of {what} broke off ({type(exc).__name__}); "
                "try the import again",
                provider=self.provider,
            ) from exc

    @property
    def _name(self) -> str:
        return {"vapi": "Vapi", "retell": "Retell"}.get(self.provider, self.provider)

    def _delay(self, attempt: int, response: httpx.Response) -> float:
        return self.retry.delay(attempt, parse_retry_after(response.headers.get("Retry-After")))

    def _mask(self, text: str) -> str:
        """``text`` with the API key replaced, for error bodies that echo request headers."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _tries(self, tries: int, started: float) -> str:
        return f"{tries} {'try' if tries == 1 else 'tries'} in {self._clock() - started:.1f} s"

    def _unreachable(
        self, exc: httpx.TransportError, what: str, tries: int, started: float
    ) -> ProviderUnavailable:
        spent = self._tries(tries, started)
        if isinstance(exc, httpx.TimeoutException):
            message = (
                f"{self._name}: {what} timed out after {spent} ({self.timeout:g} s allowed per "
                "try); the provider may be slow or down: try again later, or change the time "
                "allowed with VOICEREPLAY_HTTP_TIMEOUT or --timeout"
            )
        else:
            message = (
                f"{self._name}: cannot reach {self.client.base_url} for {what} after {spent} "
                f"({type(exc).__name__}); check the base URL and your network"
            )
        return ProviderUnavailable(self._mask(message), provider=self.provider)

    def _raise_for_status(
        self, response: httpx.Response, what: str, tries: int = 1, started: float | None = None
    ) -> None:
        status = response.status_code
        if status < 400:
            return
        name = self._name
        spent = self._tries(tries, self._clock() if started is None else started)
        if status in (401, 403):
            hint = (
                f"check {self.key_env} (or --api-key): it must be a valid private key "
                "with access to this resource"
                if self._has_key
                else f"no API key was given: set {self.key_env} or pass --api-key"
            )
            raise AuthError(f"{name}: {what} → HTTP {status}; {hint}", provider=self.provider,
                            status=status)
        if status == 404:
            raise NotFoundError(
                f"{name}: {what} not found (HTTP 404); check the id and that the key's "
                "organisation owns it",
                provider=self.provider, status=404,
            )
        if status == 429:
            raise RateLimitError(
                f"{name}: rate limited on {what} (HTTP 429) after {spent}; "
                "wait a minute or lower --concurrency",
                provider=self.provider,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 500 or status == 408:
            raise ProviderUnavailable(
                f"{name}: {what} failed with HTTP {status} after {spent}; "
                "the provider is having trouble, try again later",
                provider=self.provider, status=status,
            )
        detail = _snippet(response, self._mask)
        raise ProviderError(
            f"{name}: {what} was refused with HTTP {status}{': ' + detail if detail else ''}",
            provider=self.provider, status=status,
        )

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            body = response.json()
        except RecursionError:
            raise PayloadError(
                f"{self._name} answered {what} with JSON nested too deep to read",
            ) from None
        except ValueError as exc:
            raise PayloadError(
                f"{self._name} answered {what} with something that is not JSON "
                f"({self._mask(response.headers.get('content-type', 'no content type'))[:80]}); "
                "check the base URL",
            ) from exc
        check_depth(body, source=f"{self._name} {what}")
        return body


def _snippet(response: httpx.Response, mask: Callable[[str], str]) -> str:
    """The error message of a response body, masked before it is cut (so no key prefix shows)."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return mask(response.text)[:200].strip()
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str | list):
                return mask(str(body[key]))[:200]
    return mask(str(body))[:200]


def path_segment(
    value: object, what: str, *, error: type[VoiceReplayError] = ConfigError
) -> str:
    """``value`` quoted as one URL path segment, or ``error`` before any request is made.

    ``.`` and ``..`` (and ids with ``/``, ``\\`` or control characters) would be resolved as
    paths and reach other endpoints (``GET /call/..`` is ``GET /``), so they are refused.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise error(f"the {what} is empty")
    if text in (".", "..") or any(ch in "/\\" or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise error(
            f"the {what} {text[:80]!r} is not an id: ids cannot be '.' or '..' or hold '/', "
            "'\\' or control characters"
        )
    return quote(text, safe="")
