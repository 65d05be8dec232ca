"""Property: importing a malformed or truncated call file never crashes and never half-writes.

Whatever damage is done to the demo call's JSON, an import either stores the whole call (and it
reads back) or stores nothing and reports the file with a clear voicereplay error.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicereplay.pipeline import import_calls
from voicereplay.providers.files import FilesProvider
from voicereplay.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEMO = json.loads((FIXTURES / "demo" / "demo-refund.json").read_text())
ASSISTANT = (FIXTURES / "demo" / "demo-refund.assistant.json").read_text()


WAV = (FIXTURES / "demo" / "demo-refund.stereo.wav").read_bytes()
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:4]):
            out += _paths(item, (*prefix, index))
    return out


PATHS = [p for p in _paths(DEMO) if p]


@st.composite
def damaged(draw: st.DrawFn) -> str:
    payload = json.loads(json.dumps(DEMO))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = payload
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["delete", "replace", "truncate"]))
            if action == "delete":
                del parent[path[-1]]
            elif action == "replace":
                parent[path[-1]] = draw(JUNK)
            elif isinstance(parent[path[-1]], list | str):
                parent[path[-1]] = parent[path[-1]][: draw(st.integers(0, 2))]
        except (KeyError, IndexError, TypeError):
            continue
    text = json.dumps(payload)
    if draw(st.booleans()) and draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]  # a truncated download
    return text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=damaged())
def test_damaged_call_files_store_all_or_nothing(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "calls").mkdir()
        (root / "calls" / "call.json").write_text(text)
        (root / "calls" / "call.assistant.json").write_text(ASSISTANT)
        (root / "calls" / "call.stereo.wav").write_bytes(WAV)
        store = Store(f"sqlite:///{root / 'vr.db'}", root / "artifacts")
        try:
            [outcome] = import_calls(store, FilesProvider(root / "calls"))
            if outcome.ok:
                assert outcome.call_id is not None
                call = store.get_call(outcome.call_id, outcome.provider)
                assert store.count_calls() == 1
                kinds = [r.kind for r in call.recordings]
                # damaged turn times may run past the recording: then it is left out, saying so
                assert kinds == ["stereo"] or (kinds == [] and any(
                    w.startswith("stereo recording call.stereo.wav") for w in outcome.warnings))
            else:
                assert outcome.error and outcome.source == "call.json"
                assert store.count_calls() == 0
        finally:
            store.close()


@pytest.mark.servers
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=damaged())
def test_damaged_call_files_import_the_same_on_postgres(postgres_url: str, text: str) -> None:
    # The same damaged file gives the same outcome and the same stored call on SQLite and on
    # PostgreSQL (which refuses NUL characters, NaN in json, and over-long VARCHAR values).
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "calls").mkdir()
        (root / "calls" / "call.json").write_text(text)
        (root / "calls" / "call.assistant.json").write_text(ASSISTANT)
        (root / "calls" / "call.stereo.wav").write_bytes(WAV)
        results = []
        for url in (f"sqlite:///{root / 'vr.db'}", postgres_url):
            with Store(url, root / "artifacts") as store:
                with store.engine.begin() as conn:  # the PostgreSQL database lives on
                    conn.execute(sa.text("delete from call_recordings"))
                    conn.execute(sa.text("delete from calls"))
                [outcome] = import_calls(store, FilesProvider(root / "calls"))
                call = (store.get_call(outcome.call_id, outcome.provider)
                        if outcome.ok and outcome.call_id else None)
                results.append((outcome.ok, outcome.status, outcome.error, call))
        assert results[1] == results[0]
