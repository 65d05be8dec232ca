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
    divergence = site.client.get(f"/replays/{site.replay_id}")  # linked from the summary
    turn = re.search(r'<dd id="divergence"[^>]*><a href="#turn-(\d+)">', divergence.text)
    assert turn and re.search(rf'<tr class="row agent[^"]* diverges[^"]*"[^>]*id="turn-'
                              rf'{turn.group(1)}"', text)
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


CSRF = "test-csrf-token"


def _post(site: Site, url: str, data: dict, **kwargs):  # type: ignore[no-untyped-def]
    """A form post as a browser sends it: the CSRF cookie (the one a page set, if any) and the
    same token in the form and the htmx header."""
    token = site.client.cookies.get("vr_csrf")
    if token is None:
        token = CSRF
        site.client.cookies.set("vr_csrf", token)
    return site.client.post(url, data={**data, "csrf_token": token},
                            headers={"X-CSRF-Token": token, **kwargs.pop("headers", {})},
                            follow_redirects=False, **kwargs)


def _job(site: Site, key: str, status: str):  # type: ignore[no-untyped-def]
    jobs = site.store.jobs
    job, _ = jobs.enqueue("replay", {"mode": "turn", "call": {"call_id": DEMO_CALL}}, key,
                          max_attempts=1, call=("vapi", DEMO_CALL))
    if status == "PENDING":
        return job
    if status == "CANCELLED":
        return jobs.cancel(job.id)
    running = jobs.claim(job.id, "worker-1", lease=60)
    assert running is not None
    if status == "RUNNING":
        jobs.progress(running, "replay", "agent turn 3 of 6")
        return jobs.get(job.id)
    if status == "FAILED":
        return jobs.fail(running, "StageError", "the LLM server refused the request",
                         retry=False)
    return jobs.complete(running, [site.replay_id])


