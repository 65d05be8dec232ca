"""A batch from the web, in a real browser: headless Chromium (Debian's /usr/bin/chromium)
driven by Playwright, against the app served by uvicorn on 127.0.0.1 with its embedded job
worker, over the demo call's six tagged copies (tests/batch_demo.py; the scripted
``batch-llm`` fixes the ``good`` calls and breaks the ``bad`` ones at the candidate's
temperature).

The test ticks calls in the calls list, fills the batch form, submits it, follows the batch
page until the worker has replayed every call, reads the aggregate and opens the worst call's
comparison. Waits have generous limits (hang guards); nothing asserts how fast anything is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.batch_demo import batch_home
from tests.fakes import batch_llm
from tests.test_web_browser import ARTIFACTS, CHROMIUM, FLAGS, WAIT, serving
from voicereplay.store import Store
from voicereplay.web import create_app

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.integration

PICKED = ["batch-good-1", "batch-bad-1", "batch-same-1"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: apt-get install chromium (see .ci/run)")
    settings = batch_home(tmp_path / "home")
    store = Store.from_settings(settings)
    app = create_app(settings, store=store, worker=True, concurrency=2)
    try:
        with serving(app) as url:
            yield url, store
    finally:
        store.close()


@pytest.fixture
def page(served: tuple[str, Store]) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.set_default_timeout(WAIT)
        yield tab
        context.close()
        browser.close()
        assert not errors, errors


def test_ticking_calls_starts_a_batch_and_its_page_shows_the_aggregate(
        page: Any, served: tuple[str, Store]) -> None:
    url, store = served
    page.goto(f"{url}/calls?q=batch-")
    boxes = page.locator("input.pick")
    assert boxes.count() == 6
    page.check("#select-page")  # select all on this page, then none again
    assert page.locator("input.pick:checked").count() == 6
    assert page.text_content("#picked") == "6"
    page.uncheck("#select-page")
    assert page.locator("input.pick:checked").count() == 0
    for call_id in PICKED:
        page.check(f'input.pick[value="vapi:{call_id}"]')
    assert page.text_content("#picked") == "3"
    assert page.evaluate("document.getElementById('select-page').indeterminate")

    page.fill("#batch-name", "browser candidate")
    page.fill("#batch-temperature", str(batch_llm.CANDIDATE_TEMPERATURE))
    page.fill("#batch-checks", yaml.safe_dump([{"type": "tool_not_called",
                                                "tool": "issue_refund"}]))
    page.click("#batch summary")  # more options: the backends
    for stage, backend in {"stt": "fake-stt", "llm": "batch-llm", "tts": "fake-tts",
                           "caller_tts": "fake-tts"}.items():
        page.select_option(f"#batch-{stage}", backend)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "calls-batch-form.png"), full_page=True)
    page.click("#submit-batch")
    page.wait_for_url(re.compile(r"/batches/[0-9a-f]{32}$"))
    batch_id = page.url.rsplit("/", 1)[1]
    batch = store.batches.get(batch_id)
    assert batch.name == "browser candidate"
    assert sorted(c for _p, c in batch.calls) == sorted(PICKED)

    # The page follows the batch (htmx polls its progress) and reloads with the aggregate.
    page.wait_for_selector('#batch-progress[data-done="true"]')
    page.wait_for_selector("#overall")
    assert page.text_content("#batch-state") == "finished"
    overall = " ".join((page.text_content("#overall") or "").split())
    assert "2/3 = 67 %" in overall and "pass every check" in overall
    verdicts = page.locator("#verdicts li").all_text_contents()
    p90 = next(v for v in verdicts if "latency p90" in v)
    assert "95 % CI" in p90
    page.screenshot(path=str(ARTIFACTS / "batch.png"), full_page=True)

    # The worst call is the broken one; its link opens its comparison page.
    first = page.locator("#worst tbody tr").first
    assert first.get_attribute("data-call") == "vapi:batch-bad-1"
    first.locator("a.comparison-link").click()
    page.wait_for_url(re.compile(r"/replays/[0-9a-f]+$"))
    replay_id = page.url.rsplit("/", 1)[1]
    assert store.replays.get(replay_id).call_id == "batch-bad-1"
    page.wait_for_selector("#divergence")
