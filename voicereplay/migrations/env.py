"""Alembic environment for the voicereplay store.

The store runs these migrations itself when it opens (``voicereplay.store``), handing over its
own connection in ``config.attributes["connection"]``; nobody needs to run ``alembic`` by hand.
For writing a new revision, ``alembic -x url=sqlite:///dev.db revision -m "..."`` with
``script_location`` pointing here also works (``--sql`` prints the DDL for a DBA): without a
connection the URL comes from ``-x url`` or ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from voicereplay.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("voicereplay migrations: pass -x url=<database url>")
    if context.is_offline_mode():  # alembic upgrade head --sql: print the DDL
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