def test_the_call_page_shows_the_call_its_snapshot_and_every_job(site: Site) -> None:
    jobs = {s: _job(site, f"key-{s}", s) for s in ("PENDING", "RUNNING", "FAILED", "CANCELLED")}
    page = site.client.get(f"/calls/vapi/{DEMO_CALL}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    call = site.store.get_call(DEMO_CALL)
    assert call.ended_reason and call.ended_reason in text
    assert call.analysis.summary and call.analysis.summary[:40] in text
    assert "$0.0752" in text and "gpt-4o-mi" in text  # cost; the snapshot's model
    assert "Call flow:" in text and "issue_refund" in text  # system prompt, tools
    assert 'issue_refund(order_id="4417"' in text  # the transcript's tool call
    assert f'src="/files/calls/vapi/{DEMO_CALL}/stereo"' in text
    for status, job in jobs.items():
        assert f'href="/jobs/{job.id}"' in text, status
        assert f'data-status="{status}"' in text
    assert "replay: agent turn 3 of 6" in text  # the running job's stage
    assert "the LLM server refused the request" in text
    assert f'href="/replays/{site.replay_id}"' in text
    assert f'href="/calls/vapi/{DEMO_CALL}/replay"' in text


def test_the_replay_form_is_prefilled_and_shows_the_prompt_diff(site: Site) -> None:
    page = site.client.get(f"/calls/vapi/{DEMO_CALL}/replay")
    assert page.status_code == 200
    snapshot = site.store.snapshot_for_call(DEMO_CALL, "vapi")
    assert snapshot is not None and snapshot.system_prompt
    assert html.escape(snapshot.system_prompt.splitlines()[0]) in page.text
    assert "no change" in page.text
    assert 'name="csrf_token"' in page.text and "fake-llm" in page.text  # plugins' backends
    diff = _post(site, f"/calls/vapi/{DEMO_CALL}/replay/diff",
                 {"system_prompt": "Be brief.\n" + snapshot.system_prompt},
                 headers={"HX-Request": "true"})
    assert diff.status_code == 200
    assert '<span class="add">+Be brief.</span>' in diff.text
    assert "Call flow" not in diff.text  # context lines are trimmed to two


def test_submitting_the_form_enqueues_the_replay_it_describes(site: Site) -> None:
    form = {"mode": "turn", "system_prompt": "You are terse.", "temperature": "0.2",
            "seed": "7", "runs": "2", "tool_mocks": "check_status: {status: shipped}",
            "checks": "- type: tool_called\n  tool: check_status\n", "stt": "fake-stt",
            "llm": "fake-llm", "tts": "fake-tts", "caller_tts": "fake-tts",
            "submission": "form-1"}
    response = _post(site, f"/calls/vapi/{DEMO_CALL}/replay", form)
    assert response.status_code == 303
    job_id = response.headers["location"].removeprefix("/jobs/")
    job = site.store.jobs.get(job_id)
    request = job.request
    assert request["mode"] == "turn" and request["system_prompt"] == "You are terse."
    assert request["temperature"] == 0.2 and request["seed"] == 7 and request["runs"] == 2
    assert request["tool_mocks"] == {"check_status": {"status": "shipped"}}
    assert request["checks"][0]["type"] == "tool_called" and request["llm"] == "fake-llm"
    assert request["call"]["provider"] == "vapi"
    again = _post(site, f"/calls/vapi/{DEMO_CALL}/replay", form)  # a double submit
    assert again.headers["location"] == response.headers["location"]
    unchanged = _post(site, f"/calls/vapi/{DEMO_CALL}/replay", {
        "system_prompt": site.store.snapshot_for_call(DEMO_CALL).system_prompt,  # type: ignore[union-attr]
        "submission": "form-2"})
    job2 = site.store.jobs.get(unchanged.headers["location"].removeprefix("/jobs/"))
    assert "system_prompt" not in job2.request or job2.request["system_prompt"] is None


@pytest.mark.parametrize(("field", "value", "message"), [
    ("checks", "- type: tool_called\n  tool: [unclosed", "checks: not valid YAML"),
    ("checks", "- type: no_such_check", "checks"),
    ("tool_mocks", "- a list", "tool mocks: expected a mapping"),
    ("temperature", "warm", "temperature: 'warm' is not a number"),
    ("runs", "500", "runs"),
    ("mode", "sideways", "mode"),
])
def test_bad_form_input_shows_the_form_again_with_the_error(site: Site, field: str,
                                                            value: str, message: str) -> None:
    before = len(site.store.jobs.list())
    form = {"system_prompt": "Keep this text.", "seed": "3", field: value}
    response = _post(site, f"/calls/vapi/{DEMO_CALL}/replay", form)
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert message in text and 'id="form-error"' in text
    assert "Keep this text." in text and 'value="3"' in text  # nothing typed is lost
    assert len(site.store.jobs.list()) == before


def test_the_job_page_polls_until_the_job_completes_then_opens_the_comparison(
        site: Site) -> None:
    pending = _job(site, "k-pending", "PENDING")
    page = site.client.get(f"/jobs/{pending.id}")
    assert page.status_code == 200
    assert f'hx-get="/jobs/{pending.id}/status" hx-trigger="every 1s"' in page.text
    running = _job(site, "k-running", "RUNNING")
    status = site.client.get(f"/jobs/{running.id}/status", headers={"HX-Request": "true"})
    assert "replay: agent turn 3 of 6" in status.text and "every 1s" in status.text
    assert "HX-Redirect" not in status.headers
    failed = _job(site, "k-failed", "FAILED")
    status = site.client.get(f"/jobs/{failed.id}/status", headers={"HX-Request": "true"})
    assert "the LLM server refused the request" in status.text
    assert "every 1s" not in status.text and "HX-Redirect" not in status.headers
    done = _job(site, "k-done", "COMPLETED")
    status = site.client.get(f"/jobs/{done.id}/status", headers={"HX-Request": "true"})
    assert status.headers["HX-Redirect"] == f"/replays/{site.replay_id}"
    assert "every 1s" not in status.text
    assert f'href="/replays/{site.replay_id}"' in site.client.get(f"/jobs/{done.id}").text


def test_the_calls_list_filters_and_pages(site: Site) -> None:
    from datetime import timedelta

    from voicereplay.pipeline.listing import CallFilters, list_calls

    call = site.store.get_call(DEMO_CALL)
    assert call.started_at is not None
    older = call.model_copy(update={"call_id": "older-call-0001", "provider": "retell",
                                    "started_at": call.started_at - timedelta(days=30)})
    site.store.save_call(older)
    listed = site.client.get("/calls")
    assert listed.status_code == 200
    assert listed.text.index(DEMO_CALL) < listed.text.index("older-call-0001")  # newest first
    assert f'href="/calls/vapi/{DEMO_CALL}"' in listed.text
    only = site.client.get("/calls", params={"provider": "retell"}).text
    assert "older-call-0001" in only and DEMO_CALL not in only
    day = call.started_at.date()
    recent = site.client.get("/calls", params={"since": str(day), "until": str(day)}).text
    assert DEMO_CALL in recent and "older-call-0001" not in recent
    assert "No call matches" in site.client.get("/calls", params={"since": "2099-01-01"}).text
    failed = site.client.get("/calls", params={"success": "no"}).text
    assert DEMO_CALL in failed  # the demo call's analysis failed
    bad = site.client.get("/calls", params={"since": "yesterday"})
    assert bad.status_code == 422 and "since: &#39;yesterday&#39; is not a date" in bad.text
    first = list_calls(site.store, CallFilters(), page_size=1)
    second = list_calls(site.store, CallFilters(page=2), page_size=1)
    assert (first.total, first.pages) == (2, 2)
    assert [c.call_id for c in first.calls + second.calls] == [DEMO_CALL, "older-call-0001"]
    assert CallFilters(provider="vapi", q="4417", page=2).query(page=3) == \
        "q=4417&provider=vapi&page=3"
    spoken = site.client.get("/calls", params={"q": "HEADPHONES"}).text  # transcript text
    assert DEMO_CALL in spoken and "older-call-0001" in spoken  # the copy says it too
    by_id = site.client.get("/calls", params={"q": "older-call"}).text
    assert "older-call-0001" in by_id and DEMO_CALL not in by_id
    reason = call.ended_reason or ""
    assert reason and DEMO_CALL in site.client.get("/calls",
                                                   params={"ended_reason": reason}).text
    replayed = site.client.get("/calls", params={"has_replays": "yes"}).text
    assert DEMO_CALL in replayed and "older-call-0001" not in replayed  # site holds a replay
    flagged = site.client.get("/calls", params={"flagged": "yes"}).text
    assert DEMO_CALL in flagged  # its analysis failed


def test_importing_from_the_page_says_what_went_wrong(site: Site) -> None:
    no_key = _post(site, "/calls/import", {"provider": "vapi", "ids": "abc def"})
    assert no_key.status_code == 400 and "VAPI_API_KEY" in no_key.text
    nothing = _post(site, "/calls/import", {"provider": "vapi", "ids": "  "})
    assert nothing.status_code == 422 and "no call ids" in nothing.text
    elsewhere = _post(site, "/calls/import", {"provider": "files", "ids": "x"})
    assert elsewhere.status_code == 422 and "use vapi or retell" in elsewhere.text


def test_a_batch_links_its_runs_and_a_failed_replay_says_so(tmp_path: Path) -> None:
    settings, store, replay_id = replayed_demo(tmp_path / "home", runs=2)
    replay = store.replays.get(replay_id)
    other = next(r.id for r in store.replays.list(batch_id=replay.batch_id)
                 if r.id != replay_id)
    client = TestClient(create_app(settings, store=store))
    page = client.get(f"/replays/{replay_id}").text
    assert 'id="runs"' in page and f'href="/replays/{other}"' in page
    failed = replay.model_copy(update={"id": "f" * 32, "status": "failed", "batch_id": None,
                                       "error": "StageError: the TTS server is down",
                                       "recordings": [], "turns": []})
    store.replays.save(failed, store.get_snapshot(replay.snapshot_id))
    response = client.get(f"/replays/{'f' * 32}")
    assert response.status_code == 200
    assert "This replay failed: StageError: the TTS server is down" in response.text
    assert "No audio for this side in the store." in response.text


@pytest.mark.integration
def test_importing_from_the_page_imports_each_call_over_real_http(tmp_path: Path) -> None:
    from tests.fakes.server import serve
    from tests.fakes.vapi_api import make_vapi_app

    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    with serve(make_vapi_app([fixtures / "demo", fixtures / "vapi"])) as vapi:
        settings = Settings.for_home(tmp_path / "home", vapi_api_key="test-vapi-key",
                                     vapi_base_url=vapi.url)
        store = Store.from_settings(settings)
        site = Site(TestClient(create_app(settings, store=store)), store, settings, "")
        page = _post(site, "/calls/import", {"provider": "vapi",
                                             "ids": f"{DEMO_CALL}, no-such-call"})
    assert page.status_code == 200
    results = page.text.split('id="import-results"')[1]
    assert f'href="/calls/vapi/{DEMO_CALL}"' in results and "created" in results
    assert "no-such-call" in results and 'class="failed"' in results
    assert store.get_call(DEMO_CALL).recording("stereo") is not None
    assert DEMO_CALL in site.client.get("/calls").text
