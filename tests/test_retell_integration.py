"""RetellProvider against the fake Retell API over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.retell_api import FakeRetellAPI, make_retell_app
from tests.fakes.retell_samples import (
    START_MS,
    sample_agent,
    sample_call,
    sample_llm,
    tiny_wav,
)
from tests.fakes.server import RunningServer, serve
from voicereplay.artifacts import ArtifactStore
from voicereplay.errors import AuthError, NotFoundError, RecordingError
from voicereplay.providers.retell import RetellProvider
from voicereplay.providers.retell_fields import call_body
from voicereplay.providers.retell_payload import parse_call

pytestmark = pytest.mark.integration

KEY = "test-retell-key"
RETELL_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "retell"


def _fake_with_calls(count: int = 5) -> FakeRetellAPI:
    app = make_retell_app([], api_key=KEY)
    for i in range(count):
        app.add_call(
            sample_call(f"call_int{i}", start_ms=START_MS - i * 60_000),
            recordings={"stereo": tiny_wav(channels=2), "mixed": tiny_wav(channels=1)},
            agent=sample_agent(),
            llm=sample_llm(),
        )
    return app


@pytest.fixture
def server() -> Iterator[tuple[RunningServer, FakeRetellAPI]]:
    app = _fake_with_calls()
    with serve(app) as running:
        yield running, app


def _live(server: RunningServer, key: str = KEY) -> RetellProvider:
    return RetellProvider(key, server.url, sleep=lambda s: None, max_retries=3)


def test_fake_get_call(server: tuple[RunningServer, FakeRetellAPI]) -> None:
    running, _ = server
    with _live(running) as provider:
        call = provider.get_call("call_int0")
    assert call.call_id == "call_int0" and len(call.turns) == 11
    stereo = call.recording("stereo")
    assert stereo is not None and stereo.url == f"{running.url}/recordings/call_int0.stereo.wav"


def test_fake_list_across_pages_with_v3(server: tuple[RunningServer, FakeRetellAPI]) -> None:
    running, _ = server
    with _live(running) as provider:
        provider.page_size = 2
        since = datetime.fromtimestamp((START_MS - 3 * 60_000) / 1000, tz=UTC)
        until = datetime.fromtimestamp(START_MS / 1000, tz=UTC) + timedelta(seconds=1)
        calls = list(provider.list_calls(since=since, until=until))
        assert [c.call_id for c in provider.list_calls(until=until, limit=5)] == [
            f"call_int{i}" for i in range(5)]
        assert [c.call_id for c in provider.list_calls(since=since)] == [
            f"call_int{i}" for i in range(4)]
    assert [c.call_id for c in calls] == ["call_int0", "call_int1", "call_int2", "call_int3"]
    assert [len(c.turns) for c in calls] == [11] * 4  # v3 items have no transcript: fetched
    assert len(running.seen(r"^/v3/list-calls$")) == 2 + 3 + 2  # has_more ends each listing
    assert running.seen(r"^/v2/list-calls$") == []


def test_fake_list_across_pages_falls_back_to_v2(
    server: tuple[RunningServer, FakeRetellAPI],
) -> None:
    running, app = server
    app.v3_available = False  # an account whose API has no /v3/list-calls
    with _live(running) as provider:
        provider.page_size = 2
        since = datetime.fromtimestamp((START_MS - 3 * 60_000) / 1000, tz=UTC)
        until = datetime.fromtimestamp(START_MS / 1000, tz=UTC) + timedelta(seconds=1)
        ids = [c.call_id for c in provider.list_calls(since=since, until=until)]
        assert [c.call_id for c in provider.list_calls(limit=1)] == ["call_int0"]
    assert ids == ["call_int0", "call_int1", "call_int2", "call_int3"]
    assert len(running.seen(r"^/v3/list-calls$")) == 1  # asked once, then remembered
    assert len(running.seen(r"^/v2/list-calls$")) == 3 + 1  # 2 + 2 + an empty last page
    assert running.seen(r"^/v2/get-call/") == []  # v2 items carry their transcripts


def test_fake_list_without_transcripts_fetches_each_call(
    server: tuple[RunningServer, FakeRetellAPI],
) -> None:
    running, app = server
    app.list_without_transcripts = True
    app.v3_available = False
    with _live(running) as provider:
        calls = list(provider.list_calls(limit=2))
    assert [len(c.turns) for c in calls] == [11, 11]
    assert len(running.seen(r"^/v2/get-call/")) == 2


def test_fake_agent_and_llm_at_the_calls_versions(
    server: tuple[RunningServer, FakeRetellAPI],
) -> None:
    running, app = server
    app.add_agent({**sample_agent(version=4), "voice_id": "openai-Alloy",
                   "response_engine": {"type": "retell-llm", "llm_id": "llm_sample", "version": 5}})
    app.add_llm({**sample_llm(version=5), "general_prompt": "A newer prompt."})
    with _live(running) as provider:
        call = provider.get_call("call_int1")
        snap = provider.get_snapshot(call)
        with pytest.raises(NotFoundError, match="version 9"):
            provider.get_snapshot(call.model_copy(update={"agent_version": "9"}))
    assert snap.voice.voice_id == "11labs-Adrian"
    assert snap.system_prompt is not None and snap.system_prompt.startswith("You are the front")
    assert (snap.source.agent_version, snap.source.llm_version) == ("3", "2")


def test_fake_recording_download_into_the_store(
    server: tuple[RunningServer, FakeRetellAPI], tmp_path: Path
) -> None:
    running, _ = server
    store = ArtifactStore(tmp_path / "artifacts")
    with _live(running) as provider:
        call = provider.get_call("call_int2")
        stereo = call.recording("stereo")
        assert stereo is not None
        saved = provider.fetch_recording(call, stereo, store)
    expected = tiny_wav(channels=2)
    assert saved.sha256 == hashlib.sha256(expected).hexdigest()
    assert saved.size == len(expected)
    assert saved.path is not None and Path(saved.path).read_bytes() == expected
    assert saved.path.endswith(".wav")
    (request,) = running.seen(r"^/recordings/")
    assert "authorization" not in request.headers  # the API key never goes to the CDN


def test_fake_missing_recording_is_a_recording_error(
    server: tuple[RunningServer, FakeRetellAPI], tmp_path: Path
) -> None:
    running, app = server
    app.add_call(sample_call("call_norec"))
    with _live(running) as provider:
        call = provider.get_call("call_norec")
        mixed = call.recording("mixed")
        assert mixed is not None
        with pytest.raises(RecordingError, match="call_norec"):
            provider.fetch_recording(call, mixed, ArtifactStore(tmp_path))


@pytest.mark.parametrize("status", [429, 500])
def test_fake_transient_errors_then_success(
    server: tuple[RunningServer, FakeRetellAPI], status: int
) -> None:
    running, _ = server
    running.fail(r"^/v2/get-call/", status=status, headers={"Retry-After": "0"}, times=2)
    with _live(running) as provider:
        assert provider.get_call("call_int3").call_id == "call_int3"
    assert len(running.seen(r"^/v2/get-call/call_int3$")) == 3


def test_fake_wrong_key_is_an_auth_error(server: tuple[RunningServer, FakeRetellAPI]) -> None:
    running, _ = server
    with _live(running, key="wrong-key") as provider, pytest.raises(AuthError) as info:
        provider.get_call("call_int0")
    assert "RETELL_API_KEY" in str(info.value) and "call_int0" in str(info.value)
    with RetellProvider(None, running.url) as keyless, pytest.raises(AuthError, match="no API key"):
        keyless.get_call("call_int0")


def test_fake_unknown_call_is_not_found(server: tuple[RunningServer, FakeRetellAPI]) -> None:
    running, _ = server
    with _live(running) as provider, pytest.raises(NotFoundError, match="call_nope"):
        provider.get_call("call_nope")


FIXTURE_STEMS = sorted(p.stem for p in RETELL_FIXTURES.glob("*.json") if "." not in p.stem)


def test_fake_serves_the_fixture_directory(tmp_path: Path) -> None:
    app = make_retell_app([RETELL_FIXTURES], api_key=KEY)
    store = ArtifactStore(tmp_path)
    assert len(FIXTURE_STEMS) == 2
    with serve(app) as running, _live(running) as provider:
        listed = {c.call_id for c in provider.list_calls()}
        for stem in FIXTURE_STEMS:
            payload = json.loads((RETELL_FIXTURES / f"{stem}.json").read_text(encoding="utf-8"))
            call_id = call_body(payload)[0]["call_id"]
            assert call_id in listed
            served = provider.get_call(call_id)
            assert served.turns == parse_call(payload).turns
            for rec in served.recordings:
                local = RETELL_FIXTURES / f"{stem}.{rec.kind}.wav"
                saved = provider.fetch_recording(served, rec, store)
                assert saved.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()
            if (RETELL_FIXTURES / f"{stem}.agent.json").exists():
                snap = provider.get_snapshot(served)
                assert snap.source.agent_id == served.agent_id
                assert snap.source.agent_version == served.agent_version
