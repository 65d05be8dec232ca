"""The one id-prefix lookup: a row by its full id, or by the one id that starts with a prefix.

Snapshots and replays are named by long hex ids; a user types the first few characters, as with
git. :func:`by_id_or_prefix` is the single place that decides what a prefix may match: the
start of an id, ignoring case, the same on SQLite (whose ``LIKE`` ignores ASCII case) and on
PostgreSQL (whose ``LIKE`` does not).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from voicereplay.errors import NotStoredError

__all__ = ["MIN_PREFIX", "by_id_or_prefix"]

MIN_PREFIX = 6
Row = TypeVar("Row")


def by_id_or_prefix(
    session: Session,
    row_type: type[Row],
    id_column: InstrumentedAttribute[str],
    wanted: str,
    *,
    what: str,
    missing_hint: str = "",
) -> Row:
    """The ``row_type`` row whose id is ``wanted``, or whose id alone starts with it (in any
    case).

    A prefix needs at least :data:`MIN_PREFIX` characters. No match, a too-short prefix and a
    prefix matching two ids are :class:`NotStoredError` with a message for the user.
    """
    row: Any = session.get(row_type, wanted)
    if row is None and len(wanted) >= MIN_PREFIX:
        matches = session.scalars(
            select(row_type)
            .where(func.lower(id_column).startswith(wanted.lower(), autoescape=True))
            .order_by(id_column)
            .limit(2)
        ).all()
        if len(matches) > 1:
            first, second = (getattr(m, id_column.key) for m in matches)
            raise NotStoredError(
                f"{what} id {wanted} is ambiguous: it matches {first}, {second} and maybe more; "
                "give more characters"
            )
        row = matches[0] if matches else None
    if row is None:
        short = (f" (give at least {MIN_PREFIX} characters of the id)"
                 if len(wanted) < MIN_PREFIX else "")
        raise NotStoredError(f"{what} {wanted} is not in the store{short}{missing_hint}")
    return row
