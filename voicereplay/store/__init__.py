"""The store: imported calls, agent snapshots, replays and recording blobs in a SQL database.

SQLite at ``$VOICEREPLAY_HOME/voicereplay.db`` by default, PostgreSQL by
``VOICEREPLAY_DATABASE_URL``. Opening a :class:`Store` migrates the schema (Alembic revisions in
``voicereplay/migrations``), so nobody runs ``alembic`` by hand. Audio lives in the
content-addressed :class:`~voicereplay.artifacts.ArtifactStore`; paths in the database are
relative to the home, so a moved home keeps working.

Layout (imports point down the list, never up):

* :mod:`.facade` — :class:`Store`: the database, its repositories and the artifacts dir;
* :mod:`.calls`, :mod:`.replays` — the calls and replays repositories;
* :mod:`.jobs`, :mod:`.events`, :mod:`.batches` — background jobs; stored webhook events;
  batches of replay jobs;
* :mod:`.snapshots`, :mod:`.recordings` — snapshots; recording rows, blobs and home paths;
* :mod:`.prefix` — the one id-prefix lookup;
* :mod:`.database` — :class:`Database`: engine, sessions, migrations (locked), SQLite tuning;
* :mod:`.tables` — the ORM rows.
"""

from voicereplay.store.calls import CallSummary, SaveResult, content_sha256
from voicereplay.store.database import MIGRATIONS_DIR, Database, redact_url
from voicereplay.store.facade import Store
from voicereplay.store.replays import ReplaySummary

__all__ = [
    "MIGRATIONS_DIR",
    "CallSummary",
    "Database",
    "ReplaySummary",
    "SaveResult",
    "Store",
    "content_sha256",
    "redact_url",
]
