"""RetellProvider on httpx.MockTransport: requests, paging, errors and retries.

The same provider against the fake Retell API over real HTTP: test_retell_integration.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.retell_samples import (
    START_MS,
    sample_agent,
    sample_call,
    sample_llm,
)
from voicereplay.errors import (
    AuthError,
    NotFoundError,
    PayloadError,
    ProviderUnavailable,
    RateLimitError,
    RecordingError,
)
from voicereplay.models import Recording
from voicereplay.providers.retell import RetellProvider, parse_webhook

KEY = "test-retell-key"
BASE = "https://api.retell.test"
RETELL_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "retell"

Handler = Callable[[httpx.Request], httpx.Response]


def _provider(
    handler: Handler, sleeps: list[float] | None = None, **options: Any
) -> RetellProvider:
    return RetellProvider(
        KEY, BASE, transport=httpx.MockTransport(handler),
        sleep=sleeps.append if sleeps is not None else (lambda s: None), max_retries=2, **options,
    )


# -- unit: MockTransport ---------------------------------------------------------------------
def test_get_call_sends_the_key_and_parses() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=sample_call())

    call = _provider(handler).get_call("call_sample1")
    assert call.call_id == "call_sample1" and len(call.turns) == 11
    assert seen[0].url.path == "/v2/get-call/call_sample1"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


def test_401_is_an_auth_error_naming_the_key_and_call() -> None:
    provider = _provider(lambda r: httpx.Response(401, json={"message": "Invalid API key"}))
    with pytest.raises(AuthError) as info:
        provider.get_call("call_xyz")
    assert "RETELL_API_KEY" in str(info.value) and "call_xyz" in str(info.value)
    assert KEY not in str(info.value)
    assert info.value.status == 401


def test_404_is_not_found_naming_the_call() -> None:
    provider = _provider(lambda r: httpx.Response(404, json={"message": "not found"}))
    with pytest.raises(NotFoundError, match="call call_gone"):
        provider.get_call("call_gone")


def test_429_with_retry_after_is_retried() -> None:
    answers = iter([
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(429, headers={"Retry-After": "1.5"}),
        httpx.Response(200, json=sample_call()),
    ])
    sleeps: list[float] = []
    call = _provider(lambda r: next(answers), sleeps).get_call("call_sample1")
    assert call.call_id == "call_sample1"
    assert sleeps == [3.0, 1.5]


def test_429_forever_is_a_rate_limit_error() -> None:
    provider = _provider(lambda r: httpx.Response(429, headers={"Retry-After": "0"}))
    with pytest.raises(RateLimitError):
        provider.get_call("call_busy")


def test_5xx_is_retried_then_provider_unavailable() -> None:
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        return httpx.Response(503, text="upstream down")

    sleeps: list[float] = []
    with pytest.raises(ProviderUnavailable, match="call call_sample1"):
        _provider(handler, sleeps).get_call("call_sample1")
    assert len(attempts) == 3 and len(sleeps) == 2


def test_5xx_then_success() -> None:
    answers = iter([httpx.Response(502), httpx.Response(200, json=sample_call())])
    assert _provider(lambda r: next(answers)).get_call("call_sample1").call_id == "call_sample1"


def _paged_handler(calls: list[dict[str, Any]], bodies: list[dict[str, Any]]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v2/get-call/"):
            wanted = request.url.path.rsplit("/", 1)[1]
            return httpx.Response(200, json=next(c for c in calls if c["call_id"] == wanted))
        if request.url.path == "/v3/list-calls":  # an account without the v3 listing
            return httpx.Response(404, json={"message": "Not Found"})
        assert request.method == "POST" and request.url.path == "/v2/list-calls"
        body = json.loads(request.content)
        bodies.append(body)
        ids = [c["call_id"] for c in calls]
        start = ids.index(body["pagination_key"]) + 1 if "pagination_key" in body else 0
        return httpx.Response(200, json=calls[start : start + body["limit"]])

    return handler


def test_list_calls_pages_with_the_last_call_id() -> None:
    calls = [sample_call(f"call_{i}", start_ms=START_MS - i * 60_000) for i in range(5)]
    bodies: list[dict[str, Any]] = []
    provider = _provider(_paged_handler(calls, bodies))
    provider.page_size = 2
    since = datetime(2024, 5, 1, tzinfo=UTC)
    until = datetime(2024, 6, 1, tzinfo=UTC)
    listed = provider.list_calls(since=since, until=until)
    assert bodies == []  # lazy: nothing is fetched before the first call is asked for
    assert [c.call_id for c in listed] == [f"call_{i}" for i in range(5)]
    assert [b.get("pagination_key") for b in bodies] == [None, "call_1", "call_3"]
    assert all(b["sort_order"] == "descending" and b["limit"] == 2 for b in bodies)
    assert bodies[0]["filter_criteria"] == {
        "start_timestamp": {
            "lower_threshold": int(since.timestamp() * 1000),
            "upper_threshold": int(until.timestamp() * 1000) - 1,
        }
    }


def test_list_calls_limit_stops_early() -> None:
    calls = [sample_call(f"call_{i}") for i in range(5)]
    bodies: list[dict[str, Any]] = []
    provider = _provider(_paged_handler(calls, bodies))
    provider.page_size = 2
    assert [c.call_id for c in provider.list_calls(limit=3)] == ["call_0", "call_1", "call_2"]
    assert [b["limit"] for b in bodies] == [2, 1]
    assert "filter_criteria" not in bodies[0]


def test_list_items_without_transcripts_are_fetched_again() -> None:
    full = [sample_call(f"call_{i}") for i in range(2)]
    bare = [{k: v for k, v in c.items() if not k.startswith("transcript")} for c in full]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/v3/list-calls":
            return httpx.Response(200, json={"items": bare, "has_more": False,
                                             "pagination_key": None})
        wanted = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json=next(c for c in full if c["call_id"] == wanted))

    listed = list(_provider(handler).list_calls())
    assert [len(c.turns) for c in listed] == [11, 11]
    assert seen == ["/v3/list-calls", "/v2/get-call/call_0", "/v2/get-call/call_1"]


def test_v3_list_calls_follows_the_cursor_and_sends_typed_filters() -> None:
    full = {f"call_{i}": sample_call(f"call_{i}", start_ms=START_MS - i * 60_000)
            for i in range(5)}
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v2/get-call/"):
            return httpx.Response(200, json=full[request.url.path.rsplit("/", 1)[1]])
        assert request.url.path == "/v3/list-calls"
        body = json.loads(request.content)
        bodies.append(body)
        start = int(body.get("pagination_key", "cur-0").split("-")[1])
        ids = list(full)[start : start + body["limit"]]
        more = start + body["limit"] < len(full)
        return httpx.Response(200, json={
            "items": [{"call_id": i, "agent_id": "a", "call_status": "ended"} for i in ids],
            "has_more": more, "pagination_key": f"cur-{start + body['limit']}" if more else None,
            "total": len(full)})

    provider = _provider(handler)
    provider.page_size = 2
    since = datetime(2024, 5, 1, tzinfo=UTC)
    until = datetime(2024, 6, 1, tzinfo=UTC)
    assert [c.call_id for c in provider.list_calls(since=since, until=until)] == list(full)
    assert [b.get("pagination_key") for b in bodies] == [None, "cur-2", "cur-4"]
    assert bodies[0]["filter_criteria"] == {"start_timestamp": {
        "op": "bt", "type": "range",
        "value": [int(since.timestamp() * 1000), int(until.timestamp() * 1000) - 1]}}
    bodies.clear()
    assert len(list(provider.list_calls(since=since, limit=3))) == 3
    assert [b["limit"] for b in bodies] == [2, 1]
    assert bodies[0]["filter_criteria"] == {"start_timestamp": {
        "op": "ge", "type": "number", "value": int(since.timestamp() * 1000)}}
    bodies.clear()
    list(provider.list_calls(until=until, limit=1))
    assert bodies[0]["filter_criteria"]["start_timestamp"]["op"] == "lt"


def test_v3_list_calls_that_fails_mid_way_is_not_retried_on_v2() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if len(paths) == 1:
            return httpx.Response(200, json={"items": [sample_call("call_0")],
                                             "has_more": True, "pagination_key": "next"})
        return httpx.Response(404, json={"message": "cursor expired"})

    with pytest.raises(NotFoundError):
        list(_provider(handler).list_calls())
    assert paths == ["/v3/list-calls", "/v3/list-calls"]


def test_list_calls_rejects_a_non_list_answer() -> None:
    provider = _provider(lambda r: httpx.Response(200, json={"oops": True}))
    with pytest.raises(PayloadError, match="list of calls"):
        list(provider.list_calls())


def test_get_snapshot_fetches_agent_and_llm_at_their_versions() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/get-agent/agent_sample":
            return httpx.Response(200, json=sample_agent())
        if request.url.path == "/get-retell-llm/llm_sample":
            return httpx.Response(200, json=sample_llm())
        return httpx.Response(404)

    provider = _provider(handler)
    snap = provider.get_snapshot(provider.parse_webhook(
        json.dumps({"event": "call_analyzed", "call": sample_call()}).encode()
    ))
    assert [(r.url.path, r.url.params.get("version")) for r in seen] == [
        ("/get-agent/agent_sample", "3"), ("/get-retell-llm/llm_sample", "2"),
    ]
    assert snap.source.agent_version == "3" and snap.source.llm_version == "2"
    assert snap.first_message == "Hi Ada, this is Dental Desk. How can I help?"


def test_unknown_agent_version_is_not_found_naming_agent_and_call() -> None:
    provider = _provider(lambda r: httpx.Response(404, json={"message": "not found"}))
    call = parse_webhook({"event": "call_ended", "call": sample_call()})
    with pytest.raises(NotFoundError, match="agent agent_sample version 3.*call_sample1"):
        provider.get_snapshot(call)


def test_recording_without_url_and_refused_recording() -> None:
    provider = _provider(lambda r: httpx.Response(403, text="<Error>Expired</Error>"))
    call = parse_webhook({"event": "call_ended", "call": sample_call()})
    with pytest.raises(RecordingError, match="no URL"):
        provider.open_recording(call, Recording(kind="stereo"))
    stereo = call.recording("stereo")
    assert stereo is not None
    with pytest.raises(RecordingError, match="call_sample1.*expire"):
        with provider.open_recording(call, stereo) as chunks:
            b"".join(chunks)


@pytest.mark.parametrize("body", [b"{nope", b"[]", b'{"call": {}}'])
def test_parse_webhook_rejects_non_webhooks(body: bytes) -> None:
    with pytest.raises(PayloadError, match="Retell webhook"):
        parse_webhook(body)


def test_registered_factory_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from voicereplay.providers import registry

    monkeypatch.setenv("RETELL_API_KEY", "env-key")
    monkeypatch.setenv("RETELL_BASE_URL", BASE)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=sample_call())

    provider = registry.create(
        "retell", transport=httpx.MockTransport(handler), directory="ignored"
    )
    assert isinstance(provider, RetellProvider)
    provider.get_call("call_sample1")
    assert str(seen[0].url) == f"{BASE}/v2/get-call/call_sample1"
    assert seen[0].headers["authorization"] == "Bearer env-key"
    explicit = registry.create("retell", api_key="given", base_url=BASE,
                               transport=httpx.MockTransport(handler))
    explicit.get_call("call_sample1")
    assert seen[1].headers["authorization"] == "Bearer given"
