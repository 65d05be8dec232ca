"""The pages in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by
Playwright, against the app served by uvicorn on 127.0.0.1 over a store holding the demo call
and a replay of it made with the fake backends (the fake LLM calls check_status where the
call called issue_refund: agent turn 4). Playwright never downloads a browser here.

Waits have generous limits (hang guards); nothing asserts how fast anything is. Screenshots of
the calls list, a call page and the comparison page go to ``test-artifacts/web/``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import FileResponse

from tests.web_demo import DEMO_CALL, replayed_demo
from voicereplay.models import Call, Replay
from voicereplay.pipeline.views import recording_file
from voicereplay.store import Store
from voicereplay.web import create_app

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "web"
WAIT = 60_000  # ms: a hang guard, not a speed check


@dataclass
class Served:
    url: str
    store: Store
    replay_id: str
    call: Call
    replay: Replay


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_audio_until_files_routes_exist(app: FastAPI, store: Store) -> None:
    """The audio routes come with the files router (/files/…, range requests); while a
    checkout has no such route, serve the store's tracks by id and track name here."""
    if any(getattr(r, "path", "").startswith("/files/") for r in app.routes):
        return

    def call_track(provider: str, call_id: str, track: str) -> FileResponse:
        return FileResponse(recording_file(store, track, call_id=call_id, provider=provider),
                            media_type="audio/wav")

    def replay_track(replay_id: str, track: str) -> FileResponse:
        return FileResponse(recording_file(store, track, replay_id=replay_id),
                            media_type="audio/wav")

    app.add_api_route("/files/calls/{provider}/{call_id}/{track}", call_track)
    app.add_api_route("/files/replays/{replay_id}/{track}", replay_track)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: apt-get install chromium (see .ci/run)")
    settings, store, replay_id = replayed_demo(tmp_path_factory.mktemp("web") / "home",
                                               system_prompt="You are terse.")
    app = create_app(settings, store=store, worker=True, concurrency=1)
    _serve_audio_until_files_routes_exist(app, store)
    with serving(app) as url:
        yield Served(url, store, replay_id, store.get_call(DEMO_CALL),
                     store.replays.get(replay_id))


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free port of 127.0.0.1 in a thread: its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a hang guard
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.requests = []
    tab.on("request", lambda r: tab.requests.append((r.resource_type, r.url)))
    tab.set_default_timeout(WAIT)
    yield tab
    context.close()
    assert not errors, errors


