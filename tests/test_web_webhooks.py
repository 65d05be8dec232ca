"""``POST /webhooks/vapi`` and ``/webhooks/retell``: verified, stored once before the 200,
malformed bodies refused with the reason; over TestClient and over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from retell.lib import webhook_auth as retell_sdk

from tests.fakes import vapi_samples
from tests.fakes.server import serve
from voicereplay.config import Settings
from voicereplay.signatures import VapiAuth, retell_signature
from voicereplay.store import Store
from voicereplay.web import create_app

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RETELL_KEY = "key_webhook_badge"
VAPI_SECRET = "vapi-shared-secret"
TOKEN = "api-token-for-the-app"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(Settings.for_home(tmp_path / "home"), api_token=TOKEN,
                   vapi_webhook=VapiAuth("secret", VAPI_SECRET), retell_webhook_key=RETELL_KEY)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.from_settings(settings) as store:
        yield store


@pytest.fixture
def client(settings: Settings, store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store=store)) as c:
        yield c


def events(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("select count(*) from events")).scalar_one())


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"type", "message"}
    return str(body["message"])


def retell_body(event: str = "call_analyzed") -> str:
    data = json.loads((FIXTURES / "retell" / "retell-webhook-call-analyzed.json").read_text())
    data["event"] = event
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def post_retell(client: Any, body: str, signature: str | None = None) -> httpx.Response:
    signature = signature or retell_sdk.symmetric["sign"](body, RETELL_KEY)
    return client.post("/webhooks/retell", content=body.encode(),
                       headers={"x-retell-signature": signature,
                                "content-type": "application/json"})


def post_vapi(client: Any, body: bytes, **headers: str) -> httpx.Response:
    return client.post("/webhooks/vapi", content=body,
                       headers={"X-Vapi-Secret": VAPI_SECRET, **headers})


# -- Vapi -------------------------------------------------------------------------------------
def test_a_vapi_report_is_stored_once_and_a_redelivery_is_a_duplicate(
        client: TestClient, store: Store) -> None:
    report = vapi_samples.report("call-v1")
    body = json.dumps(report).encode()
    first = post_vapi(client, body)  # no API token or CSRF: the signature is the check
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "stored" and first.json()["duplicate"] is False
    stored = store.events.get(first.json()["event_id"])
    assert (stored.provider, stored.event_type, stored.call_id) == (
        "vapi", "end-of-call-report", "call-v1")
    assert stored.body == body.decode() and stored.status == "PENDING"
    assert VAPI_SECRET not in json.dumps(stored.headers)
    # redelivered with a fresh presigned URL in the body: acknowledged, not stored twice
    report["message"]["artifact"]["recordingUrl"] = "https://storage.example/new?sig=2"
    again = post_vapi(client, json.dumps(report).encode())
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate" and again.json()["duplicate"] is True
    assert again.json()["event_id"] == stored.id
    assert events(store) == 1 and store.events.get(stored.id).deliveries == 2


def test_vapi_status_updates_are_stored_per_status_and_other_types_ignored(
        client: TestClient, store: Store) -> None:
    for status in ("in-progress", "ended", "ended"):
        body = {"message": {"type": "status-update", "status": status, "call": {"id": "c2"}}}
        assert post_vapi(client, json.dumps(body).encode()).status_code == 200
    kinds = sorted(e.event_type for e in store.events.list(call_id="c2"))
    assert kinds == ["status-update:ended", "status-update:in-progress"]
    for kind in ("transcript", "speech-update", "conversation-update", "hang"):
        answer = post_vapi(client, json.dumps({"message": {"type": kind,
                                                           "call": {"id": "c2"}}}).encode())
        assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert events(store) == 2


@pytest.mark.parametrize("headers, reason", [
    ({"X-Vapi-Secret": ""}, "does not match"),
    ({"X-Vapi-Secret": "guess"}, "does not match"),
    ({"Authorization": f"Bearer {TOKEN}"}, "missing the X-Vapi-Secret"),
])
def test_vapi_webhooks_without_the_secret_are_401_and_not_stored(
        client: TestClient, store: Store, headers: dict[str, str], reason: str) -> None:
    body = json.dumps(vapi_samples.report()).encode()
    answer = client.post("/webhooks/vapi", content=body, headers=headers)
    assert reason in error(answer, 401)
    assert events(store) == 0


@pytest.mark.parametrize("body, reason", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"type": "end-of-call-report"}', 'no "message"'),
    (b'{"message": {"call": {"id": "c"}}}', 'no "type"'),
    (b'{"message": {"type": "end-of-call-report", "call": {}}}', '"call.id"'),
    (b'{"message": {"type": "status-update", "status": "ended"}}', '"call.id"'),
])
def test_malformed_vapi_bodies_are_400_with_the_reason(
        client: TestClient, store: Store, body: bytes, reason: str) -> None:
    assert reason in error(post_vapi(client, body), 400)
    assert events(store) == 0


def test_vapi_hmac_signed_webhooks(settings: Settings, store: Store) -> None:
    auth = VapiAuth("hmac", "hmac-key", algorithm="sha512", prefix="sha512=")
    body = json.dumps(vapi_samples.report("c-h")).encode()
    with TestClient(create_app(replace(settings, vapi_webhook=auth), store=store)) as client:
        stamp = str(int(time.time()))
        good = {"x-signature": auth.sign(body.decode(), stamp), "x-timestamp": stamp}
        assert post_vapi(client, body, **good).json()["status"] == "stored"
        old = str(int(time.time()) - 3600)
        replayed = {"x-signature": auth.sign(body.decode(), old), "x-timestamp": old}
        assert "away from now" in error(post_vapi(client, body, **replayed), 401)
        sha256 = hmac.new(b"hmac-key", f"{stamp}.".encode() + body, "sha256").hexdigest()
        wrong = {"x-signature": "sha512=" + sha256, "x-timestamp": stamp}
        assert "does not match" in error(post_vapi(client, body, **wrong), 401)
    assert events(store) == 1


def test_with_no_secret_configured_every_webhook_is_refused(tmp_path: Path) -> None:
    settings = Settings.for_home(tmp_path / "open")  # no API token either
    with Store.from_settings(settings) as store, \
            TestClient(create_app(settings, store=store)) as client:
        vapi = post_vapi(client, json.dumps(vapi_samples.report()).encode())
        assert "VOICEREPLAY_VAPI_WEBHOOK_SECRET" in error(vapi, 401)
        retell = post_retell(client, retell_body())
        assert "RETELL_API_KEY" in error(retell, 401)
        # even an event type that would be ignored: nothing unauthenticated gets a 200
        ignored = client.post("/webhooks/vapi", content=b'{"message":{"type":"hang"}}')
        assert ignored.status_code == 401
        assert events(store) == 0


def test_an_oversized_body_is_refused_before_it_is_read(
        client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from voicereplay.web.routes import webhooks

    monkeypatch.setattr(webhooks, "MAX_BODY_BYTES", 1000)
    body = json.dumps({"message": {"type": "status-update", "status": "ended",
                                   "call": {"id": "c"}, "pad": "x" * 2000}}).encode()
    assert "larger than" in error(post_vapi(client, body), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield body[:600]
        yield body[600:]

    streamed = client.post("/webhooks/vapi", content=chunks(),
                           headers={"X-Vapi-Secret": VAPI_SECRET})
    assert "larger than" in error(streamed, 413)
    assert events(store) == 0


# -- Retell -----------------------------------------------------------------------------------
def test_retell_call_ended_and_call_analyzed_are_both_stored_once(
        client: TestClient, store: Store) -> None:
    ended, analyzed = retell_body("call_ended"), retell_body("call_analyzed")
    assert post_retell(client, ended).json()["status"] == "stored"
    assert post_retell(client, analyzed).json()["status"] == "stored"
    assert post_retell(client, analyzed).json()["status"] == "duplicate"
    call_id = json.loads(analyzed)["call"]["call_id"]
    stored = {e.event_type: e for e in store.events.list(provider="retell")}
    assert sorted(stored) == ["call_analyzed", "call_ended"]
    assert stored["call_analyzed"].call_id == call_id
    assert stored["call_analyzed"].body == analyzed
    assert stored["call_analyzed"].deliveries == 2
    started = post_retell(client, retell_body("call_started"))
    assert started.status_code == 200 and started.json()["status"] == "ignored"
    assert events(store) == 2


def test_retell_bad_signatures_are_401_and_nothing_is_stored(
        client: TestClient, store: Store) -> None:
    body = retell_body()
    signature = retell_sdk.symmetric["sign"](body, RETELL_KEY)
    tampered = body.replace('"call_analyzed"', '"call_ended"')
    assert "does not match" in error(post_retell(client, tampered, signature), 401)
    wrong_key = retell_sdk.symmetric["sign"](body, "another-key")
    assert "does not match" in error(post_retell(client, body, wrong_key), 401)
    expired = retell_sdk.symmetric["sign"](body, RETELL_KEY, int(time.time() * 1000) - 600_000)
    assert "away from now" in error(post_retell(client, body, expired), 401)
    missing = client.post("/webhooks/retell", content=body.encode())
    assert "missing the x-retell-signature" in error(missing, 401)
    assert events(store) == 0


def test_malformed_retell_bodies_are_400(client: TestClient, store: Store) -> None:
    for body, reason in (("{", "not JSON"), ('{"call": {}}', 'no "event"'),
                         ('{"event": "call_ended", "call": {}}', '"call.call_id"')):
        assert reason in error(post_retell(client, body), 400)
    assert events(store) == 0


# -- over real HTTP ---------------------------------------------------------------------------
def test_webhooks_over_real_http_on_loopback(settings: Settings, store: Store) -> None:
    app = create_app(settings, store=store)
    body = retell_body("call_analyzed")
    with serve(app) as server, httpx.Client(base_url=server.url) as http:
        # signed by retell-sdk itself, as Retell's servers sign it
        signed = post_retell(http, body, retell_sdk.symmetric["sign"](body, RETELL_KEY))
        assert signed.status_code == 200 and signed.json()["status"] == "stored"
        # the event is in the database by the time the 200 arrives
        found = store.events.get(signed.json()["event_id"])
        assert found.body == body
        assert post_retell(http, body).json()["status"] == "duplicate"
        tampered = body.replace("call_", "call-", 1)
        assert post_retell(http, tampered, retell_signature(body, RETELL_KEY, int(
            time.time() * 1000))).status_code == 401
        vapi = post_vapi(http, json.dumps(vapi_samples.report("c-http")).encode())
        assert vapi.status_code == 200 and vapi.json()["status"] == "stored"
        # the rest of the app still wants its token
        assert http.get("/api/calls").status_code == 401
    assert events(store) == 2
