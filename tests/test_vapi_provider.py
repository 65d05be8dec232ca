"""VapiProvider: unit tests on httpx.MockTransport, integration tests on the fake Vapi API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import vapi_samples as samples
from tests.fakes.server import RunningServer, serve
from tests.fakes.vapi_api import FakeVapiData, make_vapi_app
from voicereplay.artifacts import ArtifactStore
from voicereplay.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    PayloadError,
    ProviderUnavailable,
    RecordingError,
)
from voicereplay.models import Recording
from voicereplay.providers import create
from voicereplay.providers import vapi as vapi_module
from voicereplay.providers.vapi import VapiProvider, parse_webhook
from voicereplay.providers.vapi_payload import parse_call

KEY = "test-vapi-key"
BASE = "https://api.vapi.test"
CALL_ID = "3f1c2b9e-0000-4000-8000-000000000001"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

Handler = Callable[[httpx.Request], httpx.Response]


def _provider(handler: Handler, sleeps: list[float] | None = None, **options: Any) -> VapiProvider:
    record = sleeps if sleeps is not None else []
    return VapiProvider(KEY, BASE, transport=httpx.MockTransport(handler),
                        sleep=record.append, **options)


def _calls(n: int, *, same_instant_every: int = 1) -> list[dict[str, Any]]:
    """``n`` calls, newest first; groups of ``same_instant_every`` share one createdAt."""
    out = []
    for i in range(n):
        created = samples.T0 - (i // same_instant_every) * 60_000
        out.append(samples.call(f"call-{i:04d}", createdAt=samples.iso(created)))
    return out


def _listing(calls: list[dict[str, Any]], seen: list[dict[str, str]]) -> Handler:
    data = FakeVapiData()
    for call in calls:
        data.add_call(call)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/call"
        params = dict(request.url.params)
        seen.append(params)
        return httpx.Response(200, json=data.listed(params, int(params["limit"])))

    return handler


# -- get_call and errors --------------------------------------------------------------------
def test_get_call_sends_the_key_and_parses() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/call/{CALL_ID}"
        assert request.headers["authorization"] == f"Bearer {KEY}"
        return httpx.Response(200, json=samples.call())

    call = _provider(handler).get_call(CALL_ID)
    assert call.call_id == CALL_ID and len(call.turns) == 6


def test_401_is_an_auth_error_naming_the_key_and_call() -> None:
    provider = _provider(lambda r: httpx.Response(401, json={"message": "Invalid Key"}))
    with pytest.raises(AuthError) as caught:
        provider.get_call(CALL_ID)
    assert "VAPI_API_KEY" in str(caught.value) and CALL_ID in str(caught.value)
    assert KEY not in str(caught.value)
    assert caught.value.status == 401


def test_401_without_a_key_says_to_set_one() -> None:
    provider = VapiProvider(None, BASE, transport=httpx.MockTransport(
        lambda r: httpx.Response(401, json={})))
    with pytest.raises(AuthError, match="no API key was given: set VAPI_API_KEY"):
        provider.get_call(CALL_ID)


def test_404_is_not_found() -> None:
    provider = _provider(lambda r: httpx.Response(404, json={"message": "Not Found"}))
    with pytest.raises(NotFoundError, match=f"call {CALL_ID} not found"):
        provider.get_call(CALL_ID)


def test_429_with_retry_after_is_retried_then_succeeds() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}),
                    httpx.Response(200, json=samples.call())])
    sleeps: list[float] = []
    call = _provider(lambda r: next(answers), sleeps).get_call(CALL_ID)
    assert call.call_id == CALL_ID
    assert sleeps == [7.0]


def test_5xx_is_retried_then_provider_unavailable() -> None:
    hits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(request.url.path)
        return httpx.Response(503, text="upstream down")

    sleeps: list[float] = []
    with pytest.raises(ProviderUnavailable, match=f"call {CALL_ID} failed with HTTP 503"):
        _provider(handler, sleeps, max_retries=3).get_call(CALL_ID)
    assert len(hits) == 4 and len(sleeps) == 3


def test_a_non_json_answer_is_a_payload_error() -> None:
    provider = _provider(lambda r: httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(PayloadError, match="not JSON"):
        provider.get_call(CALL_ID)


def test_call_ids_are_quoted_into_the_path() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(404, json={})

    with pytest.raises(NotFoundError):
        _provider(handler).get_call("a b?c#d")
    assert paths == ["/call/a%20b%3Fc%23d"]
    with pytest.raises(ConfigError, match="not an id"):  # never sent, not even quoted
        _provider(handler).get_call("../assistant/x")
    assert len(paths) == 1


# -- listing ---------------------------------------------------------------------------------
def test_list_calls_moves_the_created_at_window() -> None:
    calls = _calls(250)
    seen: list[dict[str, str]] = []
    got = list(_provider(_listing(calls, seen)).list_calls())
    assert [c.call_id for c in got] == [c["id"] for c in calls]
    assert [p.get("limit") for p in seen] == ["100", "100", "100"]
    assert "createdAtLe" not in seen[0]
    # createdAtLe re-includes the boundary call (deduped), so page 2 ends at call 198.
    assert seen[1]["createdAtLe"] == calls[99]["createdAt"]
    assert seen[2]["createdAtLe"] == calls[198]["createdAt"]


def test_list_calls_dedupes_ties_across_page_boundaries() -> None:
    calls = _calls(230, same_instant_every=7)  # page boundaries fall inside groups of ties
    seen: list[dict[str, str]] = []
    got = [c.call_id for c in _provider(_listing(calls, seen)).list_calls()]
    assert sorted(got) == sorted(c["id"] for c in calls)
    assert len(got) == len(set(got))


def test_list_calls_with_a_full_page_of_ties_asks_for_a_bigger_page() -> None:
    calls = _calls(150, same_instant_every=150)  # all at one instant
    seen: list[dict[str, str]] = []
    got = [c.call_id for c in _provider(_listing(calls, seen)).list_calls()]
    assert len(got) == 150 == len(set(got))
    assert seen[-1]["limit"] == "1000"


def test_more_ties_than_the_largest_page_moves_on_to_older_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vapi_module, "PAGE_SIZE", 10)
    monkeypatch.setattr(vapi_module, "MAX_PAGE_SIZE", 20)
    calls = _calls(30, same_instant_every=30) + [
        samples.call(f"old-{i}", createdAt=samples.iso(samples.T0 - (i + 1) * 60_000))
        for i in range(5)
    ]
    seen: list[dict[str, str]] = []
    got = [c.call_id for c in _provider(_listing(calls, seen)).list_calls()]
    assert len(got) == len(set(got)) == 25  # 20 of the 30 ties can be reached, then older ones
    assert got[-5:] == [f"old-{i}" for i in range(5)]
    assert any("createdAtLt" in p for p in seen)


def test_list_calls_ends_when_the_server_ignores_the_window() -> None:
    page = _calls(100)
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        return httpx.Response(200, json=page)

    got = [c.call_id for c in _provider(handler).list_calls()]
    assert got == [c["id"] for c in page]
    assert len(seen) < 5


def test_list_calls_limit_since_until_and_laziness() -> None:
    calls = _calls(30)
    seen: list[dict[str, str]] = []
    provider = _provider(_listing(calls, seen))
    iterator = provider.list_calls(limit=5)
    assert seen == []  # nothing is fetched before the first call is asked for
    assert len(list(iterator)) == 5
    assert seen[0]["limit"] == "5"
    seen.clear()
    since = datetime.fromisoformat(calls[9]["createdAt"])
    until = datetime.fromisoformat(calls[2]["createdAt"])
    got = [c.call_id for c in provider.list_calls(since=since, until=until)]
    assert got == [c["id"] for c in calls[3:10]]
    assert seen[0]["createdAtGe"] == calls[9]["createdAt"]
    assert seen[0]["createdAtLt"] == calls[2]["createdAt"]


def test_list_calls_stops_on_an_empty_page() -> None:
    seen: list[dict[str, str]] = []
    assert list(_provider(_listing([], seen)).list_calls()) == []
    assert len(seen) == 1


def test_list_calls_rejects_a_non_list_answer() -> None:
    provider = _provider(lambda r: httpx.Response(200, json={"results": []}))
    with pytest.raises(PayloadError, match="expected a JSON list of calls"):
        list(provider.list_calls())


# -- snapshots --------------------------------------------------------------------------------
def test_get_snapshot_fetches_the_assistant_by_id() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200, json=samples.assistant())

    provider = _provider(handler)
    snap = provider.get_snapshot(parse_call(samples.call()))
    assert asked == ["/assistant/a-sam"]
    assert snap.system_prompt == "You are Sam from Acme Audio."
    asked.clear()
    provider.get_snapshot(parse_call(samples.report()))  # the report carries the assistant
    assert asked == []


def test_get_snapshot_of_a_squad_by_id() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/squad/sq-1":
            return httpx.Response(200, json={"members": [{"assistantId": "a-front"}]})
        assert request.url.path == "/assistant/a-front"
        return httpx.Response(200, json=samples.assistant("a-front"))

    call = parse_call(samples.call(assistantId=None, squadId="sq-1"))
    assert _provider(handler).get_snapshot(call).model.name == "gpt-4o"


def test_get_snapshot_unknown_assistant_is_not_found() -> None:
    provider = _provider(lambda r: httpx.Response(404, json={}))
    with pytest.raises(NotFoundError, match=f"assistant a-sam \\(for call {CALL_ID}\\)"):
        provider.get_snapshot(parse_call(samples.call()))


# -- recordings ------------------------------------------------------------------------------
def _stereo(call_url: str | None = "https://storage.vapi.ai/rec-stereo.wav") -> Recording:
    return Recording(kind="stereo", url=call_url)


def test_recording_via_the_api_redirect(tmp_path: Path) -> None:
    wav = samples.wav_bytes(1)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == f"/call/{CALL_ID}/stereo-recording":
            return httpx.Response(302, headers={"Location": "https://signed.example/x.wav?s=1"})
        return httpx.Response(200, content=wav)

    provider = _provider(handler)
    rec = provider.fetch_recording(parse_call(samples.call()), _stereo(),
                                   ArtifactStore(tmp_path))
    assert rec.sha256 == hashlib.sha256(wav).hexdigest() and rec.size == len(wav)
    assert rec.path and Path(rec.path).read_bytes() == wav
    assert "authorization" in seen[0].headers
    assert seen[1].url.host == "signed.example" and "authorization" not in seen[1].headers


@pytest.mark.parametrize(("kind", "endpoint"), [
    ("stereo", "stereo-recording"), ("customer", "customer-recording"),
    ("agent", "assistant-recording"), ("mixed", "mono-recording")])
def test_recording_endpoints(kind: Any, endpoint: str) -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, content=samples.wav_bytes())

    with _provider(handler).open_recording(parse_call(samples.call()),
                                           Recording(kind=kind)) as chunks:
        assert b"".join(chunks) == samples.wav_bytes()
    assert paths == [f"/call/{CALL_ID}/{endpoint}"]


def test_recording_404_falls_back_to_the_url_in_the_call(tmp_path: Path) -> None:
    wav = samples.wav_bytes(2)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "storage.vapi.ai":
            return httpx.Response(200, content=wav)
        return httpx.Response(404, json={"message": "Not Found"})

    rec = _provider(handler).fetch_recording(parse_call(samples.call()), _stereo(),
                                             ArtifactStore(tmp_path))
    assert rec.sha256 == hashlib.sha256(wav).hexdigest()
    assert [r.url.host for r in seen] == ["api.vapi.test", "storage.vapi.ai"]
    assert "authorization" not in seen[1].headers  # the key never leaves api.vapi.ai


def test_recording_404_without_a_url_is_a_recording_error() -> None:
    provider = _provider(lambda r: httpx.Response(404, json={}))
    with pytest.raises(RecordingError, match=f"stereo recording of call {CALL_ID}.*recording"):
        provider.open_recording(parse_call(samples.call()), _stereo(None)).__enter__()


def test_recording_fallback_refused_is_a_recording_error() -> None:
    provider = _provider(lambda r: httpx.Response(
        404 if r.url.host == "api.vapi.test" else 403, text="AccessDenied"))
    with pytest.raises(RecordingError, match="HTTP 403.*private"):
        provider.open_recording(parse_call(samples.call()), _stereo()).__enter__()


def test_non_audio_recording_is_a_recording_error(tmp_path: Path) -> None:
    provider = _provider(lambda r: httpx.Response(200, text="<html>link expired</html>"))
    with pytest.raises(RecordingError, match="not audio"):
        provider.fetch_recording(parse_call(samples.call()), _stereo(), ArtifactStore(tmp_path))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written is kept


# -- registry, env, webhooks -----------------------------------------------------------------
def test_registry_factory_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAPI_API_KEY", "env-key")
    monkeypatch.setenv("VAPI_BASE_URL", "https://env.vapi.test")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=samples.call())

    provider = create("vapi", transport=httpx.MockTransport(handler), directory="ignored")
    assert isinstance(provider, VapiProvider)
    provider.get_call(CALL_ID)
    assert seen[0].headers["authorization"] == "Bearer env-key"
    assert seen[0].url.host == "env.vapi.test"
    explicit = create("vapi", api_key="k2", base_url=BASE, transport=httpx.MockTransport(handler))
    explicit.get_call(CALL_ID)
    assert seen[1].headers["authorization"] == "Bearer k2" and seen[1].url.host == "api.vapi.test"


def test_parse_webhook() -> None:
    body = samples.report()
    assert parse_webhook(json.dumps(body).encode()).call_id == body["message"]["call"]["id"]
    assert parse_webhook(body).status == "ended"
    with pytest.raises(PayloadError, match="not JSON"):
        parse_webhook(b"{nope")
    with pytest.raises(PayloadError, match="expected a webhook body"):
        parse_webhook(samples.call())


# -- integration: the fake Vapi API over real HTTP -------------------------------------------
@pytest.fixture
def vapi_server() -> Iterator[tuple[RunningServer, FakeVapiData]]:
    data = FakeVapiData()
    data.add_call(samples.call(), recordings={"stereo": samples.wav_bytes(3),
                                              "mono": samples.wav_bytes(4)},
                  assistant=samples.assistant())
    for i, call in enumerate(_calls(45, same_instant_every=4)):
        data.add_call(call, recordings={"mixed": samples.wav_bytes(100 + i)})
    with serve(make_vapi_app([], data=data)) as server:
        yield server, data


def _live(server: RunningServer, key: str = KEY, **options: Any) -> VapiProvider:
    options.setdefault("sleep", lambda s: None)
    return VapiProvider(key, server.url, **options)


@pytest.mark.integration
def test_live_get_list_and_snapshot(
    vapi_server: tuple[RunningServer, FakeVapiData], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, data = vapi_server
    provider = _live(server)
    with provider:
        assert provider.get_call(CALL_ID).call_id == CALL_ID
        got = [c.call_id for c in provider.list_calls(limit=46)]
        assert len(got) == 46 == len(set(got)) == len(data.calls)
        assert len(server.seen(r"^/call$")) == 1  # 46 fit in one page
        assert sorted(c.call_id for c in provider.list_calls()) == sorted(data.calls)
        # Pages of 10 over groups of 4 calls created at the same instant: ties cross pages.
        monkeypatch.setattr(vapi_module, "PAGE_SIZE", 10)
        small = [c.call_id for c in provider.list_calls()]
        assert sorted(small) == sorted(data.calls) and len(small) == len(set(small))
        assert len(server.seen(r"^/call$")) > 6
        snap = provider.get_snapshot(provider.get_call(CALL_ID))
        assert snap.source.agent_id == "a-sam" and snap.tool("endCall") is not None
        with pytest.raises(NotFoundError):
            provider.get_call("no-such-call")


@pytest.mark.integration
def test_live_recording_redirect_drops_the_key(
    vapi_server: tuple[RunningServer, FakeVapiData], tmp_path: Path
) -> None:
    server, data = vapi_server
    store = ArtifactStore(tmp_path / "artifacts")
    provider = _live(server)
    with provider:
        call = provider.get_call(CALL_ID)
        stereo = call.recording("stereo")
        assert stereo is not None
        rec = provider.fetch_recording(call, stereo, store)
    wav = samples.wav_bytes(3)
    assert rec.sha256 == hashlib.sha256(wav).hexdigest() and rec.size == len(wav)
    assert rec.path and Path(rec.path).read_bytes() == wav and rec.path.endswith(".wav")
    assert [s.authorization for s in data.signed_requests] == [None]
    assert server.seen(r"/stereo-recording$")[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.integration
def test_live_retries_on_429_and_500(vapi_server: tuple[RunningServer, FakeVapiData]) -> None:
    server, _ = vapi_server
    sleeps: list[float] = []
    server.fail(r"^/call/", status=429, headers={"Retry-After": "0.01"}, times=2)
    provider = _live(server, sleep=sleeps.append)
    with provider:
        assert provider.get_call(CALL_ID).call_id == CALL_ID
        assert sleeps == [0.01, 0.01]
        server.fail(r"^/call$", status=500, times=1)
        assert len(list(provider.list_calls(limit=3))) == 3
        server.fail(r"-recording$", status=502, times=1)
        call = provider.get_call(CALL_ID)
        with provider.open_recording(call, Recording(kind="mixed")) as chunks:
            assert b"".join(chunks) == samples.wav_bytes(4)
    assert len(server.seen(f"^/call/{CALL_ID}$")) == 4


@pytest.mark.integration
def test_live_auth_errors(vapi_server: tuple[RunningServer, FakeVapiData]) -> None:
    server, _ = vapi_server
    with pytest.raises(AuthError, match=f"call {CALL_ID} → HTTP 401; check VAPI_API_KEY"):
        _live(server, key="wrong").get_call(CALL_ID)
    with pytest.raises(AuthError, match="no API key was given"):
        VapiProvider(None, server.url).get_call(CALL_ID)


@pytest.mark.integration
def test_live_fixture_directory(tmp_path: Path) -> None:
    app = make_vapi_app([FIXTURES / "vapi", FIXTURES / "demo"])
    data: FakeVapiData = app.state.data
    assert data.calls and all("message" not in c for c in data.calls.values())
    store = ArtifactStore(tmp_path)
    with serve(app) as server:
        provider = _live(server)
        listed = list(provider.list_calls())
        assert {c.call_id for c in listed} == set(data.calls)
        downloads = 0
        for call in listed:
            for recording in call.recordings:
                if (call.call_id, recording.kind) in data.recordings:
                    got = provider.fetch_recording(call, recording, store)
                    blob = data.recordings[(call.call_id, recording.kind)]
                    assert isinstance(blob, Path)
                    assert got.sha256 == hashlib.sha256(blob.read_bytes()).hexdigest()
                    downloads += 1
            assert provider.get_snapshot(call).system_prompt  # inline or GET /assistant
        provider.close()
    assert downloads == len(data.recordings) > 0
    assert all(s.authorization is None for s in data.signed_requests)


def test_get_snapshot_of_a_call_without_any_assistant() -> None:
    provider = _provider(lambda r: httpx.Response(500))
    call = parse_call(samples.call(assistantId=None, workflowId="wf-1"))
    with pytest.raises(PayloadError, match=f"call {CALL_ID} names no assistant.*workflow"):
        provider.get_snapshot(call)


@pytest.mark.integration
def test_live_snapshot_fetches_the_tools_named_by_tool_ids() -> None:
    data = FakeVapiData()
    assistant = samples.assistant()
    assistant["model"]["toolIds"] = ["tool-refund"]
    data.add_call(samples.call(), assistant=assistant)
    data.tools["tool-refund"] = {
        "id": "tool-refund", "orgId": "o", "createdAt": samples.iso(samples.T0),
        "updatedAt": samples.iso(samples.T0), "type": "function",
        "function": {"name": "issue_refund", "description": "Refund an order.",
                     "parameters": {"type": "object", "properties": {
                         "order_id": {"type": "string"}}}},
        "server": {"url": "https://tools.example.com/refund"}}
    with serve(make_vapi_app([], data=data)) as server, _live(server) as provider:
        snap = provider.get_snapshot(provider.get_call(CALL_ID))
        refund = snap.tool("issue_refund")
        assert refund is not None and refund.server_url == "https://tools.example.com/refund"
        assert refund.parameters["properties"] == {"order_id": {"type": "string"}}
        del data.tools["tool-refund"]  # a tool deleted since the call: left out, with a warning
        with VapiProvider(KEY, server.url) as fresh:
            snap = fresh.get_snapshot(fresh.get_call(CALL_ID))
        assert snap.tool("issue_refund") is None and snap.tool("check_status") is not None
        assert len(server.seen(r"^/tool/tool-refund$")) == 2
