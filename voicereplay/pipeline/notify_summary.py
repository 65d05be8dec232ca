"""The summary of a finished replay job that a notification carries: :func:`build_summary`.

A job triggered by a rule ends COMPLETED (one replay per run) or FAILED (an error, usually no
replay). Its summary is plain JSON — the generic notification format as it is, and what the
Slack format (:mod:`voicereplay.pipeline.notify_format`) is drawn from::

    {"schema_version": "1", "event": "replay.completed", "status": "completed",
     "passed": false, "headline": "call 1f2e… (rule refund-failures): replay completed — …",
     "call": {"provider", "id", "started_at", "ended_reason", "duration", "url"},
     "rule": "refund-failures", "job": {"id", "attempt", "finished_at"}, "error": null,
     "replays": [{"id", "run_index", "status", "error", "url", "similarity",
                  "fidelity": {"score", "level"}, "divergence": {"turn", "reason", "detail"},
                  "checks": {"total", "passed", "failed", "failing": [{"name", "type",
                             "status", "message", "evidence": [{"turn", "text"}]}]}}]}

Each replay's comparison comes from :func:`~voicereplay.pipeline.calling.show_replay` (the
comparison again, nothing written, stored judge verdicts reused). A replay deleted since the job
ran is listed with status ``unavailable`` and the reason, and the summary does not pass.
Texts are kept as they are here (the JSON format is data); the Slack format escapes them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from voicereplay.compare.model import CheckResult, Comparison
from voicereplay.config import Settings
from voicereplay.errors import ConfigError, JobStateError, NotStoredError, VoiceReplayError
from voicereplay.models import Call
from voicereplay.pipeline.calling import show_replay
from voicereplay.store import Store
from voicereplay.store.jobs import Job

__all__ = ["SUMMARY_VERSION", "build_summary", "clip"]

SUMMARY_VERSION = "1"
MAX_TEXT = 500  # characters of a check message or an error kept in the summary
MAX_EVIDENCE_TEXT = 300  # characters of one piece of evidence
MAX_EVIDENCE = 5  # pieces of evidence kept per failing check


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1].rstrip() + "…"


def build_summary(store: Store, job: Job, *, rule: str | None = None,
                  public_url: str | None = None, settings: Settings | None = None
                  ) -> dict[str, Any]:
    """The JSON summary of a finished replay job (see the module docs). ``public_url`` is
    where the web app is reached (links are left out without it); ``settings`` go to the
    comparison (its similarity method and threshold). A job that has not finished, or was
    cancelled, has no summary: :class:`JobStateError`."""
    if job.kind != "replay":
        raise JobStateError(f"job {job.id[:12]} is a {job.kind} job, not a replay job")
    if job.status not in ("COMPLETED", "FAILED"):
        raise JobStateError(f"job {job.id[:12]} is {job.status}: only a completed or failed "
                            "replay job has a summary")
    base = public_url.rstrip("/") if public_url else None
    call = _call(store, job, base)
    similarity = _requested_similarity(job)
    replays = [_replay(store, replay_id, base, similarity, settings)
               for replay_id in job.replay_ids]
    completed = job.status == "COMPLETED"
    summary: dict[str, Any] = {
        "schema_version": SUMMARY_VERSION,
        "event": "replay.completed" if completed else "replay.failed",
        "status": "completed" if completed else "failed",
        "passed": completed and bool(replays) and all(_passed(r) for r in replays),
        "headline": "",
        "call": call,
        "rule": rule,
        "job": {"id": job.id, "attempt": job.attempt,
                "finished_at": job.finished_at.isoformat() if job.finished_at else None},
        "error": None if completed else {
            "type": job.error_type or "Error",
            "message": clip(job.error or "the job failed without a message", MAX_TEXT)},
        "replays": replays,
    }
    summary["headline"] = _headline(summary)
    return summary


# -- the call ---------------------------------------------------------------------------------

def _call(store: Store, job: Job, base: str | None) -> dict[str, Any]:
    found = job.request.get("call")
    requested: dict[str, Any] = found if isinstance(found, dict) else {}
    provider = job.call_provider or requested.get("provider")
    call_id = job.call_id or str(requested.get("call_id") or "")
    stored: Call | None = None
    if call_id:
        try:
            stored = store.get_call(call_id, provider if provider != "files" else None)
        except (NotStoredError, ConfigError):  # not stored, or stored for two providers
            stored = None
    if stored is not None:
        provider, call_id = stored.provider, stored.call_id
    return {
        "provider": provider,
        "id": call_id or None,
        "stored": stored is not None,
        "started_at": stored.started_at.isoformat() if stored and stored.started_at else None,
        "ended_reason": stored.ended_reason if stored else None,
        "duration": stored.duration if stored else None,
        "url": (f"{base}/calls/{quote(stored.provider, safe='')}/"
                f"{quote(stored.call_id, safe='')}" if base and stored else None),
    }


def _requested_similarity(job: Job) -> str | None:
    report = job.request.get("report")
    value = report.get("similarity") if isinstance(report, dict) else None
    return value if value in ("lexical", "embedding") else None


# -- each replay ------------------------------------------------------------------------------

def _replay(store: Store, replay_id: str, base: str | None, similarity: str | None,
            settings: Settings | None) -> dict[str, Any]:
    url = f"{base}/replays/{quote(replay_id, safe='')}" if base else None
    try:
        result = show_replay(store, replay_id, similarity=similarity, settings=settings)
    except NotStoredError:
        return _unavailable(replay_id, "the replay is no longer stored (deleted since the job "
                                       "ran)")
    except (VoiceReplayError, OSError, ValueError) as exc:
        detail = exc.message if isinstance(exc, VoiceReplayError) else (
            f"{type(exc).__name__}: {exc}")
        return _unavailable(replay_id, f"the replay could not be read: {detail}")
    replay, comparison = result.replay, result.comparison
    return {
        "id": replay.id,
        "run_index": replay.run_index,
        "status": replay.status,
        "error": clip(replay.error, MAX_TEXT) if replay.error else None,
        "url": url,
        "similarity": _rounded(comparison.similarity),
        "fidelity": {"score": _rounded(comparison.fidelity.score),
                     "level": comparison.fidelity.level},
        "divergence": _divergence(comparison),
        "checks": _checks(comparison.checks),
    }


def _unavailable(replay_id: str, why: str) -> dict[str, Any]:
    return {"id": replay_id, "run_index": None, "status": "unavailable", "error": why,
            "url": None, "similarity": None, "fidelity": None, "divergence": None,
            "checks": None}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _divergence(comparison: Comparison) -> dict[str, Any] | None:
    found = comparison.divergence
    if found is None:
        return None
    return {"turn": found.turn, "reason": found.reason, "detail": clip(found.detail, MAX_TEXT)}


def _checks(results: list[CheckResult]) -> dict[str, Any]:
    failing = [r for r in results if r.status != "pass"]
    return {
        "total": len(results),
        "passed": len(results) - len(failing),
        "failed": len(failing),
        "failing": [{
            "name": r.name, "type": r.type, "status": r.status,
            "message": clip(r.message, MAX_TEXT),
            "evidence": [{"turn": e.turn, "text": clip(e.text, MAX_EVIDENCE_TEXT)}
                         for e in r.evidence[:MAX_EVIDENCE]],
        } for r in failing],
    }


def _passed(replay: dict[str, Any]) -> bool:
    checks = replay["checks"]
    return replay["status"] == "completed" and checks is not None and checks["failed"] == 0


# -- the headline -----------------------------------------------------------------------------

def _headline(summary: dict[str, Any]) -> str:
    """One line a person reads, e.g. ``call abc123 (rule refund-failures): replay completed —
    1 of 2 checks failed (issue_refund is not called on turn 4); diverged at turn 4
    (tool-call)``."""
    call = summary["call"]
    who = f"call {call['id'] or '(unknown)'}"
    if summary["rule"]:
        who += f" (rule {summary['rule']})"
    if summary["status"] == "failed":
        error = summary["error"]
        return f"{who}: replay failed — {error['type']}: {clip(error['message'], 200)}"
    replays = summary["replays"]
    if not replays:
        return f"{who}: replay completed — no replay to report"
    runs = f" ({len(replays)} runs)" if len(replays) > 1 else ""
    return f"{who}: replay completed{runs} — {_checks_phrase(replays)}; " \
           f"{_divergence_phrase(replays)}"


def _checks_phrase(replays: list[dict[str, Any]]) -> str:
    readable = [r for r in replays if r["checks"] is not None]
    lost = len(replays) - len(readable)
    lost_note = f" ({lost} replay{'s' if lost > 1 else ''} unavailable)" if lost else ""
    total = sum(r["checks"]["total"] for r in readable)
    failed = sum(r["checks"]["failed"] for r in readable)
    if not readable:
        return "the replay is unavailable" if lost == 1 else f"all {lost} replays unavailable"
    if total == 0:
        return f"no checks{lost_note}"
    if failed == 0:
        return ("the check passed" if total == 1 else f"all {total} checks passed") + lost_note
    names: list[str] = []
    for replay in readable:
        for check in replay["checks"]["failing"]:
            turn = next((e["turn"] for e in check["evidence"] if e["turn"] is not None), None)
            name = check["name"] + (f" on turn {turn}" if turn is not None else "")
            if name not in names:
                names.append(name)
    shown = ", ".join(clip(n, 80) for n in names[:2])
    more = f" and {len(names) - 2} more" if len(names) > 2 else ""
    return f"{failed} of {total} checks failed ({shown}{more}){lost_note}"


def _divergence_phrase(replays: list[dict[str, Any]]) -> str:
    found = [r["divergence"] for r in replays if r["divergence"] is not None]
    if not found:
        return "no divergence"
    first = min(found, key=lambda d: d["turn"])
    where = f"at turn {first['turn']} ({first['reason']})"
    if len(replays) == 1:
        return f"diverged {where}"
    return f"diverged in {len(found)} of {len(replays)} runs (first {where})"
