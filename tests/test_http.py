"""The shared provider HTTP client: retries, Retry-After, and error translation."""

from __future__ import annotations

import json

import httpx
import pytest

from voicereplay.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    PayloadError,
    ProviderError,
    ProviderUnavailable,
    RateLimitError,
)
from voicereplay.providers.http import ProviderHTTP, path_segment
from voicereplay.retry import RetryPolicy


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


def test_a_timeout_says_how_many_tries_and_how_long_in_all() -> None:
    now = [100.0]

    def handler(request: httpx.Request) -> httpx.Response:
        now[0] += 2.0  # each try waits out its 2 s timeout
        raise httpx.ReadTimeout("slow", request=request)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    client = ProviderHTTP(
        "retell", "https://api.example", "k", key_env="RETELL_API_KEY", timeout=2.0,
        transport=httpx.MockTransport(handler), clock=lambda: now[0],
        retry=RetryPolicy(attempts=3, backoff=1.0, jitter=0.0, sleep=sleep),
    )
    with pytest.raises(ProviderUnavailable) as info:
        client.get_json("/v2/get-call/c1", what="call c1")
    # 3 tries of 2 s, with 1 s and 2 s of backoff between them
    assert str(info.value).startswith(
        "Retell: call c1 timed out after 3 tries in 9.0 s (2 s allowed per try)")
    assert "VOICEREPLAY_HTTP_TIMEOUT or --timeout" in str(info.value)


def test_a_5xx_names_the_tries_and_the_time_too() -> None:
    client = ProviderHTTP(
        "vapi", "https://api.example", "k", key_env="VAPI_API_KEY", clock=lambda: 0.0,
        transport=httpx.MockTransport(lambda r: httpx.Response(500)),
        retry=RetryPolicy(attempts=2, sleep=lambda s: None),
    )
    with pytest.raises(ProviderUnavailable, match=r"HTTP 500 after 2 tries in 0\.0 s"):
        client.get_json("/x", what="call 1")


@pytest.mark.parametrize("status", [400, 422, 409])
def test_an_error_body_that_echoes_the_key_does_not_print_it(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        auth = request.headers["authorization"]
        return httpx.Response(status, json={"message": f"bad header {{'authorization': "
                                                       f"'{auth}'}} " + "x" * 300})

    with pytest.raises(ProviderError) as info:
        _client(handler).get_json("/x", what="calls")
    message = str(info.value)
    assert "sk-secret" not in message
    assert "'authorization': 'Bearer ***'" in message
    # a body cut at 200 characters right inside the key shows none of it either
    cut = "y" * 190 + "Bearer sk-secret"  # the key spans characters 197-206
    with pytest.raises(ProviderError) as info:
        _client(lambda r: httpx.Response(status, text=cut)).get_json("/x", what="calls")
    assert "Bearer ***" in str(info.value) and "sk-" not in str(info.value)


def test_a_failure_to_connect_is_masked_and_counted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderUnavailable, match=r"cannot reach .* after 4 tries in"):
        _client(handler).get_json("/x", what="call 1")


@pytest.mark.parametrize("bad", [".", "..", " .. ", "a/b", "../assistant", "a\\b", "a\nb", ""])
def test_ids_that_are_paths_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="call id"):
        path_segment(bad, "call id")


def test_ids_are_one_quoted_segment() -> None:
    assert path_segment("call_abc ", "call id") == "call_abc"
    assert path_segment("a b?c#d", "call id") == "a%20b%3Fc%23d"
    with pytest.raises(PayloadError, match="agent id"):
        path_segment("..", "agent id", error=PayloadError)


@pytest.mark.parametrize("name", ["vapi", "retell"])
def test_provider_timeout_comes_from_the_option_or_the_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicereplay.providers import create

    monkeypatch.setenv("VOICEREPLAY_HTTP_TIMEOUT", "7.5")
    provider = create(name, api_key="k")
    assert provider.http.timeout == 7.5  # type: ignore[attr-defined]
    assert provider.http.client.timeout.read == 7.5  # type: ignore[attr-defined]
    provider = create(name, api_key="k", timeout=2)
    assert provider.http.client.timeout.connect == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", [".", ".."])
def test_vapi_and_retell_refuse_dot_ids_before_any_request(bad: str) -> None:
    from voicereplay.providers.retell import RetellProvider
    from voicereplay.providers.vapi import VapiProvider

    requests: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: requests.append(r) or httpx.Response(200, json=[]))
    for provider in (VapiProvider("k", transport=transport),
                     RetellProvider("k", transport=transport)):
        with pytest.raises(ConfigError, match="not an id"):
            provider.get_call(bad)
    assert requests == []


def test_webhook_bodies_with_a_byte_order_mark_are_read() -> None:
    from tests.fakes import retell_samples, vapi_samples
    from voicereplay.providers import retell, vapi

    report = json.dumps(vapi_samples.report())
    for body in ("\ufeff" + report, b"\xef\xbb\xbf" + report.encode()):
        assert vapi.parse_webhook(body).call_id == vapi_samples.report()["message"]["call"]["id"]
    event = json.dumps({"event": "call_ended", "call": retell_samples.sample_call()})
    for body in ("\ufeff" + event, b"\xef\xbb\xbf" + event.encode()):
        assert retell.parse_webhook(body).call_id == retell_samples.sample_call()["call_id"]
