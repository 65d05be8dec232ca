"""``/files/…``: audio and report files by id and name, with HTTP range requests (what a
browser's audio player needs to seek), and nothing but the store's own files — unknown ids,
unknown names and path-traversal attempts are a 404 (or 400) and never a file from elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.test_web_api import DEMO_CALL, import_demo, replay_demo
from voicereplay import pipeline
from voicereplay.config import Settings
from voicereplay.models import Replay
from voicereplay.store import Store
from voicereplay.web import create_app

STEREO = f"/files/calls/vapi/{DEMO_CALL}/stereo"


@pytest.fixture
def store() -> Store:
    store = Store.from_settings(Settings.from_env())
    import_demo(store)
    return store


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(Settings.from_env(), store=store)) as c:
        yield c


@pytest.fixture
def replay(store: Store) -> Replay:
    return replay_demo(store)  # with report files and PNG figures


def demo_bytes(kind: str) -> bytes:
    return (pipeline.demo_dir() / f"demo-refund.{kind}.wav").read_bytes()


def test_a_plain_get_serves_the_whole_file_and_says_ranges_work(client: TestClient) -> None:
    response = client.get(STEREO)
    assert response.status_code == 200
    assert response.content == demo_bytes("stereo")
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["content-length"] == str(len(demo_bytes("stereo")))
    assert response.headers["content-disposition"].startswith("inline;")
    assert response.headers["x-content-type-options"] == "nosniff"
    download = client.get(STEREO, params={"download": 1})
    assert download.headers["content-disposition"] == (
        f'attachment; filename="vapi-{DEMO_CALL}-stereo.wav"')
    for track in ("customer", "agent", "mixed"):
        got = client.get(f"/files/calls/vapi/{DEMO_CALL}/{track}")
        assert got.status_code == 200 and got.content == demo_bytes(track)


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-99", 0, 99),  # the first bytes
    ("bytes=1000-1999", 1000, 1999),  # a middle range
    ("bytes=-500", None, None),  # the last 500 bytes (a suffix range)
    ("bytes=1485000-", 1485000, None),  # from an offset to the end
    ("bytes=1485700-99999999", 1485700, None),  # an end past the file is the file's end
])
def test_range_requests(client: TestClient, header: str, start: int | None,
                        end: int | None) -> None:
    data = demo_bytes("stereo")
    size = len(data)
    if start is None:
        start = size - 500
    if end is None:
        end = size - 1
    response = client.get(STEREO, headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["content-type"] == "audio/wav"
    assert response.content == data[start:end + 1]


def test_unsatisfiable_and_malformed_ranges(client: TestClient) -> None:
    size = len(demo_bytes("stereo"))
    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        response = client.get(STEREO, headers={"Range": header})
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{size}"
    assert client.get(STEREO, headers={"Range": "lines=1-2"}).status_code == 400
    # Two ranges come back as multipart/byteranges.
    both = client.get(STEREO, headers={"Range": "bytes=0-9,100-109"})
    assert both.status_code == 206
    assert both.headers["content-type"].startswith("multipart/byteranges; boundary=")


def test_replay_audio_and_report_files(client: TestClient, replay: Replay) -> None:
    folder = Path(replay.recordings[0].path or "").parent
    for kind in ("stereo", "customer", "agent", "mixed"):
        got = client.get(f"/files/replays/{replay.id}/{kind}", headers={"Range": "bytes=0-3"})
        assert got.status_code == 206 and got.content == b"RIFF"
    whole = client.get(f"/files/replays/{replay.id[:10]}/mixed")
    assert whole.content == (folder / "mixed.wav").read_bytes()
    types = {"report.json": "application/json", "report.md": "text/markdown; charset=utf-8",
             "junit.xml": "application/xml", "latency.png": "image/png",
             "waveform.png": "image/png"}
    for name, media_type in types.items():
        got = client.get(f"/files/replays/{replay.id}/report/{name}")
        assert got.status_code == 200, name
        assert got.headers["content-type"] == media_type
        assert got.content == (folder / name).read_bytes()
    assert client.get(f"/files/replays/{replay.id}/report/report.json").json()["replay"][
        "id"] == replay.id
    # A known name the replay has no file for (it drew PNG, not SVG).
    assert client.get(f"/files/replays/{replay.id}/report/latency.svg").status_code == 404


def _not_served(response: httpx.Response) -> None:
    assert response.status_code in (400, 404), (response.status_code, response.text[:200])
    assert b"root:" not in response.content and b"RIFF" not in response.content[:4]


def test_unknown_ids_and_names_are_json_404s(client: TestClient, replay: Replay) -> None:
    for url in (f"/files/calls/vapi/{DEMO_CALL}/video", f"/files/calls/retell/{DEMO_CALL}/stereo",
                "/files/calls/vapi/no-such-call/stereo", f"/files/calls/twilio/{DEMO_CALL}/stereo",
                "/files/replays/ffffffffffff/mixed", f"/files/replays/{replay.id}/both",
                f"/files/replays/{replay.id}/report/notes.txt",
                f"/files/replays/{replay.id}/report/stereo.wav"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["type"] == "NotStoredError", url


def test_path_traversal_is_never_a_file(client: TestClient, replay: Replay,
                                        store: Store) -> None:
    secret = store.home / "secret.txt"  # beside the artifacts, inside the home
    secret.write_text("root:x:0:0")
    attempts = [
        "/files/replays/{r}/report/..%2f..%2f..%2fsecret.txt",
        "/files/replays/{r}/report/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/files/replays/{r}/report/%2e%2e",
        "/files/replays/{r}/..%2f..%2f..%2fsecret.txt",
        "/files/replays/{r}/%2Fetc%2Fpasswd",
        "/files/replays/{r}/report/%2Fetc%2Fpasswd",
        "/files/replays/..%2f..%2fsecret.txt/mixed",
        "/files/replays/%2e%2e/report/report.json",
        "/files/calls/vapi/..%2f..%2f..%2fsecret.txt/stereo",
        "/files/calls/vapi/%2Fetc%2Fpasswd/stereo",
        f"/files/calls/vapi/{DEMO_CALL}/..%2f..%2fsecret.txt",
        f"/files/calls/vapi/{DEMO_CALL}/%2e%2e%2fstereo",
        f"/files/calls/vapi/{DEMO_CALL}/stereo%2f..%2f..%2fsecret.txt",
        "/files/replays/{r}/report/report.json%00.png",
    ]
    for url in attempts:
        _not_served(client.get(url.format(r=replay.id)))
    # Raw, un-normalized paths straight to the app (a client would collapse the dots).
    transport = httpx.ASGITransport(app=client.app)  # type: ignore[arg-type]

    async def raw(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            request = c.build_request("GET", "http://testserver/")
            request.url = request.url.copy_with(raw_path=path.encode())
            return await c.send(request)

    import anyio

    for path in (f"/files/replays/{replay.id}/report/../../../secret.txt",
                 f"/files/replays/{replay.id}/../../secret.txt",
                 f"/files/calls/vapi/{DEMO_CALL}/../../../../secret.txt",
                 "/files/replays/../../../etc/passwd/mixed"):
        _not_served(anyio.run(raw, path))
