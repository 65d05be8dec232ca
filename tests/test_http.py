"""The shared provider HTTP client: retries, Retry-After, and error translation."""

from __future__ import annotations

import httpx
import pytest

from voicereplay.errors import (
    AuthError,
    NotFoundError,
    PayloadError,
    ProviderError,
    ProviderUnavailable,
    RateLimitError,
)
from voicereplay.providers.http import ProviderHTTP


def _client(handler, sleeps: list[float] | None = None, key: str | None = "sk-secret"):
    return ProviderHTTP(
        "vapi", "https://api.example", key, key_env="VAPI_API_KEY",
        transport=httpx.MockTransport(handler), sleep=(sleeps.append if sleeps is not None
                                                       else lambda s: None),
        max_retries=3,
    )


def test_retry_after_is_honoured_then_success() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(429, headers={"Retry-After": "2"})
        return httpx.Response(200, json={"ok": True})

    sleeps: list[float] = []
    assert _client(handler, sleeps).get_json("/x", what="call 1") == {"ok": True}
    assert sleeps == [2.0, 2.0]
    assert calls[0].headers["authorization"] == "Bearer sk-secret"


def test_5xx_backoff_grows_with_jitter_then_gives_up() -> None:
    sleeps: list[float] = []
    client = _client(lambda r: httpx.Response(503), sleeps)
    with pytest.raises(ProviderUnavailable, match="call 1.*HTTP 503 after 4 tries"):
        client.get_json("/x", what="call 1")
    assert len(sleeps) == 3
    assert 0.25 <= sleeps[0] <= 0.5 and 1.0 <= sleeps[2] <= 2.0


def test_429_after_every_retry_is_a_rate_limit_error() -> None:
    client = _client(lambda r: httpx.Response(429, headers={"Retry-After": "0"}))
    with pytest.raises(RateLimitError) as info:
        client.get_json("/x", what="call 1")
    assert info.value.retryable


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_fail_at_once_and_never_show_the_key(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"message": "Invalid Key"})

    with pytest.raises(AuthError) as info:
        _client(handler).get_json("/call/abc", what="call abc")
    assert len(calls) == 1
    message = str(info.value)
    assert "call abc" in message and "VAPI_API_KEY" in message
    assert "sk-secret" not in message


def test_missing_key_says_so() -> None:
    with pytest.raises(AuthError, match="no API key was given"):
        _client(lambda r: httpx.Response(401), key=None).get_json("/x", what="call 1")


def test_404_and_other_4xx() -> None:
    with pytest.raises(NotFoundError, match="call zz not found"):
        _client(lambda r: httpx.Response(404)).get_json("/x", what="call zz")
    with pytest.raises(ProviderError, match="HTTP 400: bad filter"):
        _client(lambda r: httpx.Response(400, json={"message": "bad filter"})).get_json(
            "/x", what="calls")


def test_timeouts_are_retried_then_reported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ProviderUnavailable, match="timed out after 4 tries"):
        _client(handler).get_json("/x", what="call 1")


def test_non_json_answer_is_a_payload_error() -> None:
    client = _client(lambda r: httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(PayloadError, match="not JSON"):
        client.get_json("/x", what="call 1")


def test_stream_retries_before_first_byte() -> None:
    state = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        state["n"] += 1
        if state["n"] == 1:
            return httpx.Response(502)
        return httpx.Response(200, content=b"RIFF....WAVEdata")

    with _client(handler).stream("/rec", what="recording") as chunks:
        assert b"".join(chunks) == b"RIFF....WAVEdata"
    assert state["n"] == 2


def test_stream_sends_the_key_only_to_the_api_host() -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers.get("authorization")
        return httpx.Response(200, content=b"RIFF....WAVEdata")

    client = _client(handler)
    with client.stream("/call/1/stereo-recording", what="recording") as chunks:
        b"".join(chunks)
    with client.stream("https://cdn.example/rec.wav", what="recording") as chunks:
        b"".join(chunks)
    assert seen == {"api.example": "Bearer sk-secret", "cdn.example": None}

    with client.stream("/recordings/a.wav", what="recording", authorize=False) as chunks:
        b"".join(chunks)
    assert seen["api.example"] is None  # not even to the API's host when told not to
