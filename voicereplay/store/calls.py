"""Stored calls: the ``calls`` table, idempotent saves, search and filtered listing, lookups.

Saving is idempotent: a call is stored with the sha256 of its canonical JSON (provider fields
that change on every fetch and where a downloaded file happens to live left out), and saving the
same content again writes nothing. Each save is one transaction with the call's snapshot and
recording rows. Two processes saving the same new call at once do not fail: SQLite writers queue
(``BEGIN IMMEDIATE``) and on PostgreSQL the loser of the insert race retries, so one gets
``created`` and the other ``unchanged``.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from voicereplay.errors import ConfigError, NotStoredError, StoreError
from voicereplay.models import Call, ProviderName
from voicereplay.snapshot import AgentSnapshot
from voicereplay.store.database import Database
from voicereplay.store.recordings import RecordingRepository
from voicereplay.store.snapshots import put_snapshot
from voicereplay.store.tables import (
    BlobRow,
    CallDataRow,
    CallRecordingRow,
    CallRow,
    CallSearchRow,
    ReplayRow,
    utcnow,
)

__all__ = ["CallRepository", "CallSummary", "SaveResult", "content_sha256", "find_call",
           "search_text"]

SaveResult = Literal["created", "updated", "unchanged"]
PROVIDERS: tuple[str, ...] = get_args(ProviderName)
# Vapi regenerates these on every response (artifact.presigned*Url, presignedUrlsExpiresAt).
_VOLATILE_KEY = re.compile(r"presigned\w*Url|presignedUrlsExpiresAt")


class CallSummary(BaseModel):
    """One row of :meth:`CallRepository.list`: what a calls table shows, without turns or raw."""

    model_config = ConfigDict(frozen=True)

    provider: str
    call_id: str
    type: str
    status: str | None
    started_at: datetime | None
    duration: float | None  # seconds
    ended_reason: str | None
    agent_id: str | None
    cost_usd: float | None
    success: bool | None
    turn_count: int  # spoken turns (agent + user)
    snapshot_id: str | None
    recording_kinds: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.call_id}"


def content_sha256(call: Call, data: dict[str, Any] | None = None) -> str:
    """The sha256 of ``call``'s canonical JSON, blind to what changes on every fetch.

    ``data`` is ``call.model_dump(mode="json")`` when the caller has it already.
    """
    body = dict(data if data is not None else call.model_dump(mode="json"))
    body["raw"] = _without_volatile(body["raw"])
    body["recordings"] = [
        {k: v for k, v in rec.items() if not (k == "path" and rec.get("sha256"))}
        for rec in body["recordings"]  # same bytes, wherever they were put
    ]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if not _VOLATILE_KEY.fullmatch(k)}
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


def split_key(call_id: str, provider: str | None) -> tuple[str | None, str]:
    """``("vapi", "abc")`` for ``"vapi:abc"``; ids without a provider prefix are kept whole."""
    prefix, sep, rest = call_id.partition(":")
    if sep and rest and prefix in PROVIDERS and provider in (None, prefix):
        return prefix, rest
    return provider, call_id


def find_call(session: Session, call_id: str, provider: str | None) -> CallRow:
    """The row of the call named ``call_id`` (optionally ``provider:call_id``)."""
    provider, call_id = split_key(call_id.strip(), provider)
    query = select(CallRow).where(CallRow.call_id == call_id)
    if provider is not None:
        query = query.where(CallRow.provider == provider)
    rows = session.scalars(query.order_by(CallRow.provider).limit(2)).all()
    if not rows:
        shown = f"{provider}:{call_id}" if provider else call_id
        raise NotStoredError(
            f"call {shown} is not in the store; run `voicereplay calls import {call_id}` first"
        )
    if len(rows) > 1:
        a, b = rows[0].provider, rows[1].provider
        # Not NotStoredError: the call is stored, the user's reference is just underspecified.
        raise ConfigError(
            f"call id {call_id} is stored for more than one provider ({a}, {b}); "
            f"say which with --provider {a} (or write {a}:{call_id})"
        )
    return rows[0]


class CallRepository:
    def __init__(self, db: Database, recordings: RecordingRepository) -> None:
        self._db = db
        self._recordings = recordings
        self._paths = recordings.paths

    def save(self, call: Call, snapshot: AgentSnapshot | None = None) -> SaveResult:
        """Store ``call`` (and link ``snapshot``) in one transaction; a re-import of the same
        content writes nothing. Without ``snapshot`` an existing link is kept."""
        data = self._paths.stored_recordings(call.model_dump(mode="json"))
        sha = content_sha256(call, data)
        for attempt in (1, 2):
            try:
                with self._db.session(f"saving call {call.key}", write=True) as session:
                    return self._save(session, call, snapshot, data, sha)
            except StoreError as exc:
                # Another process inserted the same call between our read and our insert (a
                # PostgreSQL race; SQLite writers queue): read again and compare.
                if attempt == 2 or not isinstance(exc.__cause__, IntegrityError):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _save(self, session: Session, call: Call, snapshot: AgentSnapshot | None,
              data: dict[str, Any], sha: str) -> SaveResult:
        found = session.execute(
            select(CallRow.id, CallRow.content_sha256, CallRow.snapshot_id).where(
                CallRow.provider == call.provider, CallRow.call_id == call.call_id
            )
        ).first()
        snapshot_id = found.snapshot_id if found is not None else None
        if snapshot is not None:
            snapshot_id = put_snapshot(session, snapshot)
        if found is not None and (found.content_sha256, found.snapshot_id) == (sha, snapshot_id):
            return "unchanged"
        now = utcnow()
        values = _row_values(call, sha, snapshot_id, now)
        if found is None:
            call_pk = session.scalars(
                insert(CallRow)
                .values(provider=call.provider, call_id=call.call_id, imported_at=now, **values)
                .returning(CallRow.id)
            ).one()
        else:
            call_pk = found.id
            session.execute(update(CallRow).where(CallRow.id == call_pk).values(**values))
        self._recordings.replace(session, call_pk, call)
        for row, column in ((CallDataRow, {"data": data}),
                            (CallSearchRow, {"text": search_text(call).replace("\x00", "")})):
            session.execute(delete(row).where(row.call_pk == call_pk))
            session.execute(insert(row).values(call_pk=call_pk, **column))
        return "created" if found is None else "updated"

    def get(self, call_id: str, provider: str | None = None) -> Call:
        """The stored call; ``call_id`` may be written ``provider:call_id``."""
        with self._db.session(f"reading call {call_id}") as session:
            data = session.scalars(select(CallDataRow.data).where(
                CallDataRow.call_pk == find_call(session, call_id, provider).id)).one()
            return Call.model_validate(self._paths.resolved_recordings(data))

    def key_of(self, call_id: str, provider: str | None = None) -> tuple[str, str]:
        """(provider, call id) of the stored call ``call_id`` names, without reading it."""
        with self._db.session(f"reading call {call_id}") as session:
            row = find_call(session, call_id, provider)
            return row.provider, row.call_id

    def sha(self, call_id: str, provider: str) -> str | None:
        """The content sha256 the call was stored with, or None when it is not stored."""
        with self._db.session(f"reading call {provider}:{call_id}") as session:
            return session.scalar(
                select(CallRow.content_sha256).where(
                    CallRow.provider == provider, CallRow.call_id == call_id
                )
            )

    def recording_file(self, call_id: str, provider: str, kind: str) -> str | None:
        """The local file of the call's ``kind`` recording, from the recordings table alone
        (the call itself is not read: this serves every seek of an audio player); None when
        the call, or its downloaded recording of that kind, is not stored."""
        query = (select(BlobRow.path)
                 .join(CallRecordingRow, CallRecordingRow.sha256 == BlobRow.sha256)
                 .join(CallRow, CallRow.id == CallRecordingRow.call_pk)
                 .where(CallRow.provider == provider, CallRow.call_id == call_id,
                        CallRecordingRow.kind == kind))
        with self._db.session(f"reading call {provider}:{call_id}") as session:
            return self._paths.resolved(session.scalar(query))

    def snapshot_id(self, session: Session, call_id: str, provider: str | None) -> str | None:
        return find_call(session, call_id, provider).snapshot_id

    def list(
        self,
        *,
        q: str | None = None,
        provider: str | None = None,
        agent_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        success: bool | None = None,
        ended_reason: str | None = None,
        has_replays: bool | None = None,
        flagged: bool | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> list[CallSummary]:
        """Stored calls newest first (by ``started_at``, calls without one last); ``limit=None``
        lists all. Every filter left None is not applied:

        - ``q``: a case-insensitive substring of the call id, the customer's number or the
          text of a spoken turn;
        - ``provider``, ``agent_id``, ``status``, ``ended_reason``: equal to;
        - ``since``, ``until``: started in ``[since, until)`` (naive datetimes are UTC);
        - ``success``: the analysis' success evaluation is this (calls without one match
          neither True nor False);
        - ``flagged``: True — the analysis says the call failed (``success`` False); False —
          it does not (succeeded or not evaluated);
        - ``has_replays``: the call has (True) or has no (False) stored replay.
        """
        where = _filters(q=q, provider=provider, agent_id=agent_id,
                         status=status, since=since, until=until, success=success,
                         ended_reason=ended_reason, has_replays=has_replays, flagged=flagged)
        query = (
            select(CallRow)
            .where(*where)
            .order_by(CallRow.started_at.desc().nulls_last(), CallRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._db.session("listing calls") as session:
            rows = session.scalars(query).all()
            kinds = self._recordings.kinds(session, [r.id for r in rows])
            return [_summary(row, kinds.get(row.id, ())) for row in rows]

    def count(
        self,
        *,
        q: str | None = None,
        provider: str | None = None,
        agent_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        success: bool | None = None,
        ended_reason: str | None = None,
        has_replays: bool | None = None,
        flagged: bool | None = None,
    ) -> int:
        """How many calls :meth:`list` would give with these filters and no limit."""
        where = _filters(q=q, provider=provider, agent_id=agent_id,
                         status=status, since=since, until=until, success=success,
                         ended_reason=ended_reason, has_replays=has_replays, flagged=flagged)
        with self._db.session("counting calls") as session:
            return session.scalar(select(func.count(CallRow.id)).where(*where)) or 0


def search_text(call: Call) -> str:
    """What ``q`` searches in: the call id, the customer's number and the spoken turns,
    lowercased here (SQLite's ``lower()`` folds ASCII only)."""
    parts = [call.call_id, call.customer_number or ""]
    parts += [t.text for t in call.turns if t.role in ("agent", "user") and t.text]
    return "\n".join(parts).lower()


def _row_values(call: Call, sha: str, snapshot_id: str | None, now: datetime
                ) -> dict[str, Any]:
    """The ``calls`` columns for ``call`` (all but provider, call_id and imported_at).

    Provider text is made to fit its column on every database: cut to the column's length
    (PostgreSQL enforces ``VARCHAR`` lengths, SQLite does not) and without NUL characters
    (PostgreSQL text cannot hold them). These columns serve listing and filters; ``call_data``
    keeps the whole call.
    """
    return _fit({
        "type": call.type,
        "status": call.status,
        "started_at": call.started_at,
        "ended_at": call.ended_at,
        "duration_s": call.duration,
        "ended_reason": call.ended_reason,
        "agent_id": call.agent_id,
        "agent_version": call.agent_version,
        "customer_number": call.customer_number,
        "cost_usd": call.cost.total_usd,
        "success": call.analysis.success,
        "turn_count": sum(1 for t in call.turns if t.role in ("agent", "user")),
        "snapshot_id": snapshot_id,
        "content_sha256": sha,
        "updated_at": now,
    })


def _fit(values: dict[str, Any]) -> dict[str, Any]:
    columns = CallRow.__table__.c
    for name, value in values.items():
        length = getattr(columns[name].type, "length", None)
        if isinstance(value, str):
            value = value.replace("\x00", "")
            values[name] = value[:length] if length is not None else value
    return values


def _filters(
    *,
    q: str | None,
    provider: str | None,
    agent_id: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    success: bool | None,
    ended_reason: str | None,
    has_replays: bool | None,
    flagged: bool | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if q is not None and q.strip():
        # The text is lowercased on the way in, so no case folding at query time; the
        # pattern's own % and _ are escaped (a literal substring).
        where.append(CallRow.id.in_(select(CallSearchRow.call_pk).where(
            CallSearchRow.text.contains(q.strip().lower(), autoescape=True))))
    for column, value in ((CallRow.provider, provider), (CallRow.agent_id, agent_id),
                          (CallRow.status, status), (CallRow.ended_reason, ended_reason)):
        if value is not None:
            where.append(column == value)
    if since is not None:
        where.append(CallRow.started_at >= since)
    if until is not None:
        where.append(CallRow.started_at < until)
    if success is not None:
        where.append(CallRow.success == success)
    if flagged is True:
        where.append(CallRow.success.is_(False))
    elif flagged is False:
        where.append(or_(CallRow.success.is_(None), CallRow.success.is_(True)))
    if has_replays is not None:
        replayed = exists().where(ReplayRow.call_pk == CallRow.id)
        where.append(replayed if has_replays else ~replayed)
    return where


def _summary(row: CallRow, kinds: tuple[str, ...]) -> CallSummary:
    return CallSummary(
        provider=row.provider,
        call_id=row.call_id,
        type=row.type,
        status=row.status,
        started_at=row.started_at,
        duration=row.duration_s,
        ended_reason=row.ended_reason,
        agent_id=row.agent_id,
        cost_usd=row.cost_usd,
        success=row.success,
        turn_count=row.turn_count,
        snapshot_id=row.snapshot_id,
        recording_kinds=kinds,
    )
