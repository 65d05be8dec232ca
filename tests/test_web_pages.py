"""The pages, server side (FastAPI's TestClient over a store with the demo call and a replay of
it made with the fake backends): the comparison page, the call page, the replay form and the
job status, the calls list, and error pages that say what to do."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.web_demo import DEMO_CALL, replayed_demo
from voicereplay.config import Settings
from voicereplay.store import Store
from voicereplay.web import create_app


@dataclass
class Site:
    client: TestClient
    store: Store
    settings: Settings
    replay_id: str


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings, store, replay_id = replayed_demo(tmp_path / "home",
                                               system_prompt="You are terse.")
    with TestClient(create_app(settings, store=store)) as client:
        yield Site(client, store, settings, replay_id)


def _data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="comparison-data">(.*?)</script>',
                      page, re.S)
    assert found, "the comparison data is missing"
    return json.loads(found.group(1))


def test_the_comparison_page_has_both_players_with_turns_and_the_diff(site: Site) -> None:
    page = site.client.get(f"/replays/{site.replay_id}")
    assert page.status_code == 200, page.text
    call = site.store.get_call(DEMO_CALL)
    replay = site.store.replays.get(site.replay_id)
    data = _data(page.text)
    players = data["players"]
    assert players["baseline"]["tracks"]["mixed"]["audio"] == f"/files/calls/vapi/{DEMO_CALL}/mixed"
    assert players["baseline"]["tracks"]["caller"]["peaks"] == \
        f"/waveforms/calls/vapi/{DEMO_CALL}/customer.json"
    assert players["replay"]["tracks"]["agent"]["audio"] == f"/files/replays/{replay.id}/agent"
    assert players["replay"]["duration"] == pytest.approx(replay.duration)
    # agent turn 4: the baseline's tool call (issue_refund) starts it; the replay's check_status
    turn4 = next(r for r in data["rows"] if r["kind"] == "agent" and r["number"] == 4)
    first_tool = next(t for t in call.turns if t.tool_calls)
    assert turn4["baseline"]["start"] == pytest.approx(first_tool.start)
    replay_tool = next(t for t in replay.turns if t.tool_calls)
    assert turn4["replay"]["start"] == pytest.approx(replay_tool.start)
    regions = players["baseline"]["regions"]
    assert {r["role"] for r in regions} == {"caller", "agent"}
    assert [r["label"] for r in regions if r["role"] == "agent"] == ["1", "2", "3", "4", "5", "6"]
    assert len(players["replay"]["regions"]) == len(data["rows"])
    text = page.text
    row4 = re.search(r'<tr class="row agent[^"]*tools-changed[^"]*"[^>]*data-turn="4">(.*?)</tr>',
                     text, re.S)
    assert row4, "turn 4 is not marked as a tool change"
    assert 'class="tool changed">→ issue_refund' in row4.group(1)
    assert 'class="tool changed">→ check_status' in row4.group(1)
    assert "turn 4: issue_refund → check_status" in html.unescape(text)
    assert re.search(r'<tr class="row agent[^"]* diverges[^"]*"', text)  # the divergence row
    assert '<script type="module" src="/static/comparison.js">' in text
    assert "<kbd>x</kbd> A/B switch" in text
    assert "You are terse." in text and "system_prompt" in text  # the snapshot diff
    assert 'class="num delta better"' in text  # a metric delta colored
    for name in ("report.json", "report.md", "junit.xml"):
        assert f"/files/replays/{replay.id}/report/{name}" in text
    assert "/static/vendor/htmx.min.js" in text and "cdn" not in text.lower()


def test_provider_text_is_never_markup_on_the_comparison_page(tmp_path: Path) -> None:
    settings, store, replay_id = replayed_demo(tmp_path / "home",
                                               system_prompt="<script>alert(1)</script>")
    page = TestClient(create_app(settings, store=store)).get(f"/replays/{replay_id}")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_static_files_are_served_and_vendored(site: Site) -> None:
    for path in ("/static/comparison.js", "/static/vendor/wavesurfer.esm.js",
                 "/static/vendor/regions.esm.js", "/static/vendor/htmx.min.js"):
        response = site.client.get(path)
        assert response.status_code == 200 and len(response.content) > 1000, path
    assert 'from "./vendor/wavesurfer.esm.js"' in site.client.get("/static/comparison.js").text


def test_unknown_ids_give_a_404_page_that_says_what_to_do(site: Site) -> None:
    for url in ("/replays/0123456789ab", f"/calls/vapi/{'0' * 8}-nope", "/jobs/0123456789ab",
                "/calls/vapi/nope/replay"):
        page = site.client.get(url)
        assert page.status_code == 404, url
        assert "Check the id" in page.text and "Back to the calls" in page.text, url
        assert "Traceback" not in page.text
