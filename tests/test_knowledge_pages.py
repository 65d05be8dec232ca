"""Knowledge-base context on the call page, the comparison page and ``voicereplay calls show``.

The demo call is stored with a knowledge-base context on its agent turn 3 (the reply to the
first caller turn) whose text looks like markup, then replayed with the fake backends.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from typer.testing import CliRunner

from tests.web_demo import DEMO_CALL, FAKES
from voicereplay import pipeline
from voicereplay.cli import app
from voicereplay.config import Settings
from voicereplay.models import KnowledgeContext, KnowledgeDocument
from voicereplay.pipeline import CallRef, ReplayRequest
from voicereplay.providers.files import FilesProvider
from voicereplay.store import Store
from voicereplay.web import create_app

POLICY = "<b>Refunds</b> need the customer's consent & a reason."
CONTEXT = KnowledgeContext(turn=3, at=10.2, source="vapi-message", query="order status",
                           text=POLICY, documents=[KnowledgeDocument(content=POLICY, score=0.8)])
LOST = KnowledgeContext(source="retell-url", text="unmatched <i>chunk</i>")


def store_with_knowledge(settings: Settings) -> Store:
    store = Store.from_settings(settings)
    with FilesProvider(pipeline.demo_dir()) as source:
        [outcome] = pipeline.import_calls(store, source, [DEMO_CALL])
    assert outcome.ok
    call = store.get_call(DEMO_CALL)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    store.save_call(call.model_copy(update={"knowledge": [CONTEXT, LOST],
                                            "warnings": ["contents <expired>"]}), snapshot)
    return store


@pytest.fixture
def site(tmp_path: Path) -> tuple[TestClient, str]:
    settings = Settings.for_home(tmp_path / "home")
    store = store_with_knowledge(settings)
    [result] = pipeline.run_call(store, ReplayRequest(call=CallRef(call_id=DEMO_CALL), **FAKES),
                                 settings=settings)
    served = [t for t in result.replay.turns if t.knowledge]
    assert [t.baseline_turn for t in served] == [3]  # the replay recorded what it served
    return TestClient(create_app(settings, store=store)), result.replay.id


def test_the_call_page_shows_the_context_before_its_agent_turn_as_text(
        site: tuple[TestClient, str]) -> None:
    client, _ = site
    page = client.get(f"/calls/vapi/{DEMO_CALL}").text
    assert POLICY not in page and "<i>chunk</i>" not in page  # never markup
    escaped = str(escape(POLICY))
    row = re.search(r'<tr class="turn knowledge" data-turn="3">(.*?)</tr>', page, re.S)
    assert row and escaped in row.group(1) and "query: order status" in row.group(1)
    # the row sits right before the agent turn it informed ("I can help with that…")
    after = page[row.end():]
    assert after.lstrip().startswith('<tr class="turn agent">')
    assert "I can help with that" in after.split("</tr>")[0]
    unplaced = re.search(r'<tr class="turn knowledge unplaced">(.*?)</tr>', page, re.S)
    assert unplaced and "unmatched &lt;i&gt;chunk&lt;/i&gt;" in unplaced.group(1)
    assert "contents &lt;expired&gt;" in page


def test_the_comparison_page_shows_the_context_on_both_sides_of_the_turn(
        site: tuple[TestClient, str]) -> None:
    client, replay_id = site
    page = client.get(f"/replays/{replay_id}").text
    assert POLICY not in page
    row = re.search(r'<tr class="row agent[^"]*"[^>]*data-turn="2">(.*?)</tr>', page, re.S)
    assert row, "agent turn 2 (the reply to the first caller turn) is missing"
    cells = re.findall(r'<td class="cell (baseline|replay)"[^>]*>(.*?)</td>', row.group(1),
                       re.S)
    escaped = str(escape(POLICY))
    assert [side for side, cell in cells if escaped in cell] == ["baseline", "replay"]
    # no other row claims it
    assert page.count('class="knowledge"') == 2


def test_calls_show_prints_a_line_per_context(tmp_path: Path) -> None:
    store_with_knowledge(Settings.from_env())
    result = CliRunner().invoke(app, ["calls", "show", DEMO_CALL], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    kb = [i for i, line in enumerate(lines) if "knowledge base (vapi-message" in line]
    assert len(kb) == 1 and "<b>Refunds</b> need the customer" in lines[kb[0]]
    assert "I can help with that" in "\n".join(lines[kb[0] + 1:kb[0] + 3])
    assert any("(no turn)" in line and "knowledge base (retell-url" in line for line in lines)
    assert any("warning: contents <expired>" in line for line in lines)
