"""Who may use the web app, and forged cross-site requests: the API token (bearer for /api and
/files, a sign-in form and a signed HttpOnly, SameSite=Strict session cookie for the pages),
CSRF (Origin/Referer and the double-submit token) with and without a token configured, and
`voicereplay serve` started for real with a token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.test_web_api import DEMO_CALL, FAKES, import_demo
from voicereplay.config import Settings
from voicereplay.store import Store
from voicereplay.web import create_app
from voicereplay.web.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SecurityMiddleware,
    new_session,
    valid_session,
)

TOKEN = "s3cret-token-for-tests"
REPO = Path(__file__).resolve().parent.parent
EVIL = "https://evil.example"


@pytest.fixture
def store() -> Store:
    store = Store.from_settings(Settings.from_env())
    import_demo(store)
    return store


def app_client(store: Store, monkeypatch: pytest.MonkeyPatch, token: str | None
               ) -> TestClient:
    if token:
        monkeypatch.setenv("VOICEREPLAY_API_TOKEN", token)
    return TestClient(create_app(Settings.from_env(), store=store), follow_redirects=False)


@pytest.fixture
def open_client(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with app_client(store, monkeypatch, None) as client:
        yield client


@pytest.fixture
def locked(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with app_client(store, monkeypatch, TOKEN) as client:
        yield client


def pending_job(store: Store) -> str:
    from voicereplay.pipeline import CallRef, ReplayRequest
    from voicereplay.pipeline.jobs import submit_replay

    job, _ = submit_replay(store, ReplayRequest(call=CallRef(call_id=DEMO_CALL), **FAKES))
    return job.id


def csrf_of(client: TestClient) -> str:
    """The CSRF token a page handed this browser (the sign-in page renders one)."""
    client.get("/signin")
    token = client.cookies.get(CSRF_COOKIE)
    assert token
    return token


def status_of(store: Store, job_id: str) -> str:
    return store.jobs.get(job_id).status


# -- without a token: open, but not forgeable ------------------------------------------------


def test_an_open_app_refuses_forged_cross_site_posts(open_client: TestClient,
                                                     store: Store) -> None:
    job = pending_job(store)
    cancel = f"/api/jobs/{job}/cancel"
    assert open_client.get("/api/jobs").status_code == 200  # reading needs nothing
    forged = [
        # A cross-site form: no CSRF field, another site's Origin.
        {"data": {"x": "1"}, "headers": {"Origin": EVIL}},
        # Same, with a guessed token and a cookie-less browser.
        {"data": {"csrf_token": "guess"}, "headers": {"Origin": EVIL}},
        # JSON sneaked in as text/plain (no preflight needed for that) from another site.
        {"content": b"{}", "headers": {"Origin": EVIL, "Content-Type": "text/plain"}},
        # A sandboxed page sends Origin: null.
        {"data": {"x": "1"}, "headers": {"Origin": "null"}},
        # An old browser without Origin, but with the attacker's Referer.
        {"data": {"x": "1"}, "headers": {"Referer": f"{EVIL}/page"}},
        # No Origin, no Referer (suppressed), no token: still a form that anyone can post.
        {"data": {"x": "1"}},
        {"content": b"", "headers": {}},
        # A JSON body is preflighted, but a foreign Origin is refused all the same.
        {"json": {}, "headers": {"Origin": EVIL}},
    ]
    for attempt in forged:
        response = open_client.post(cancel, **attempt)  # type: ignore[arg-type]
        assert response.status_code == 403, (attempt, response.text)
        assert response.json()["error"]["type"] == "CSRFError"
    assert status_of(store, job) == "PENDING"  # nothing happened

    # A wrong token with a cookie is refused; the browser's own token passes (form or
    # header). (Pages render it with csrf_token(request); the locked tests below take it
    # from the sign-in page — an open app has none, so the cookie is set as a page would.)
    token = "a-token-a-page-rendered"
    open_client.cookies.set(CSRF_COOKIE, token)
    wrong = open_client.post(cancel, data={"csrf_token": token + "x"},
                             headers={"Origin": "http://testserver"})
    assert wrong.status_code == 403 and status_of(store, job) == "PENDING"
    ok = open_client.post(cancel, data={"csrf_token": token},
                          headers={"Origin": "http://testserver"})
    assert ok.status_code == 200 and status_of(store, job) == "CANCELLED"
    retry = open_client.post(f"/api/jobs/{job}/retry", headers={"X-CSRF-Token": token})
    assert retry.status_code == 200 and status_of(store, job) == "PENDING"
    # A script's JSON request without Origin (curl) works on an open app.
    assert open_client.post(cancel, json={}).status_code == 200


def test_the_csrf_cookie_is_set_when_a_page_makes_a_token(open_client: TestClient,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          store: Store) -> None:
    with app_client(store, monkeypatch, TOKEN) as client:
        page = client.get("/signin")
        token = page.cookies.get(CSRF_COOKIE)
        assert token and f'value="{token}"' in page.text
        assert "samesite=lax" in page.headers["set-cookie"].lower()
        again = client.get("/signin")  # the browser sends it back: no new cookie
        assert CSRF_COOKIE not in again.cookies and f'value="{token}"' in again.text


# -- with a token ------------------------------------------------------------------------------


def test_the_api_and_files_need_the_bearer_token(locked: TestClient) -> None:
    stereo = f"/files/calls/vapi/{DEMO_CALL}/stereo"
    for url in ("/api/jobs", "/api/calls", stereo, f"/api/calls/{DEMO_CALL}"):
        missing = locked.get(url)
        assert missing.status_code == 401, url
        assert missing.json()["error"]["type"] == "Unauthorized"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = locked.get(url, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "wrong" in wrong.json()["error"]["message"]
        assert locked.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert locked.get(stereo, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert locked.get("/static/app.css").status_code == 200  # static files stay public


def test_a_bearer_request_needs_no_csrf_token(locked: TestClient, store: Store) -> None:
    job = pending_job(store)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    response = locked.post(f"/api/jobs/{job}/cancel", headers=bearer)  # no body, no CSRF
    assert response.status_code == 200 and status_of(store, job) == "CANCELLED"
    created = locked.post("/api/replays", headers=bearer,
                          json={"call": {"call_id": DEMO_CALL}, **FAKES, "seed": 7})
    assert created.status_code == 202


def test_pages_redirect_to_the_sign_in_form_and_it_sets_a_signed_session(
        locked: TestClient, store: Store) -> None:
    first = locked.get("/calls?q=refund")
    assert first.status_code == 303
    assert first.headers["location"] == "/signin?next=%2Fcalls%3Fq%3Drefund"
    assert locked.get("/docs").status_code == 303
    assert locked.get("/openapi.json").status_code == 303
    form = locked.get("/signin", params={"next": "/calls?q=refund"})
    assert form.status_code == 200 and 'name="token"' in form.text
    csrf = locked.cookies[CSRF_COOKIE]
    origin = {"Origin": "http://testserver"}

    bad = locked.post("/signin", data={"token": "guess", "csrf_token": csrf,
                                       "next": "/calls"}, headers=origin)
    assert bad.status_code == 401 and SESSION_COOKIE not in bad.cookies
    assert "not the token" in bad.text
    # Signing in is a form too: a cross-site one (login CSRF) is refused.
    assert locked.post("/signin", data={"token": TOKEN, "next": "/calls"},
                       headers={"Origin": EVIL}).status_code == 403

    good = locked.post("/signin", data={"token": TOKEN, "csrf_token": csrf,
                                        "next": "/calls?q=refund"}, headers=origin)
    assert good.status_code == 303 and good.headers["location"] == "/calls?q=refund"
    cookie = good.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    session = good.cookies[SESSION_COOKIE]
    assert TOKEN not in session and valid_session(TOKEN, session)
    assert locked.get("/calls").status_code == 200  # the cookie signs the pages in
    assert locked.get("/api/jobs").status_code == 200  # and the page's scripts' API calls

    # A cookie-authenticated change still needs the CSRF token.
    job = pending_job(store)
    assert locked.post(f"/api/jobs/{job}/cancel", data={"x": "1"},
                       headers=origin).status_code == 403
    assert locked.post(f"/api/jobs/{job}/cancel", headers={**origin, "X-CSRF-Token": csrf}
                       ).status_code == 200

    out = locked.post("/signout", data={"csrf_token": csrf}, headers=origin)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert locked.get("/calls").status_code == 303


def test_a_multipart_form_carries_its_csrf_field_through(locked: TestClient) -> None:
    """The middleware reads the form to find csrf_token and hands the same body on: the
    sign-in route still reads its fields (here sent as multipart/form-data)."""
    csrf = csrf_of(locked)
    fields = {"token": (None, TOKEN), "csrf_token": (None, csrf), "next": (None, "/calls")}
    signed = locked.post("/signin", files=fields, headers={"Origin": "http://testserver"})
    assert signed.status_code == 303 and SESSION_COOKIE in signed.cookies
    forged = locked.post("/signin", files={**fields, "csrf_token": (None, "guess")})
    assert forged.status_code == 403


def test_sessions_cannot_be_forged_or_kept_forever(locked: TestClient) -> None:
    good = new_session(TOKEN)
    assert valid_session(TOKEN, good)
    assert not valid_session("another-token", good)  # a new token signs everyone out
    assert not valid_session(TOKEN, good[:-1] + ("0" if good[-1] != "0" else "1"))
    expires = int(good.split(".")[1])
    assert not valid_session(TOKEN, good, now=expires + 1)
    assert not valid_session(TOKEN, TOKEN) and not valid_session(TOKEN, "")
    locked.cookies.set(SESSION_COOKIE, TOKEN)  # the raw token is not a session
    assert locked.get("/calls").status_code == 303
    locked.cookies.set(SESSION_COOKIE, new_session("another-token"))
    assert locked.get("/calls").status_code == 303
    locked.cookies.set(SESSION_COOKIE, good)
    assert locked.get("/calls").status_code == 200


def test_sign_in_never_redirects_off_site(locked: TestClient) -> None:
    csrf = csrf_of(locked)
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", ""):
        response = locked.post("/signin", data={"token": TOKEN, "csrf_token": csrf,
                                                "next": target},
                               headers={"Origin": "http://testserver"})
        assert response.headers["location"] == "/calls", target


def test_a_path_prefix_can_be_exempted_for_webhooks() -> None:
    async def hook(request: object) -> PlainTextResponse:
        return PlainTextResponse("taken")

    app = SecurityMiddleware(
        Starlette(routes=[Route("/webhooks/vapi", hook, methods=["POST"]),
                          Route("/api/x", hook, methods=["POST"])]),
        api_token=TOKEN, public=("/static/", "/webhooks/"))
    client = TestClient(app)  # type: ignore[arg-type]
    assert client.post("/webhooks/vapi", content=b"{}", headers={"Origin": EVIL}).text \
        == "taken"
    assert client.post("/api/x", content=b"{}").status_code == 401


def test_a_websocket_needs_a_sign_in_too() -> None:
    async def echo(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("hello")
        await socket.close()

    app = SecurityMiddleware(Starlette(routes=[WebSocketRoute("/ws", echo)]), api_token=TOKEN)
    client = TestClient(app)  # type: ignore[arg-type]
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws"):
        pass
    assert refused.value.code == 1008
    with client.websocket_connect("/ws", headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        assert ws.receive_text() == "hello"


# -- serve, for real ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_serve(tmp_path: Path, token: str | None) -> Iterator[str]:
    """``voicereplay serve`` as a real process on a free loopback port; yields its URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "VOICEREPLAY_API_TOKEN"}
    env["PYTHONPATH"] = str(REPO)
    if token:
        env["VOICEREPLAY_API_TOKEN"] = token
    log_path = tmp_path / f"serve-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "voicereplay", "serve", "--port",
                                 str(port), "--no-worker"], env=env, cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60  # a hang guard, not a speed check
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    httpx.get(f"{url}/static/app.css")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if token:
        assert token not in log_path.read_text()  # never logged