def _shot(tab: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    tab.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def _turn4(source: Call | Replay) -> float:
    """Where agent turn 4 starts: the first tool call opens it in both calls."""
    start = next(t.start for t in source.turns if t.tool_calls)
    assert start is not None
    return start


def _open_comparison(tab: Any, served: Served, replay_id: str | None = None) -> None:
    tab.goto(f"{served.url}/replays/{replay_id or served.replay_id}")
    tab.wait_for_function("document.body.dataset.playersReady === 'true'")
    tab.wait_for_function("['baseline', 'replay'].every("
                          "s => document.getElementById('audio-' + s).readyState >= 2)")


def _times(tab: Any) -> dict[str, float]:
    return dict(tab.evaluate("({baseline: document.getElementById('audio-baseline')"
                             ".currentTime, replay: document.getElementById('audio-replay')"
                             ".currentTime})"))


def test_both_players_load_the_whole_of_each_call(page: Any, served: Served) -> None:
    _open_comparison(page, served)
    audio = page.evaluate("['baseline', 'replay'].map(s => { const a = "
                          "document.getElementById('audio-' + s); return [a.readyState, "
                          "a.duration]; })")
    assert audio[0][0] >= 2 and audio[1][0] >= 2
    assert audio[0][1] == pytest.approx(served.call.duration, abs=0.1)
    assert audio[1][1] == pytest.approx(served.replay.duration, abs=0.1)
    regions = page.evaluate("['baseline', 'replay'].map(s => "
                            "window.voicereplay.players[s].regions.getRegions().length)")
    assert regions == [11, 11]  # six agent and five caller turns on each waveform
    labels = page.evaluate("window.voicereplay.players.baseline.regions.getRegions()"
                           ".map(r => [r.color, r.content ? r.content.textContent : ''])")
    agent_colors = {c for c, text in labels if text}
    caller_colors = {c for c, text in labels if not text}
    assert len(agent_colors) == len(caller_colors) == 1 and agent_colors != caller_colors
    assert [text for _, text in labels if text] == ["1", "2", "3", "4", "5", "6"]
    # offline: nothing but this server; the audio streams to <audio>, never fetched to decode
    assert all(url.startswith((served.url, "data:")) for _, url in page.requests), \
        page.requests
    fetched = [url for kind, url in page.requests if kind in ("fetch", "xhr")]
    assert fetched and all("/waveforms/" in url for url in fetched), fetched
    assert {kind for kind, url in page.requests if "/files/" in url} == {"media"}
    _shot(page, "comparison.png")


def test_clicking_turn_4_moves_both_players_to_their_turn_4(page: Any,
                                                            served: Served) -> None:
    _open_comparison(page, served)
    page.click('tr.row[data-turn="4"] th')
    times = _times(page)
    assert times["baseline"] == pytest.approx(_turn4(served.call), abs=0.02)
    assert times["replay"] == pytest.approx(_turn4(served.replay), abs=0.02)
    assert page.inner_text("#now-baseline") == "agent 4"


def test_the_ab_switch_plays_the_other_call_at_the_same_moment(page: Any,
                                                               served: Served) -> None:
    _open_comparison(page, served)
    page.click('tr.row[data-turn="4"] th')
    page.evaluate("document.getElementById('audio-baseline').currentTime = "
                  f"{_turn4(served.call) + 1.0}")
    page.click("#ab-switch")
    page.wait_for_function("window.voicereplay.active === 'replay' && "
                           "!document.getElementById('audio-replay').paused")
    switch = page.evaluate("window.voicereplay.lastSwitch")
    assert switch["from"] == "baseline" and switch["to"] == "replay"
    assert switch["position"] == pytest.approx(_turn4(served.replay) + 1.0, abs=0.02)
    assert page.evaluate("document.getElementById('audio-baseline').paused")
    assert _times(page)["replay"] >= switch["position"] - 0.02
    page.keyboard.press("x")  # and back, by the keyboard shortcut
    page.wait_for_function("window.voicereplay.active === 'baseline'")
    back = page.evaluate("window.voicereplay.lastSwitch")
    offset = back["at"] - _turn4(served.replay)
    # the replay played on from turn 4 + 1.0 s (media clocks round: 0.9999996 was seen)
    assert back["to"] == "baseline" and offset >= 1.0 - 0.02
    assert back["position"] == pytest.approx(_turn4(served.call) + offset, abs=0.02)
    page.click("#pause")


def test_play_both_keeps_the_calls_in_step_turn_by_turn(page: Any, served: Served) -> None:
    _open_comparison(page, served)
    page.click('tr.row[data-turn="4"] th')
    start = _turn4(served.call)
    page.evaluate(f"document.getElementById('audio-baseline').currentTime = {start - 0.4}")
    page.click("#play-both")
    page.wait_for_function(f"document.getElementById('audio-baseline').currentTime > "
                           f"{start + 0.2}")
    synced = page.evaluate("window.voicereplay.syncLog")
    turn4_row = int(page.get_attribute('tr.row[data-turn="4"]', "data-row"))
    entered = [s for s in synced if s["row"] == turn4_row and s["leader"] == "baseline"]
    assert entered, synced
    assert entered[0]["position"] == pytest.approx(_turn4(served.replay), abs=0.02)
    assert _times(page)["replay"] >= _turn4(served.replay) - 0.02
    page.click("#pause")


def test_the_diff_shows_the_turn_4_tool_change(page: Any, served: Served) -> None:
    _open_comparison(page, served)
    row = page.locator('tr.row[data-turn="4"]')
    assert "tools-changed" in (row.get_attribute("class") or "")
    assert "issue_refund" in row.locator("td.baseline .tool.changed").inner_text()
    assert "check_status" in row.locator("td.replay .tool.changed").inner_text()
    assert "turn 4: issue_refund → check_status" in page.inner_text("#tool-changes")


def test_a_turn_plays_alone_and_the_track_switch_keeps_the_moment(page: Any,
                                                                  served: Served) -> None:
    _open_comparison(page, served)
    page.click('tr.row[data-turn="2"] td.replay button.play-turn')
    page.wait_for_function("!document.getElementById('audio-replay').paused")
    page.wait_for_function("document.getElementById('audio-replay').paused")  # at its end
    row = page.evaluate("window.voicereplay.rows.find(r => r.kind === 'agent' && "
                        "r.number === 2).replay")
    at = _times(page)["replay"]
    assert row["end"] - 0.05 <= at <= row["end"] + 0.5
    assert page.evaluate("document.getElementById('audio-baseline').paused")
    page.click('tr.row[data-turn="4"] th')
    page.check('input[name=track][value="caller"]')
    page.wait_for_function("document.getElementById('audio-replay').src.endsWith('/customer')"
                           " && document.getElementById('audio-replay').readyState >= 2")
    assert _times(page)["replay"] == pytest.approx(_turn4(served.replay), abs=0.05)


def test_the_replay_form_runs_a_job_and_opens_its_comparison(page: Any,
                                                             served: Served) -> None:
    page.goto(f"{served.url}/calls")
    assert DEMO_CALL in page.inner_text("#calls")
    _shot(page, "calls.png")
    page.click(f'#calls a[href="/calls/vapi/{DEMO_CALL}"]')
    page.wait_for_selector("#history")
    assert "COMPLETED" in page.inner_text("#history")
    _shot(page, "call.png")
    page.click("#replay-link")
    page.fill("#system_prompt", "You are brief.\nCheck the order status first.")
    page.wait_for_selector("#prompt-diff pre.diff")
    assert "+Check the order status first." in page.inner_text("#prompt-diff")
    for stage, name in (("stt", "fake-stt"), ("llm", "fake-llm"), ("tts", "fake-tts"),
                        ("caller_tts", "fake-tts")):
        page.select_option(f"#{stage}", name)
    page.click("#submit-replay")
    page.wait_for_url("**/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_url("**/replays/*", timeout=180_000)
    job = served.store.jobs.get(job_id)
    assert job.status == "COMPLETED" and page.url.endswith(f"/replays/{job.replay_ids[0]}")
    _open_comparison(page, served, job.replay_ids[0])
    assert "Check the order status first." in page.inner_text("#snapshot-diff")


def test_the_flag_button_flags_the_call_and_the_page_says_so(page: Any, served: Served) -> None:
    page.goto(f"{served.url}/calls/vapi/{DEMO_CALL}")
    page.click("#flag-button")
    page.wait_for_selector("#flag .flagged")
    assert "Flagged" in page.inner_text("#flag")
    assert page.query_selector("#flag-button") is None  # flagged once
    _shot(page, "call-flagged.png")
    assert served.store.events.find("vapi", DEMO_CALL, "flag") is not None
