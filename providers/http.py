"""The HTTP client every provider adapter talks through.

One place owns retries and error translation: 429 (honouring ``Retry-After``), 5xx, timeouts
and connection errors are retried with exponential backoff and jitter; 401/403/404 fail at once.
Failures become :mod:`voicereplay.errors` types whose message names what was asked for (``what``,
e.g. ``"call 1f2e…"``) and what to check. The API key is sent only as a header and never appears
in a message. Tests inject an ``httpx`` transport.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from voicereplay.errors import (
    AuthError,
    NotFoundError,
    PayloadError,
    ProviderError,
    ProviderUnavailable,
    RateLimitError,
)

__all__ = ["ProviderHTTP"]

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
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        max_connections: int = 64,
    ) -> None:
        self.provider = provider
        self.key_env = key_env
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
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
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                if attempt < self.max_retries:
                    self._sleep(self._delay(attempt))
                    continue
                raise ProviderUnavailable(
                    f"{self._name}: {what} timed out after {attempt + 1} tries; "
                    "the provider may be slow or down, try again later",
                    provider=self.provider,
                ) from exc
            except httpx.TransportError as exc:
                if attempt < self.max_retries:
                    self._sleep(self._delay(attempt))
                    continue
                raise ProviderUnavailable(
                    f"{self._name}: cannot reach {self.client.base_url} for {what} "
                    f"({type(exc).__name__}); check the base URL and your network",
                    provider=self.provider,
                ) from exc
            if response.status_code in _RETRY_STATUSES and attempt < self.max_retries:
                self._sleep(self._delay(attempt, response))
                continue
            self._raise_for_status(response, what)
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
        for attempt in range(self.max_retries + 1):
            request = self.client.build_request("GET", url)
            foreign = (request.url.host, request.url.port) != (
                self.client.base_url.host, self.client.base_url.port
            )
            if authorize is False or (authorize is None and foreign):
                request.headers.pop("Authorization", None)
            try:
                response = self.client.send(request, stream=True)
                with contextlib.closing(response):
                    if response.status_code in _RETRY_STATUSES and attempt < self.max_retries:
                        delay = self._delay(attempt, response)
                    else:
                        if response.is_error:
                            response.read()
                        self._raise_for_status(response, what)
                        yield self._guarded(response.iter_bytes(1 << 16), what)
                        return
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise ProviderUnavailable(
                        f"{self._name}: downloading {what} failed after {attempt + 1} tries "
                        f"({type(exc).__name__}); try the import again",
                        provider=self.provider,
                    ) from exc
                delay = self._delay(attempt)
            self._sleep(delay)

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

    def _delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        if response is not None:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                return min(retry_after, 60.0)
        base = min(self.max_backoff, self.backoff * (2**attempt))
        return base * (0.5 + random.random() / 2)

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        name = self._name
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
                f"{name}: rate limited on {what} (HTTP 429) after {self.max_retries + 1} tries; "
                "wait a minute or lower --concurrency",
                provider=self.provider,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 500 or status == 408:
            raise ProviderUnavailable(
                f"{name}: {what} failed with HTTP {status} after {self.max_retries + 1} tries; "
                "the provider is having trouble, try again later",
                provider=self.provider, status=status,
            )
        detail = _snippet(response)
        raise ProviderError(
            f"{name}: {what} was refused with HTTP {status}{': ' + detail if detail else ''}",
            provider=self.provider, status=status,
        )

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise PayloadError(
                f"{self._name} answered {what} with something that is not JSON "
                f"({response.headers.get('content-type', 'no content type')}); "
                "check the base URL",
            ) from exc


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _snippet(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str | list):
                return str(body[key])[:200]
    return str(body)[:200]