@pytest.mark.integration
def test_serve_with_a_token_starts_and_guards_the_api(tmp_path: Path) -> None:
    with running_serve(tmp_path, TOKEN) as url:
        answer = httpx.get(f"{url}/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200 and answer.json() == []
        assert httpx.get(f"{url}/api/jobs").status_code == 401
        assert httpx.get(f"{url}/calls").status_code == 303
        # With a token, any Host name may reach it (a proxy's, a LAN name's).
        assert httpx.get(f"{url}/api/jobs", headers={"Authorization": f"Bearer {TOKEN}",
                                                     "Host": "voicereplay.lan"}
                         ).status_code == 200


@pytest.mark.integration
def test_serve_without_a_token_answers_loopback_names_only(tmp_path: Path) -> None:
    with running_serve(tmp_path, None) as url:
        assert httpx.get(f"{url}/api/jobs").json() == []
        port = url.rsplit(":", 1)[1]
        assert httpx.get(f"{url}/api/jobs", headers={"Host": f"localhost:{port}"}
                         ).status_code == 200
        # A site that rebinds its name to 127.0.0.1 is same-origin to the browser: refused.
        rebound = httpx.get(f"{url}/api/jobs", headers={"Host": f"evil.example:{port}"})
        assert rebound.status_code == 400
