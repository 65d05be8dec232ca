"""The :class:`Store` facade: one database and its repositories, plus the artifacts dir.

``store.calls``, ``store.snapshots``, ``store.recordings``, ``store.replays``, ``store.jobs``,
``store.events`` and ``store.batches`` are the repositories (one per table); the methods on
:class:`Store` itself (``save_call``, ``get_call``, ``get_snapshot``, …) are the short names
the pipeline and the faces use for the common cases.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import TracebackType

from voicereplay.artifacts import ArtifactStore, Blob
from voicereplay.config import Settings
from voicereplay.errors import StoreError
from voicereplay.models import Call
from voicereplay.snapshot import AgentSnapshot
from voicereplay.store.batches import BatchRepository
from voicereplay.store.calls import CallRepository, CallSummary, SaveResult
from voicereplay.store.database import Database
from voicereplay.store.events import EventRepository
from voicereplay.store.jobs import JobRepository
from voicereplay.store.recordings import HomePaths, RecordingRepository
from voicereplay.store.replays import ReplayRepository
from voicereplay.store.snapshots import SnapshotRepository

__all__ = ["Store"]


class Store:
    """Calls, snapshots, replays and blobs in the database at ``database_url``; audio under
    ``artifacts_root``. Stored paths are relative to ``home`` (default: the artifacts root's
    parent, which is ``$VOICEREPLAY_HOME``)."""

    def __init__(self, database_url: str, artifacts_root: Path, *,
                 home: Path | None = None) -> None:
        self.home = Path(home if home is not None else Path(artifacts_root).parent)
        self.db = Database(database_url, home=self.home)
        self.url = self.db.url
        self.engine = self.db.engine
        self.artifacts = ArtifactStore(artifacts_root)
        paths = HomePaths(self.home)
        self.recordings = RecordingRepository(paths)
        self.snapshots = SnapshotRepository(self.db)
        self.calls = CallRepository(self.db, self.recordings)
        self.replays = ReplayRepository(self.db, paths)
        self.jobs = JobRepository(self.db)
        self.events = EventRepository(self.db)
        self.batches = BatchRepository(self.db)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Store:
        """The store at ``settings`` (default: from the environment), creating its home dir."""
        settings = settings or Settings.from_env()
        try:
            settings.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the voicereplay home {settings.home}: {exc}") from exc
        return cls(settings.database_url, settings.artifacts_dir, home=settings.home)

    @property
    def read_only(self) -> bool:
        return self.db.read_only

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- the common cases, by their short names ------------------------------------------

    def save_call(self, call: Call, snapshot: AgentSnapshot | None = None) -> SaveResult:
        return self.calls.save(call, snapshot)

    def get_call(self, call_id: str, provider: str | None = None) -> Call:
        return self.calls.get(call_id, provider)

    def has_call(self, call_id: str, provider: str) -> bool:
        return self.calls.sha(call_id, provider) is not None

    def call_sha(self, call_id: str, provider: str) -> str | None:
        return self.calls.sha(call_id, provider)

    def list_calls(self, *, q: str | None = None, provider: str | None = None,
                   agent_id: str | None = None, status: str | None = None,
                   since: datetime | None = None, until: datetime | None = None,
                   success: bool | None = None, ended_reason: str | None = None,
                   has_replays: bool | None = None, flagged: bool | None = None,
                   limit: int | None = 50, offset: int = 0) -> list[CallSummary]:
        """Stored calls, newest first, filtered (see :meth:`CallRepository.list`)."""
        return self.calls.list(q=q, provider=provider, agent_id=agent_id, status=status,
                               since=since, until=until, success=success,
                               ended_reason=ended_reason, has_replays=has_replays,
                               flagged=flagged, limit=limit, offset=offset)

    def count_calls(self, *, q: str | None = None, provider: str | None = None,
                    agent_id: str | None = None, status: str | None = None,
                    since: datetime | None = None, until: datetime | None = None,
                    success: bool | None = None, ended_reason: str | None = None,
                    has_replays: bool | None = None, flagged: bool | None = None) -> int:
        return self.calls.count(q=q, provider=provider, agent_id=agent_id, status=status,
                                since=since, until=until, success=success,
                                ended_reason=ended_reason, has_replays=has_replays,
                                flagged=flagged)

    def save_snapshot(self, snapshot: AgentSnapshot) -> str:
        return self.snapshots.save(snapshot)

    def get_snapshot(self, snapshot_id: str) -> AgentSnapshot:
        return self.snapshots.get(snapshot_id)

    def snapshot_for_call(self, call_id: str, provider: str | None = None) -> AgentSnapshot | None:
        """The snapshot stored with the call, None when the call has none."""
        with self.db.session(f"reading call {call_id}") as session:
            snapshot_id = self.calls.snapshot_id(session, call_id, provider)
            return self.snapshots.get_in(session, snapshot_id) if snapshot_id else None

    def discard_unreferenced(self, blobs: list[Blob]) -> None:
        """Delete the files of ``blobs`` written by this process that no stored row refers to
        (what a failed import leaves behind)."""
        with self.db.session("checking blobs") as session:
            orphans = [b for b in blobs if b.new and not self.recordings.blob_known(session,
                                                                                    b.sha256)]
        for blob in orphans:
            self.artifacts.discard(blob)
