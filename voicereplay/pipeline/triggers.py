"""Flagged calls replay themselves: stored events become imports, rule matches and replay jobs.

A verified webhook is stored as an event (:mod:`voicereplay.pipeline.webhooks`) and answered at
once; everything slow happens in an ``event`` job (:func:`run_event`), run by a worker:

1. **take the call in** — a Vapi ``end-of-call-report`` or a Retell ``call_ended`` /
   ``call_analyzed`` is imported from the body itself (:class:`~voicereplay.providers.webhook.
   WebhookSource`): the call, its resolved agent snapshot and its recordings, downloaded from
   the presigned URLs while they still work. Retell sends both events for one call; the
   analysed body is a superset, so a ``call_ended`` processed after it arrived uses it — the
   call is stored once, with its analysis. A recording that cannot be downloaded fails the job
   (retryable; the call and the event are kept, and ``jobs retry`` fetches it again). A
   ``flag`` (``POST /api/calls/{id}/flag``) uses the stored call; a ``backfill`` event
   (``voicereplay calls sync``) imports the call through the provider API;
2. **run the flag rules** (:mod:`voicereplay.pipeline.rules`) on the stored call — flagged when
   a ``flag`` event is stored for it;
3. **queue one replay job per (call, rule, candidate snapshot)**: the job key holds the rule's
   name and the id of the snapshot the replay would run against, so however often a webhook
   arrives (or both Retell events do), each replay is queued once; a changed candidate prompt
   is a new snapshot, and so a new replay.

When a triggered replay finishes (completed, or failed for good), :func:`notification_jobs`
queues one ``notify`` job per target of its rule (:func:`run_notification`): retried with
backoff, its delivery status recorded in the job; a notification never changes the replay's
outcome. Targets are looked up in the rules file when the notification is sent, by a hash of
their URL, so webhook URLs (secrets, for Slack) are never stored in the jobs table.

:func:`recover_events` queues the event jobs of stored events that have none — a server
killed after acknowledging a webhook loses nothing — and runs with every job sweep.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from voicereplay.config import Settings
from voicereplay.errors import ConfigError, RecordingError, RequestError
from voicereplay.models import Call
from voicereplay.pipeline.calling import Progress, stored_call
from voicereplay.pipeline.importing import ImportOutcome, import_calls, open_provider
from voicereplay.pipeline.jobs import KEY_LENGTH, JobContext, JobResult, Submit
from voicereplay.pipeline.notify import NotifyTarget, build_summary, post, redacted, render
from voicereplay.pipeline.request import CallRef
from voicereplay.pipeline.rules import Rule, load_configured_rules, replay_request
from voicereplay.providers import create
from voicereplay.providers.retell import parse_webhook as parse_retell_call
from voicereplay.providers.vapi import parse_webhook as parse_vapi_call
from voicereplay.providers.webhook import WebhookSource
from voicereplay.store import Store
from voicereplay.store.events import Event
from voicereplay.store.jobs import Job

__all__ = ["ACTIONABLE", "SyncReport", "flag_call", "notification_jobs", "queue_event",
           "recover_events", "run_event", "run_notification", "sync_calls", "target_id"]

log = logging.getLogger(__name__)

# Event types that start an event job; others (Vapi status updates) are recorded only.
ACTIONABLE = frozenset({"end-of-call-report", "call_ended", "call_analyzed", "flag",
                        "backfill"})
NOTIFY_ATTEMPTS = 5


def _submitter(context: JobContext) -> Submit:
    if context.submit is None:
        raise ConfigError("this job queues follow-up jobs, and nothing here can deliver them")
    return context.submit


def queue_event(store: Store, settings: Settings, submit: Submit, event: Event
                ) -> Job | None:
    """The event job of ``event`` (queued once, by key), or None when it is recorded only
    (its type starts nothing) — then it is marked PROCESSED."""
    if event.event_type not in ACTIONABLE:
        if event.status == "PENDING":
            store.events.mark(event.id, "PROCESSED")
        return None
    job, _new = submit("event", {"event_id": event.id}, f"event:{event.id}",
                       call=(event.provider, event.call_id), max_attempts=settings.job_attempts)
    return job


def recover_events(store: Store, settings: Settings, submit: Submit, *,
                   limit: int = 500) -> int:
    """Queue the jobs of PENDING events (a process stopped between storing an event and
    queueing its job); returns how many were new."""
    queued = 0
    for event in store.events.list(status="PENDING", limit=limit):
        job = queue_event(store, settings, submit, event)
        if job is not None and job.status == "PENDING" and job.attempt == 0:
            queued += 1
    return queued


def flag_call(store: Store, settings: Settings, submit: Submit, call: Call, *,
              reason: str | None = None) -> tuple[Event, Job | None]:
    """Flag a stored call by hand: a ``flag`` event, whose job runs the rules with
    ``flagged: true`` holding. Flagging a flagged call again changes nothing."""
    body = json.dumps({"reason": reason or "", "call_id": call.call_id})
    event, _new = store.events.record(call.provider, "flag", call.call_id, body)
    return event, queue_event(store, settings, submit, event)


# -- the event job --------------------------------------------------------------------------
def run_event(context: JobContext) -> JobResult:
    """An ``event`` job: take the call in, run the rules, queue the replays (module docs)."""
    store = context.store
    event_id = context.job.request.get("event_id")
    if not isinstance(event_id, str):
        raise RequestError("an event job names no event_id")
    event = store.events.get(event_id)
    try:
        call = _take_in(context, event)
        triggered = trigger_replays(context, call, event)
    except Exception as exc:
        store.events.mark(event.id, "FAILED", error=str(exc)[:2000], job_id=context.job.id)
        raise
    store.events.mark(event.id, "PROCESSED", job_id=context.job.id)
    return JobResult(call=(call.provider, call.call_id),
                     result={"event_id": event.id, "event_type": event.event_type,
                             "triggered": triggered})


def _take_in(context: JobContext, event: Event) -> Call:
    store, settings, say = context.store, context.settings, context.progress
    if event.event_type == "flag":
        return store.get_call(event.call_id, event.provider)
    if event.event_type == "backfill":
        say(Progress("import", f"importing call {event.call_id} from {event.provider}"))
        with open_provider(event.provider, settings) as api:
            [outcome] = import_calls(store, api, [event.call_id],
                                     concurrency=settings.download_concurrency)
        return _imported(store, outcome, None)
    body = event.body
    if event.provider == "retell" and event.event_type == "call_ended":
        analysed = store.events.find(event.provider, event.call_id, "call_analyzed")
        if analysed is not None:
            body = analysed.body  # the same call, with call_analysis: never store it twice
    call = (parse_vapi_call if event.provider == "vapi" else parse_retell_call)(body)
    say(Progress("import", f"storing call {call.call_id} from the {event.event_type} webhook "
                           f"({len(call.recordings)} recording(s) to download)"))
    api = create(event.provider, settings=settings,
                 api_key=getattr(settings, f"{event.provider}_api_key", None))
    with WebhookSource(call, api) as source:
        [outcome] = import_calls(store, source, [call.call_id],
                                 concurrency=settings.download_concurrency)
    return _imported(store, outcome, call)


def _imported(store: Store, outcome: ImportOutcome, sent: Call | None) -> Call:
    """The stored call of an import; a recording the webhook named that could not be
    downloaded is a retryable :class:`RecordingError` (the call stays stored, and a retry
    downloads it again)."""
    if not outcome.ok:
        raise outcome.exception or RecordingError(outcome.error or "the import failed",
                                                  provider=outcome.provider or "?")
    call = store.get_call(outcome.call_id or "", outcome.provider)
    if sent is not None and outcome.not_downloaded:
        reasons = "; ".join(f"{kind}: {exc}" for kind, exc in outcome.not_downloaded.items())
        error = RecordingError(f"call {call.call_id} is stored, but its "
                               f"{', '.join(outcome.not_downloaded)} recording(s) could not "
                               f"be downloaded ({reasons})", provider=call.provider)
        error.retryable = True  # a presigned URL can lag behind the report
        raise error
    return call


def trigger_replays(context: JobContext, call: Call, event: Event) -> list[dict[str, Any]]:
    """Queue a replay job for each rule ``call`` matches; what was queued (or found)."""
    store, settings = context.store, context.settings
    rules = load_configured_rules(settings)
    if rules is None:
        context.progress(Progress("rules", "no rules file: nothing is replayed"))
        return []
    flagged = store.events.find(call.provider, call.call_id, "flag") is not None
    triggered: list[dict[str, Any]] = []
    for rule in rules.matching(call, flagged=flagged):
        request = replay_request(rule, call)
        job, new = _submitter(context)(
            "replay", request.model_dump(mode="json"), trigger_key(store, rule, call, request),
            call=(call.provider, call.call_id), max_attempts=settings.job_attempts,
            trigger={"rule": rule.name, "event_id": event.id, "source": event.event_type})
        triggered.append({"rule": rule.name, "job_id": job.id, "new": new})
    names = ", ".join(t["rule"] for t in triggered) or "none"
    context.progress(Progress("rules", f"rules matched: {names}"))
    return triggered


def trigger_key(store: Store, rule: Rule, call: Call, request: Any) -> str:
    """``rule:<provider>:<call>:<rule>:<candidate snapshot>`` — one replay per (call, rule,
    the snapshot the replay runs against)."""
    base = store.snapshot_for_call(call.call_id, call.provider)
    candidate = base.apply(request.agent_overrides()).id if base is not None else "none"
    key = f"rule:{call.provider}:{call.call_id}:{rule.name}:{candidate[:16]}"
    if len(key) <= KEY_LENGTH:
        return key
    return "rule:" + hashlib.sha256(key.encode()).hexdigest()


# -- notifications --------------------------------------------------------------------------
def target_id(target: NotifyTarget) -> str:
    """How a notification job names its target without storing the URL (a secret)."""
    return hashlib.sha256(f"{target.format} {target.url}".encode()).hexdigest()[:16]


def notification_jobs(store: Store, settings: Settings, job: Job, submit: Submit
                      ) -> list[Job]:
    """Queue the notifications of a triggered replay job that finished (none for others)."""
    rule_name = (job.trigger or {}).get("rule")
    if job.kind != "replay" or not rule_name or job.status not in ("COMPLETED", "FAILED"):
        return []
    rules = load_configured_rules(settings)
    rule = rules.get(rule_name) if rules is not None else None
    if rule is None:
        log.warning("job %s: rule %r is no longer in the rules file; no notification",
                    job.id[:12], rule_name)
        return []
    finished = job.finished_at.isoformat() if job.finished_at else "-"
    queued = []
    for target in rule.notify:
        digest = target_id(target)
        key = f"notify:{job.id}:{job.attempt}:{finished}:{digest}"
        notify, _new = submit("notify", {"job_id": job.id, "rule": rule.name,
                                         "target": digest}, key,
                              call=(job.call_provider, job.call_id or "?"),
                              trigger={"rule": rule.name, "replay_job": job.id},
                              max_attempts=NOTIFY_ATTEMPTS)
        queued.append(notify)
    return queued


def run_notification(context: JobContext) -> JobResult:
    """A ``notify`` job: post the summary of a finished replay job to one target."""
    request, settings = context.job.request, context.settings
    replay_job = context.store.jobs.get(str(request.get("job_id")))
    rules = load_configured_rules(settings)
    rule = rules.get(str(request.get("rule"))) if rules is not None else None
    target = next((t for t in (rule.notify if rule else []) if target_id(t) == request.get(
        "target")), None)
    if rule is None or target is None:
        raise RequestError(f"rule {request.get('rule')!r} or its notification target is no "
                           "longer in the rules file")
    summary = build_summary(context.store, replay_job, rule=rule.name,
                            public_url=settings.public_url)
    context.progress(Progress("notify", f"posting to {redacted(target.url)}"))
    status = post(target, render(summary, target.format), timeout=settings.http_timeout)
    return JobResult(call=(replay_job.call_provider or "?", replay_job.call_id or "?"),
                     result={"status_code": status, "target": redacted(target.url),
                             "format": target.format, "replay_job": replay_job.id})


# -- backfill -------------------------------------------------------------------------------
@dataclass
class SyncReport:
    """What a sync did for one provider."""

    provider: str
    listed: int = 0
    known: int = 0  # already stored (or already synced)
    events: list[Event] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


def sync_calls(store: Store, settings: Settings, submit: Submit, provider: str, *,
               since: datetime | None = None, limit: int | None = None,
               on_call: Callable[[str, bool], None] | None = None) -> SyncReport:
    """List ``provider``'s recent calls and queue a ``backfill`` event for each one missing
    from the store, as if its webhook had arrived (the event job imports it and runs the
    rules)."""
    report = SyncReport(provider)
    with open_provider(provider, settings) as api:
        for call in api.list_calls(since=since, limit=limit):
            report.listed += 1
            ref = CallRef(call_id=call.call_id, provider=call.provider)
            if stored_call(store, ref) is not None or store.events.list(
                    provider=provider, call_id=call.call_id, limit=1):
                report.known += 1
                if on_call:
                    on_call(call.call_id, False)
                continue
            event, _new = store.events.record(provider, "backfill", call.call_id,
                                              json.dumps({"call_id": call.call_id}))
            report.events.append(event)
            job = queue_event(store, settings, submit, event)
            if job is not None:
                report.jobs.append(job)
            if on_call:
                on_call(call.call_id, True)
    return report
