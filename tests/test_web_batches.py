"""Batches in the web app, server side (FastAPI's TestClient): "Replay selected" on the calls
list, the batch list and page (progress, aggregate, case lists, worst calls linked to their
comparisons), the exports, batch against batch, the JSON API, and bad input.

The store holds the demo call and six tagged copies (tests/batch_demo.py): with the scripted
``batch-llm`` at the candidate's temperature two calls get fixed, two get broken, two stay the
same. The app runs no worker here: a test runs the batch's jobs by hand (``run_job``).
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from markupsafe import escape

from tests.batch_demo import ALL, KINDS, batch_home
from tests.fakes import batch_llm
from voicereplay.compare.aggregate import aggregate_csv
from voicereplay.config import Settings
from voicereplay.pipeline.batch_reports import BatchReport, batch_report
from voicereplay.pipeline.jobs import Worker, run_job
from voicereplay.pipeline.queue import JOB_RUNNERS
from voicereplay.store import Store
from voicereplay.web import create_app

CSRF = "test-csrf-token"
FAKES = {"stt": "fake-stt", "tts": "fake-tts", "caller_tts": "fake-tts", "llm": "batch-llm"}
CHECKS = yaml.safe_dump([{"type": "tool_not_called", "tool": "issue_refund"}])
CANDIDATE = {**FAKES, "temperature": str(batch_llm.CANDIDATE_TEMPERATURE), "checks": CHECKS}
CHECK = "issue_refund is not called"


@dataclass
class Site:
    client: TestClient
    store: Store
    settings: Settings

    def post(self, url: str, data: dict[str, Any]) -> Any:
        """A form post as a browser sends it: the CSRF cookie (the one a page set, if any)
        and the same token in the form."""
        token = self.client.cookies.get("vr_csrf")
        if token is None:
            token = CSRF
            self.client.cookies.set("vr_csrf", token)
        return self.client.post(url, data={**data, "csrf_token": token},
                                follow_redirects=False)

    def run_jobs(self, batch_id: str) -> None:
        worker = Worker(self.settings)
        for job in self.store.jobs.list(batch_id=batch_id, limit=None):
            run_job(self.store, job.id, worker, runners=JOB_RUNNERS)

    def report(self, batch_id: str) -> BatchReport:
        return batch_report(self.store, self.store.batches.get(batch_id))


def _site(home: Path) -> Iterator[Site]:
    settings = batch_home(home)
    store = Store.from_settings(settings)
    with TestClient(create_app(settings, store=store)) as client:
        yield Site(client, store, settings)
    store.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path / "home")


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, str]]:
    """The six calls replayed as one batch ("candidate") started from the calls list."""
    for site in _site(tmp_path_factory.mktemp("web-batches") / "home"):
        response = site.post("/batches", {"call": [f"vapi:{c}" for c in ALL],
                                          "scope": "selected", "name": "candidate",
                                          **CANDIDATE})
        assert response.status_code == 303, response.text
        batch_id = response.headers["location"].removeprefix("/batches/")
        site.run_jobs(batch_id)
        yield site, batch_id


def _keys(ids: list[str]) -> set[str]:
    return {f"vapi:{c}" for c in ids}


def _section(page: str, ident: str) -> str:
    found = re.search(rf'<(section|table|ul|p|div)[^>]* id="{ident}"[^>]*>(.*?)</\1>', page,
                      re.S)
    assert found, f"#{ident} is missing"
    return found.group(2)


# -- the calls list ---------------------------------------------------------------------------
def test_the_calls_list_offers_to_replay_the_ticked_calls_or_all_matching(site: Site) -> None:
    page = site.client.get("/calls?q=batch-good")
    assert page.status_code == 200, page.text
    text = page.text
    assert 'id="select-page"' in text and '<script src="/static/calls.js"' in text
    boxes = re.findall(r'<input type="checkbox" name="call" value="([^"]+)" form="batch-form"',
                       text)
    assert sorted(boxes) == sorted(_keys(KINDS["good"]))
    form = _section(text, "batch")
    assert 'action="/batches"' in form and 'name="csrf_token"' in form
    assert 'name="filter_query" value="q=batch-good"' in form
    assert "all 2 calls matching this filter" in form
    assert 'value="batch-llm"' in form  # the registered backends (plugins' too)
    assert site.client.get("/static/calls.js").status_code == 200
    assert '<a href="/batches">Batches</a>' in text  # the nav


def test_replay_selected_needs_the_csrf_token_and_stores_nothing_without_it(
        site: Site) -> None:
    data = {"call": ["vapi:batch-good-1"], "scope": "selected", **FAKES}
    refused = site.client.post("/batches", data=data, follow_redirects=False)
    assert refused.status_code == 403 and "CSRF" in refused.text
    site.client.cookies.set("vr_csrf", CSRF)
    forged = site.client.post("/batches", data={**data, "csrf_token": CSRF},
                              headers={"Origin": "https://evil.example"},
                              follow_redirects=False)
    assert forged.status_code == 403
    assert site.store.batches.list() == [] and site.store.jobs.list() == []


@pytest.mark.parametrize(("data", "status", "message"), [
    ({"scope": "selected"}, 400, "no call ticked"),
    ({"scope": "selected", "call": ["vapi:nope-1"]}, 400, "call nope-1 is not in the store"),
    ({"scope": "filter", "filter_query": "q=no-such-call"}, 400, "no stored call matches"),
    ({"scope": "filter", "filter_query": "since=yesterday"}, 422, "is not a date"),
    ({"scope": "selected", "call": ["vapi:batch-good-1"], "checks": "- [oops"}, 400,
     "checks: not valid YAML"),
    ({"scope": "selected", "call": ["vapi:batch-good-1"], "temperature": "hot"}, 400,
     "temperature: 'hot' is not a number"),
    ({"scope": "selected", "call": ["vapi:batch-good-1"], "limit": "-3"}, 400,
     "limit: '-3' is not a whole number"),
])
def test_a_bad_batch_form_shows_the_list_again_with_the_error_and_the_input(
        site: Site, data: dict[str, Any], status: int, message: str) -> None:
    response = site.post("/batches", {**FAKES, "name": "kept <name>", **data})
    assert response.status_code == status, response.text
    assert message in html.unescape(response.text)
    assert 'value="kept &lt;name&gt;"' in response.text  # what was typed, escaped
    assert site.store.batches.list() == [] and site.store.jobs.list() == []


def test_all_calls_matching_the_filter_stores_the_filter(site: Site) -> None:
    response = site.post("/batches", {"scope": "filter", "filter_query": "q=batch-bad&page=2",
                                      **FAKES})
    assert response.status_code == 303, response.text
    batch = site.store.batches.get(response.headers["location"].rsplit("/", 1)[1])
    assert batch.selection["filters"] == {"q": "batch-bad"}
    assert sorted(c for _p, c in batch.calls) == KINDS["bad"]
    assert len(site.store.jobs.list(batch_id=batch.id, limit=None)) == 2
    # A stray page number is ignored; a bare call id (no provider) is found in the store.
    paged = site.post("/batches", {"scope": "filter", "filter_query": "q=batch-good&page=x",
                                   **FAKES})
    batch = site.store.batches.get(paged.headers["location"].rsplit("/", 1)[1])
    assert sorted(c for _p, c in batch.calls) == KINDS["good"]
    bare = site.post("/batches", {"call": ["batch-same-1"], **FAKES})
    batch = site.store.batches.get(bare.headers["location"].rsplit("/", 1)[1])
    assert batch.calls == [("vapi", "batch-same-1")]
    # No filter at all: every stored call (the demo call and its six copies).
    every = site.post("/batches", {"scope": "filter", "filter_query": "", **FAKES})
    batch = site.store.batches.get(every.headers["location"].rsplit("/", 1)[1])
    assert batch.selection["all_calls"] is True and len(batch.calls) == 7


# -- the batch page ---------------------------------------------------------------------------
def test_a_running_batch_page_follows_its_progress(site: Site) -> None:
    response = site.post("/batches", {"call": ["vapi:batch-good-1", "vapi:batch-bad-1"],
                                      **CANDIDATE})
    batch_id = response.headers["location"].rsplit("/", 1)[1]
    page = site.client.get(f"/batches/{batch_id}")
    assert page.status_code == 200
    progress = re.search(r'<div id="batch-progress"[^>]*>', page.text)
    assert progress and 'data-done="false"' in progress.group(0)
    assert f'hx-get="/batches/{batch_id}/progress"' in progress.group(0)
    assert "0</strong> done" in page.text and "2</strong> pending" in page.text
    assert 'id="no-aggregate"' in page.text
    polled = site.client.get(f"/batches/{batch_id}/progress", headers={"HX-Request": "true"})
    assert "HX-Refresh" not in polled.headers
    early = site.client.get(f"/batches/{batch_id}/aggregate.csv")  # nothing to aggregate yet
    assert early.status_code == 409 and "no call has been replayed yet" in early.text
    pending = list(csv.DictReader(io.StringIO(
        site.client.get(f"/batches/{batch_id}/calls.csv").text)))
    assert [line["status"] for line in pending] == ["PENDING", "PENDING"]
    site.run_jobs(batch_id)
    polled = site.client.get(f"/batches/{batch_id}/progress", headers={"HX-Request": "true"})
    assert polled.headers["HX-Refresh"] == "true"  # done: the page reloads with the aggregate
    assert 'data-done="true"' in polled.text and "hx-get" not in polled.text


def test_failed_calls_are_listed_with_their_error_and_never_aggregated(site: Site) -> None:
    response = site.post("/batches", {"call": ["vapi:batch-good-1", "vapi:batch-bad-1"],
                                      **FAKES, "llm": "nonexistent-llm"})
    batch_id = response.headers["location"].rsplit("/", 1)[1]
    site.run_jobs(batch_id)
    page = site.client.get(f"/batches/{batch_id}")
    assert page.status_code == 200
    failed = _section(page.text, "failed")
    assert failed.count("nonexistent-llm") == 2 and "vapi:batch-bad-1" in failed
    assert 'id="batch-state">failed<' in page.text and 'id="no-aggregate"' in page.text
    assert 'id="overall"' not in page.text


def test_the_batch_page_shows_the_aggregate_with_cases_and_the_worst_calls(
        ran: tuple[Site, str]) -> None:
    site, batch_id = ran
    report = site.report(batch_id)
    assert report.status.completed == 6 and report.aggregate is not None
    replays = {c.key: c.replay_id for c in report.calls}
    page = site.client.get(f"/batches/{batch_id}")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    progress = re.search(r'<div id="batch-progress"[^>]*>', text)
    assert progress and 'data-done="true"' in progress.group(0)
    assert "hx-get" not in progress.group(0)  # finished: nothing polls
    assert "4/6 = 67 %" in _section(text, "overall") and "95 % CI" in _section(text, "overall")
    check_row = re.search(rf'<tr data-check="{CHECK}">(.*?)</tr>', text, re.S)
    assert check_row and "4/6 = 67 %" in check_row.group(1)
    linked = re.findall(r'<a href="/replays/([0-9a-f]+)"><code>([^<]+)</code></a>',
                        check_row.group(1))
    assert {key for _r, key in linked} == _keys(KINDS["bad"])  # the failing calls, linked
    assert all(replays[key] == rid for rid, key in linked)
    p90 = re.search(r'<tr data-metric="latency_p90">(.*?)</tr>', text, re.S)
    assert p90
    cells = re.findall(r"<td[^>]*>(.*?)</td>", p90.group(1), re.S)
    metric = report.aggregate.metric("latency_p90")
    assert cells[5:8] == ["4", "2", "0"]  # improved, regressed, unchanged
    assert cells[8] == metric.verdict.word
    assert metric.verdict.text in _section(text, "verdicts")
    # Case lists, largest change first, each call linked to its comparison.
    cases = re.search(r'<div class="metric-cases" data-metric="latency_p90">(.*?)</div>', text,
                      re.S)
    assert cases
    regressed = re.search(r'<table class="cases regressed".*?</table>', cases.group(1), re.S)
    assert regressed
    shown = re.findall(r"<code>([^<]+)</code>", regressed.group(0))
    assert shown == [c.call_key for c in metric.regressed]
    assert set(shown) == _keys(KINDS["bad"])
    assert 'class="cases improved"' in cases.group(1)
    # Divergence, tool changes, fidelity, the worst calls.
    assert "turn " in _section(text, "divergence")
    assert "issue_refund → check_status" in _section(text, "tool-changes")
    assert "4 calls" in _section(text, "tool-changes")
    assert "mean score" in _section(text, "fidelity")
    worst = re.findall(r'<tr data-call="([^"]+)">.*?href="/replays/([0-9a-f]+)" '
                       r'class="comparison-link"', _section(text, "worst"), re.S)
    assert [k for k, _r in worst] == [w.call_key for w in report.aggregate.worst]
    assert {k for k, _r in worst[:2]} == _keys(KINDS["bad"])
    assert all(replays[k] == r for k, r in worst)
    comparison = site.client.get(f"/replays/{worst[0][1]}")
    assert comparison.status_code == 200  # the link opens the comparison page
    # The same page by name and by id prefix (a shareable URL either way).
    for other in ("candidate", batch_id[:8]):
        again = site.client.get(f"/batches/{other}")
        assert again.status_code == 200 and f'href="/batches/{batch_id}" id="share"' in again.text


def test_regressions_only_hides_what_improved(ran: tuple[Site, str]) -> None:
    site, batch_id = ran
    page = html.unescape(site.client.get(f"/batches/{batch_id}?regressions=1&worst=3").text)
    assert "Showing only regressions" in page
    assert 'class="cases improved"' not in page and 'class="cases regressed"' in page
    assert len(re.findall(r'class="comparison-link"', page)) == 3  # ?worst=3


def test_the_exports_hold_the_report(ran: tuple[Site, str]) -> None:
    site, batch_id = ran
    report = site.report(batch_id)
    assert report.aggregate is not None
    short = batch_id[:12]
    data = site.client.get(f"/batches/{batch_id}.json")
    assert data.status_code == 200 and data.headers["content-type"] == "application/json"
    assert f'filename="batch-{short}.json"' in data.headers["content-disposition"]
    body = data.json()
    assert body["aggregate"]["overall"]["passed"] == 4 and body["status"]["state"] == "finished"
    assert body == json.loads(json.dumps(report.to_json()))  # turn numbers: JSON keys
    agg = site.client.get(f"/batches/{batch_id}/aggregate.csv")
    assert agg.status_code == 200 and agg.headers["content-type"].startswith("text/csv")
    assert (f'attachment; filename="batch-{short}-aggregate.csv"'
            == agg.headers["content-disposition"])
    assert agg.text == aggregate_csv(report.aggregate)
    rows = list(csv.DictReader(io.StringIO(agg.text)))
    overall = next(r for r in rows if r["kind"] == "overall")
    assert (overall["passed"], overall["failed"]) == ("4", "2")
    calls = site.client.get(f"/batches/{batch_id}/calls.csv")
    assert f'filename="batch-{short}-calls.csv"' in calls.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(calls.text)))
    assert [line["call_key"] for line in lines] == [f"vapi:{c}" for c in ALL]
    assert {line["call_key"] for line in lines if line["passed"] == "False"} \
        == _keys(KINDS["bad"])
    assert '<a href="/batches/' + batch_id + '.json">JSON</a>' in \
        site.client.get(f"/batches/{batch_id}").text


def test_the_batches_list_shows_state_and_progress(ran: tuple[Site, str]) -> None:
    site, batch_id = ran
    page = site.client.get("/batches")
    assert page.status_code == 200
    row = re.search(rf'<tr data-batch="{batch_id}">(.*?)</tr>', page.text, re.S)
    assert row and "candidate" in row.group(1) and "finished" in row.group(1)
    assert '<progress max="6" value="6">' in row.group(1)


def test_unknown_batches_are_404_a_page_or_json(site: Site) -> None:
    page = site.client.get("/batches/nope-batch")
    assert page.status_code == 404 and "batch nope-batch is not in the store" in page.text
    assert "<html" in page.text and "Back to the calls" in page.text
    for url in ("/batches/nope-batch.json", "/batches/nope-batch/aggregate.csv",
                "/batches/nope-batch/calls.csv", "/api/batches/nope-batch",
                "/batches/nope-batch/vs/other-batch"):
        response = site.client.get(url, headers={"accept": "application/json"}
                                   if "/vs/" in url else {})
        assert response.status_code == 404, url
        assert response.json()["error"]["type"] == "NotStoredError", url


def test_html_in_call_ids_and_check_names_is_shown_as_text(site: Site) -> None:
    evil = '<img src=x onerror="alert(1)">'
    call = site.store.get_call("batch-bad-1")
    snapshot = site.store.snapshot_for_call("batch-bad-1", "vapi")
    site.store.save_call(call.model_copy(update={"call_id": evil}), snapshot)
    listed = site.client.get("/calls")
    assert evil not in listed.text and str(escape(evil)) in listed.text
    checks = yaml.safe_dump([{"type": "tool_not_called", "tool": "issue_refund",
                              "name": "<script>alert('check')</script>"}])
    response = site.post("/batches", {"call": [f"vapi:{evil}"], "name": "<b>bold</b>",
                                      **CANDIDATE, "checks": checks})
    assert response.status_code == 303, response.text
    batch_id = response.headers["location"].rsplit("/", 1)[1]
    site.run_jobs(batch_id)
    assert site.report(batch_id).status.completed == 1
    page = site.client.get(f"/batches/{batch_id}").text
    for raw in (evil, "<script>alert('check')</script>", "<b>bold</b>"):
        assert raw not in page
        assert str(escape(raw)) in page
    assert "<script>" not in page.replace('<script src="/static/vendor/htmx.min.js" defer>', "")
    listed = site.client.get("/batches").text
    assert "<b>bold</b>" not in listed and "&lt;b&gt;bold&lt;/b&gt;" in listed


# -- batch against batch ----------------------------------------------------------------------
def test_batch_against_batch_lists_the_missing_call_and_what_changed(
        ran: tuple[Site, str]) -> None:
    site, candidate = ran
    started = site.client.post("/api/batches", json={
        "selection": {"call_ids": ALL[:-1]}, "name": "production",
        "request": {**FAKES, "checks": yaml.safe_load(CHECKS), "report": {"figures": "svg"}}})
    assert started.status_code == 202, started.text
    production = started.json()["id"]
    site.run_jobs(production)
    jump = site.client.get(f"/batches/compare?a={production}&b={candidate}",
                           follow_redirects=False)
    assert jump.status_code == 303
    assert jump.headers["location"] == f"/batches/{production}/vs/{candidate}"
    page = site.client.get(jump.headers["location"])
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "<strong>5</strong> calls matched" in text
    assert "Only in B (1)" in text and "vapi:batch-same-2" in _section(text, "only-in-b")
    row = re.search(rf'<tr data-check="{CHECK}">(.*?)</tr>', text, re.S)
    assert row
    regressed = re.search(r'<td class="regressed">(.*?)</td>', row.group(1), re.S)
    improved = re.search(r'<td class="improved">(.*?)</td>', row.group(1), re.S)
    assert regressed and improved
    assert set(re.findall(r"<code>([^<]+)</code>", regressed.group(1))) == _keys(KINDS["bad"])
    assert set(re.findall(r"<code>([^<]+)</code>", improved.group(1))) == _keys(KINDS["good"])
    cmp = site.client.get(f"/api/batches/{production}/compare/{candidate}").json()
    assert cmp["only_in_b"] == ["vapi:batch-same-2"] and len(cmp["matched"]) == 5
    p90 = next(m for m in cmp["metrics"] if m["key"] == "latency_p90")
    assert p90["verdict"]["text"] in text
    assert 'id="compare-form"' in site.client.get(f"/batches/{candidate}").text
    same = site.client.get(f"/batches/{candidate}/vs/{candidate}")
    assert same.status_code == 400 and "two different batches" in same.text


# -- the JSON API -------------------------------------------------------------------------------
def test_the_api_starts_lists_and_reads_batches(site: Site) -> None:
    body = {"selection": {"filters": {"q": "batch-good"}}, "name": "api",
            "request": {**FAKES, "temperature": batch_llm.CANDIDATE_TEMPERATURE}}
    started = site.client.post("/api/batches", json=body)
    assert started.status_code == 202, started.text
    data = started.json()
    assert data["created"] and data["submitted"] == 2 and data["calls"] == 2
    assert data["url"] == f"/batches/{data['id']}"
    assert started.headers["location"] == f"/api/batches/{data['id']}"
    again = site.client.post("/api/batches", json=body)  # the same batch: continued
    assert again.status_code == 200 and again.json()["id"] == data["id"]
    assert not again.json()["created"] and again.json()["submitted"] == 0
    listed = site.client.get("/api/batches").json()
    assert [b["id"] for b in listed] == [data["id"]] and listed[0]["pending"] == 2
    site.run_jobs(data["id"])
    one = site.client.get("/api/batches/api").json()
    assert one["status"]["completed"] == 2 and one["aggregate"]["calls"] == 2
    assert one["url"] == f"/batches/{data['id']}"


@pytest.mark.parametrize(("body", "message"), [
    ({"selection": {"filters": {"since": "yesterday"}}}, "is not a date"),
    ({"selection": {"filters": {"colour": "red"}}}, "unknown field 'colour'"),
    ({"selection": {}}, "name the calls"),
    ({"selection": {"call_ids": ["nope-1"]}}, "call nope-1 is not in the store"),
    ({"selection": {"all_calls": True, "limit": 0}}, "selection: limit"),
    ({"selection": {"all_calls": True}, "request": {"llm_api_key": "sk-secret"}},
     "llm_api_key"),
    ({"selection": {"all_calls": True}, "request": {"call": {"call_id": "x"}}},
     "request.call"),
    ({"selection": {"all_calls": True}, "request": {"mode": "sideways"}}, "mode"),
])
def test_the_api_refuses_a_bad_selection_or_request_with_400(site: Site, body: dict[str, Any],
                                                             message: str) -> None:
    response = site.client.post("/api/batches", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert message in error["message"] and "sk-secret" not in response.text
    assert site.store.batches.list() == [] and site.store.jobs.list() == []
