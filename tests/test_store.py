"""The store: migrations, round trips, idempotent saves, listing, lookups, atomicity, errors."""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import voicereplay.store as store_module
import voicereplay.store.calls as calls_module
import voicereplay.store.recordings as recordings_module
from voicereplay.config import Settings
from voicereplay.errors import ConfigError, NotStoredError, StoreError
from voicereplay.models import (
    Analysis,
    Call,
    Cost,
    CostItem,
    ProviderMetrics,
    ProviderName,
    Recording,
    ToolCall,
    ToolResult,
    Turn,
    TurnLatency,
    Word,
)
from voicereplay.snapshot import AgentSnapshot, ModelConfig, SnapshotSource, ToolSpec
from voicereplay.store import Store, content_sha256, redact_url
from voicereplay.store.database import libpq_url
from voicereplay.store.tables import Base, CallRow

T0 = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)
TABLES = {"alembic_version", "batches", "blobs", "call_data", "call_recordings", "call_search",
          "calls", "events", "jobs", "replays", "snapshots"}


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """The store on SQLite and on a real PostgreSQL (``store_url`` is parametrized)."""
    with Store(store_url, tmp_path / "artifacts") as s:
        yield s


def make_snapshot(prompt: str = "You book dentist appointments.") -> AgentSnapshot:
    return AgentSnapshot(
        system_prompt=prompt,
        first_message="Hi, this is Ada from Bright Smiles.",
        model=ModelConfig(provider="openai", name="gpt-4o-mini", temperature=0.3, max_tokens=250),
        tools=(
            ToolSpec(
                name="book_slot",
                description="Book a slot",
                parameters={"type": "object", "properties": {"when": {"type": "string"}}},
            ),
        ),
        variables={"clinic": "Bright Smiles"},
        source=SnapshotSource(provider="vapi", agent_id="asst_1", call_id="call-1"),
    )


def make_call(
    store: Store, call_id: str = "call-1", *, provider: ProviderName = "vapi", **changes: Any
) -> Call:
    audio = store.artifacts.put_bytes(b"RIFF" + call_id.encode() + b"WAVE" * 64, ".wav")
    call = Call(
        provider=provider,
        call_id=call_id,
        type="inbound",
        status="ended",
        started_at=T0,
        ended_at=T0 + timedelta(seconds=42.5),
        duration=42.5,
        ended_reason="customer-ended-call",
        cost=Cost(total_usd=0.12, breakdown=[CostItem(kind="llm", usd=0.05, detail={"t": 1})]),
        analysis=Analysis(summary="booked", success=True, structured_data={"slot": "Tue 3pm"}),
        customer_number="+15551234567",
        agent_id="asst_1",
        agent_version="7",
        turns=[
            Turn(
                role="agent",
                text="Hi, this is Ada.",
                start=0.0,
                end=1.6,
                words=[Word(word="Hi", start=0.0, end=0.3, confidence=0.99)],
            ),
            Turn(role="user", text="I need a cleaning on Tuesday.", start=2.1, end=4.0),
            Turn(
                role="tool_call",
                start=4.5,
                tool_calls=[ToolCall(id="tc1", name="book_slot", arguments={"when": "Tue 3pm"})],
            ),
            Turn(
                role="tool_result",
                start=5.0,
                tool_result=ToolResult(id="tc1", name="book_slot", result="ok", success=True),
            ),
            Turn(role="agent", text="You're booked for Tuesday at 3.", start=5.4, end=7.0),
        ],
        provider_metrics=ProviderMetrics(
            turn_latencies=[TurnLatency(turn=1, total=0.9, model=0.4)], summary={"e2e_p50": 0.9}
        ),
        recordings=[
            Recording(
                kind="stereo",
                url="https://storage.vapi.ai/s.wav",
                path=str(audio.path),
                sha256=audio.sha256,
                size=audio.size,
            ),
            Recording(kind="customer", url="https://storage.vapi.ai/c.wav"),
        ],
        metadata={"team": "dental"},
        raw={
            "id": call_id,
            "artifact": {
                "messages": [{"role": "bot", "message": "Hi"}],
                "presignedStereoUrl": "https://s3/x?sig=1",
                "presignedUrlsExpiresAt": "2025-06-10T10:00:00Z",
            },
            "monitor": [{"artifact": {"presignedMonoUrl": "https://s3/y?sig=1"}}],
        },
    )
    return call.model_copy(update=changes)


def rows(store: Store, sql: str) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.text(sql)).all())


def head_revision() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(store_module.MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


# -- migrations -------------------------------------------------------------------------------


def test_migrations_build_the_schema(store: Store) -> None:
    assert head_revision() == "0009_batches"
    assert rows(store, "select version_num from alembic_version") == [("0009_batches",)]
    assert set(sa.inspect(store.engine).get_table_names()) == TABLES


def test_migrations_match_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_reopening_a_db_keeps_data_and_does_not_migrate_again(store_url: str,
                                                             tmp_path: Path) -> None:
    url = store_url
    with Store(url, tmp_path / "a") as first:
        first.save_call(make_call(first))
    with Store(url, tmp_path / "a") as second:  # would fail on "table calls already exists"
        assert rows(second, "select version_num from alembic_version") == [("0009_batches",)]
        assert set(sa.inspect(second.engine).get_table_names()) == TABLES
        assert second.get_call("call-1").call_id == "call-1"


def test_from_settings_creates_home_and_uses_its_db(tmp_path: Path) -> None:
    settings = Settings.from_env()
    assert not settings.home.exists()
    with Store.from_settings() as s:
        s.save_call(make_call(s))
    assert (settings.home / "voicereplay.db").is_file()
    assert s.artifacts.root == settings.artifacts_dir


# -- round trips ------------------------------------------------------------------------------


def test_call_and_snapshot_round_trip(store: Store) -> None:
    call, snapshot = make_call(store), make_snapshot()
    assert store.save_call(call, snapshot) == "created"

    assert store.get_call("call-1") == call
    assert store.get_call("call-1", "vapi") == call
    assert store.get_call("vapi:call-1") == call
    assert store.snapshot_for_call("call-1") == snapshot
    assert store.get_snapshot(snapshot.id) == snapshot
    assert store.get_snapshot(snapshot.id).id == snapshot.id
    assert store.has_call("call-1", "vapi") and not store.has_call("call-1", "retell")
    assert store.call_sha("call-1", "vapi") == content_sha256(call)

    stereo = call.recording("stereo")
    assert stereo is not None
    relative = Path(stereo.path).relative_to(store.home).as_posix()  # stored under the home
    assert rows(store, "select sha256, path, size from blobs") == [
        (stereo.sha256, relative, stereo.size)
    ]
    assert sorted(rows(store, "select kind, url, sha256 from call_recordings")) == [
        ("customer", "https://storage.vapi.ai/c.wav", None),
        ("stereo", "https://storage.vapi.ai/s.wav", stereo.sha256),
    ]
    [summary] = store.list_calls()
    assert summary.key == "vapi:call-1"
    assert summary.started_at == T0 and summary.started_at.tzinfo is not None
    assert (summary.duration, summary.cost_usd, summary.success) == (42.5, 0.12, True)
    assert summary.turn_count == 3  # spoken turns only
    assert summary.snapshot_id == snapshot.id
    assert summary.recording_kinds == ("stereo", "customer")


def test_saving_without_a_snapshot_keeps_the_link(store: Store) -> None:
    store.save_call(make_call(store), make_snapshot())
    assert store.save_call(make_call(store)) == "unchanged"
    assert store.snapshot_for_call("call-1") == make_snapshot()


def test_a_call_without_snapshot_has_none(store: Store) -> None:
    store.save_call(make_call(store))
    assert store.snapshot_for_call("call-1") is None


def test_save_snapshot_is_idempotent(store: Store) -> None:
    snapshot = make_snapshot()
    assert store.save_snapshot(snapshot) == snapshot.id
    assert store.save_snapshot(snapshot) == snapshot.id
    assert rows(store, "select count(*) from snapshots") == [(1,)]


# -- idempotency ------------------------------------------------------------------------------


def updated_at(store: Store) -> datetime:
    return rows(store, "select updated_at from calls")[0][0]


def test_saving_the_same_call_twice_writes_nothing(store: Store) -> None:
    call = make_call(store)
    assert store.save_call(call, make_snapshot()) == "created"
    before = updated_at(store)
    writes: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            writes.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", spy)
    assert store.save_call(call, make_snapshot()) == "unchanged"
    sa.event.remove(store.engine, "before_cursor_execute", spy)
    assert writes == []
    assert updated_at(store) == before


def test_volatile_presigned_urls_and_moved_blobs_are_unchanged(store: Store) -> None:
    call = make_call(store)
    store.save_call(call)
    raw = {
        **call.raw,
        "artifact": {
            **call.raw["artifact"],
            "presignedStereoUrl": "https://s3/x?sig=2",
            "presignedUrlsExpiresAt": "2025-06-11T10:00:00Z",
        },
        "monitor": [{"artifact": {"presignedMonoUrl": "https://s3/y?sig=3"}}],  # nested
    }
    moved = [
        r.model_copy(update={"path": "/elsewhere/s.wav"}) if r.sha256 else r
        for r in call.recordings
    ]
    assert store.save_call(call.model_copy(update={"raw": raw})) == "unchanged"
    assert store.save_call(call.model_copy(update={"recordings": moved})) == "unchanged"
    # A real change in raw is not volatile.
    raw["artifact"]["transcript"] = "AI: Hi"
    assert store.save_call(call.model_copy(update={"raw": raw})) == "updated"


def test_a_changed_field_updates_the_call(store: Store) -> None:
    store.save_call(make_call(store))
    imported, before = rows(store, "select imported_at, updated_at from calls")[0]
    changed = make_call(store, ended_reason="assistant-ended-call", status="ended")
    assert store.save_call(changed) == "updated"
    assert store.get_call("call-1").ended_reason == "assistant-ended-call"
    assert store.list_calls()[0].ended_reason == "assistant-ended-call"
    imported_after, after = rows(store, "select imported_at, updated_at from calls")[0]
    assert imported_after == imported and after > before
    assert store.save_call(changed) == "unchanged"


def test_dropping_a_recording_updates_recording_rows(store: Store) -> None:
    call = make_call(store)
    store.save_call(call)
    assert store.save_call(call.model_copy(update={"recordings": call.recordings[:1]})) == "updated"
    assert rows(store, "select kind from call_recordings") == [("stereo",)]


def test_linking_a_snapshot_later_updates(store: Store) -> None:
    store.save_call(make_call(store))
    assert store.save_call(make_call(store), make_snapshot()) == "updated"
    assert store.snapshot_for_call("vapi:call-1") == make_snapshot()


# -- listing ----------------------------------------------------------------------------------


def test_list_calls_filters_orders_and_pages(store: Store) -> None:
    specs: list[tuple[ProviderName, str, bool | None]] = [
        ("vapi", "a1", True),
        ("retell", "a2", False),
        ("vapi", "a2", None),
        ("vapi", "a1", True),
    ]
    for i, (provider, agent, success) in enumerate(specs):
        started = T0 + timedelta(hours=i)
        store.save_call(
            make_call(
                store,
                f"c{i}",
                provider=provider,
                agent_id=agent,
                started_at=started,
                analysis=Analysis(success=success),
                status="ended" if i else "in-progress",
            )
        )
    store.save_call(make_call(store, "undated", started_at=None, analysis=Analysis()))

    assert ids(store.list_calls()) == ["c3", "c2", "c1", "c0", "undated"]
    assert ids(store.list_calls(limit=2)) == ["c3", "c2"]
    assert ids(store.list_calls(limit=2, offset=2)) == ["c1", "c0"]
    assert ids(store.list_calls(provider="retell")) == ["c1"]
    assert ids(store.list_calls(agent_id="a1")) == ["c3", "c0"]
    assert ids(store.list_calls(status="in-progress")) == ["c0"]
    assert ids(store.list_calls(success=False)) == ["c1"]
    assert ids(store.list_calls(success=True)) == ["c3", "c0"]
    assert ids(store.list_calls(since=T0 + timedelta(hours=1))) == ["c3", "c2", "c1"]
    assert ids(store.list_calls(until=T0 + timedelta(hours=1))) == ["c0"]
    # A naive datetime is UTC; an aware one in another zone compares by instant.
    cet = datetime(2025, 6, 10, 12, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    assert ids(store.list_calls(since=cet)) == ["c3"]
    assert ids(store.list_calls(since=datetime(2025, 6, 10, 12, 0))) == ["c3"]
    assert store.count_calls() == 5
    assert store.count_calls(provider="vapi", agent_id="a1") == 2


def ids(calls: list[Any]) -> list[str]:
    return [c.call_id for c in calls]


# -- lookups ----------------------------------------------------------------------------------


def test_snapshot_prefix_lookup(store: Store) -> None:
    # Two prompts whose snapshot ids share their first six characters (found by search).
    a, b = AgentSnapshot(system_prompt="p1179"), AgentSnapshot(system_prompt="p6444")
    assert a.id[:6] == b.id[:6] and a.id != b.id
    store.save_snapshot(a)
    assert store.get_snapshot(a.id[:6]) == a
    assert store.get_snapshot(a.id[:6].upper()) == a
    store.save_snapshot(b)
    with pytest.raises(NotStoredError, match="ambiguous"):
        store.get_snapshot(a.id[:6])
    assert store.get_snapshot(b.id[:8]) == b
    with pytest.raises(NotStoredError, match="at least 6"):
        store.get_snapshot(a.id[:5])
    with pytest.raises(NotStoredError, match="not in the store"):
        store.get_snapshot("0" * 16)
    with pytest.raises(NotStoredError, match="not in the store"):  # % is no LIKE wildcard
        store.get_snapshot("%%%%%%")


def test_prefixes_match_the_same_ids_on_every_database(store: Store) -> None:
    # SQLite's LIKE ignores ASCII case and PostgreSQL's does not: the lookup must not differ.
    job, _ = store.jobs.enqueue("replay", {}, "key")
    assert job.id == job.id.lower()
    assert store.jobs.get(job.id[:8].upper()) == job
    assert store.jobs.get(job.id.upper()) == job
    with pytest.raises(NotStoredError, match="not in the store"):  # _ is no LIKE wildcard
        store.jobs.get(job.id[:6] + "_" * 3)


def test_provider_text_that_does_not_fit_its_column_is_stored(store: Store) -> None:
    # PostgreSQL enforces VARCHAR lengths and refuses NUL characters (SQLite does neither): a
    # provider string like that must not make the import fail; the call keeps the whole value.
    long = {"status": "ended\x00", "ended_reason": "pipeline-error-" + "r" * 400,
            "customer_number": "sip:+15551234567@" + "x" * 80 + ".example.com",
            "agent_id": "a" * 300, "agent_version": "v" * 300}
    assert store.save_call(make_call(store, **long)) == "created"
    stored = store.get_call("call-1")
    assert {name: getattr(stored, name) for name in long} == long
    [summary] = store.list_calls()
    assert summary.ended_reason is not None and long["ended_reason"].startswith(
        summary.ended_reason)
    assert store.save_call(make_call(store, **long)) == "unchanged"


def test_non_finite_floats_in_json_columns_round_trip(store: Store) -> None:
    # PostgreSQL's json type refuses the NaN/Infinity tokens Python writes.
    call = make_call(store, duration=float("nan"),
                     cost=Cost(total_usd=float("inf"), breakdown=[]))
    assert store.save_call(call) == "created"
    stored = store.get_call("call-1")
    assert stored.duration is not None and math.isnan(stored.duration)
    assert stored.cost.total_usd == float("inf")
    assert store.save_call(call) == "unchanged"


def test_missing_call_says_how_to_import_it(store: Store) -> None:
    with pytest.raises(NotStoredError, match=r"voicereplay calls import nope"):
        store.get_call("nope")
    with pytest.raises(NotStoredError, match="not in the store"):
        store.snapshot_for_call("nope")


def test_same_id_for_two_providers_asks_for_provider(store: Store) -> None:
    store.save_call(make_call(store, "shared"))
    store.save_call(make_call(store, "shared", provider="retell", agent_id="ag_r"))
    with pytest.raises(ConfigError, match="--provider") as info:
        store.get_call("shared")
    assert not isinstance(info.value, NotStoredError)  # "not stored" would hide the ambiguity
    assert store.get_call("shared", provider="retell").agent_id == "ag_r"
    assert store.get_call("retell:shared").agent_id == "ag_r"
    assert store.get_call("vapi:shared").agent_id == "asst_1"


# -- atomicity and errors ---------------------------------------------------------------------


def test_a_failed_save_leaves_nothing_behind(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_after_writing(self: Any, session: Any, call_pk: int, call: Call) -> None:
        # The snapshot, the call row and its blob are written in this transaction by now.
        assert session.get(CallRow, call_pk) is not None
        raise RuntimeError("disk full")

    monkeypatch.setattr(recordings_module.RecordingRepository, "replace", fail_after_writing)
    with pytest.raises(RuntimeError, match="disk full"):
        store.save_call(make_call(store), make_snapshot())
    for table in ("calls", "snapshots", "blobs", "call_recordings"):
        assert rows(store, f"select count(*) from {table}") == [(0,)], table


def test_a_failed_update_keeps_the_old_call(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save_call(make_call(store))

    def failing_snapshot(session: Any, snapshot: AgentSnapshot) -> str:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(calls_module, "put_snapshot", failing_snapshot)
    with pytest.raises(StoreError, match="saving call vapi:call-1 failed.*database is locked"):
        store.save_call(make_call(store, ended_reason="changed"), make_snapshot())
    assert store.get_call("call-1").ended_reason == "customer-ended-call"


def test_concurrent_saves_from_threads(store_url: str, tmp_path: Path) -> None:
    with Store(store_url, tmp_path / "a") as s:
        calls = [make_call(s, f"t{i}") for i in range(12)]
        errors: list[BaseException] = []

        def save(chunk: list[Call]) -> None:
            try:
                for call in chunk:
                    s.save_call(call, make_snapshot())
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=save, args=(calls[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert s.count_calls() == 12


def test_redact_url_hides_the_password() -> None:
    assert redact_url("postgresql://u:secret@db:5432/vr") == "postgresql://u:***@db:5432/vr"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"
    assert "secret" not in redact_url("not a url://u:secret@host")


def test_libpq_url_drops_the_driver_and_keeps_the_password() -> None:
    assert libpq_url("postgresql+psycopg://u:p%40ss@db:5432/vr") == "postgresql://u:p%40ss@db:5432/vr"
    with pytest.raises(ValueError, match=r"not a PostgreSQL URL: sqlite:///x.db"):
        libpq_url("sqlite:///x.db")


def test_unreachable_database_error_hides_the_password(tmp_path: Path) -> None:
    # No driver installed gives ImportError; with one, the connection is refused. Either way:
    with pytest.raises(StoreError, match="cannot open database") as info:
        Store("postgresql://u:secret@127.0.0.1:1/db", tmp_path)
    assert "secret" not in str(info.value)
    assert "u:***@127.0.0.1:1/db" in str(info.value)


@pytest.mark.servers
def test_a_plain_postgresql_url_uses_psycopg(postgres_url: str, tmp_path: Path) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with Store(plain, tmp_path / "a") as s:
        assert s.engine.driver == "psycopg"
        s.save_call(make_call(s))
        assert s.count_calls() == 1


def test_a_missing_postgres_driver_names_the_extra(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    with pytest.raises(StoreError, match=r"driver is not installed.*voicereplay\[postgres\]"):
        Store("postgresql://u:secret@127.0.0.1:1/db", tmp_path)


def test_unopenable_sqlite_file_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot open database sqlite:///.*missing"):
        Store(f"sqlite:///{tmp_path / 'missing' / 'vr.db'}", tmp_path)


def test_a_database_from_a_newer_version_is_a_store_error(store_url: str,
                                                         tmp_path: Path) -> None:
    url = store_url
    Store(url, tmp_path).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("update alembic_version set version_num = '0099_future'"))
    engine.dispose()
    with pytest.raises(StoreError, match="0099_future"):
        Store(url, tmp_path)
