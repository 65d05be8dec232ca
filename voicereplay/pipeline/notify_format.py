"""The two notification formats of a replay summary: :func:`render` picks one.

- ``json``: the summary of :func:`~voicereplay.pipeline.notify_summary.build_summary`, as is.
- ``slack``: an incoming-webhook message — ``text`` (the headline, what notifications and
  clients without blocks show) and ``blocks``: a header, the call / rule / checks / divergence /
  fidelity section, one section per failing check with its evidence, and an "Open comparison"
  button per replay when the summary has links.

Every text that came from a provider or a user (transcripts, tool arguments, error messages,
call ids, rule names) is escaped for Slack mrkdwn (``&`` ``<`` ``>`` as ``&amp;`` ``&lt;``
``&gt;``), and every mrkdwn text object is ``verbatim``, so a caller's words can never become a
link, a mention (``<!channel>``, ``@channel``) or a channel link. Long texts are cut to fit
Slack's limits (3,000 characters a section, 50 blocks a message).
"""

from __future__ import annotations

from typing import Any, Literal

from voicereplay.errors import ConfigError
from voicereplay.pipeline.notify_summary import clip

__all__ = ["Format", "escape", "render", "slack_message"]

Format = Literal["json", "slack"]

MAX_CHECKS_SHOWN = 10  # failing checks given a block of their own; the rest are counted
MAX_EVIDENCE_SHOWN = 3  # pieces of evidence shown per failing check
EVIDENCE_CHARS = 200  # characters of one piece of evidence in Slack
MESSAGE_CHARS = 300  # characters of a check message or an error in Slack
SECTION_CHARS = 2900  # Slack allows 3,000 in a section's text


def escape(text: str) -> str:
    """``text`` made literal for Slack mrkdwn: ``&``, ``<`` and ``>`` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(summary: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The payload that ``fmt`` (``json`` or ``slack``) posts for ``summary``."""
    if fmt == "json":
        return summary
    if fmt == "slack":
        return slack_message(summary)
    raise ConfigError(f"unknown notification format {fmt!r}; known: json, slack")


def slack_message(summary: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook payload for ``summary`` (see the module docs)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _title(summary),
                                    "emoji": True}},
        _section(_overview(summary)),
    ]
    failing = [(replay, check) for replay in summary["replays"]
               for check in (replay["checks"] or {}).get("failing", [])]
    runs = len(summary["replays"])
    for replay, check in failing[:MAX_CHECKS_SHOWN]:
        blocks.append(_section(_failing_check(check, replay["run_index"] if runs > 1
                                              else None)))
    if len(failing) > MAX_CHECKS_SHOWN:
        blocks.append(_context(f"…and {len(failing) - MAX_CHECKS_SHOWN} more failing checks "
                               "(open the comparison to see them all)"))
    buttons = [_button(replay, runs) for replay in summary["replays"] if replay.get("url")]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:5]})
    return {"text": escape(summary["headline"]), "blocks": blocks}


def _title(summary: dict[str, Any]) -> str:
    """The header (plain text, our own words only: nothing there to escape)."""
    if summary["status"] == "failed":
        return "❌ Replay failed"
    replays = [r for r in summary["replays"] if r["checks"] is not None]
    total = sum(r["checks"]["total"] for r in replays)
    failed = sum(r["checks"]["failed"] for r in replays)
    if failed:
        return f"❌ Replay completed: {failed} of {total} checks failed"
    if len(replays) < len(summary["replays"]) or not replays:
        return "⚠️ Replay completed: a replay is unavailable"
    if total:
        return "✅ Replay completed: the check passed" if total == 1 else \
            f"✅ Replay completed: all {total} checks passed"
    return "✅ Replay completed"


def _overview(summary: dict[str, Any]) -> str:
    call = summary["call"]
    call_text = f"`{escape(call['id'] or 'unknown')}`"
    if call.get("url"):
        call_text = f"<{call['url']}|{call_text}>"
    lines = [f"*Call* {call_text} ({escape(call['provider'] or 'unknown provider')})"
             + (f" · ended: {escape(call['ended_reason'])}" if call["ended_reason"] else "")
             + (f" · {call['duration']:.0f} s" if call["duration"] is not None else "")]
    if summary["rule"]:
        lines.append(f"*Rule* {escape(summary['rule'])}")
    lines.append(f"*Job* `{escape(summary['job']['id'][:12])}` · attempt "
                 f"{summary['job']['attempt']}")
    if summary["error"]:
        error = summary["error"]
        lines.append(f"*Error* {escape(error['type'])}: "
                     f"{escape(clip(error['message'], MESSAGE_CHARS))}")
    for replay in summary["replays"]:
        lines.append(_replay_line(replay, len(summary["replays"])))
    return "\n".join(lines)


def _replay_line(replay: dict[str, Any], runs: int) -> str:
    label = f"*Run {replay['run_index'] + 1}*" if runs > 1 and replay["run_index"] is not None \
        else "*Replay*"
    if replay["checks"] is None:
        return f"{label} `{escape(replay['id'][:12])}` unavailable: " \
               f"{escape(clip(replay['error'] or '', MESSAGE_CHARS))}"
    checks = replay["checks"]
    parts = [f"checks {checks['passed']}/{checks['total']} passed" if checks["total"]
             else "no checks"]
    divergence = replay["divergence"]
    parts.append(f"diverged at turn {divergence['turn']} ({divergence['reason']}: "
                 f"{escape(clip(divergence['detail'], 120))})" if divergence
                 else "no divergence")
    fidelity = replay["fidelity"]
    if fidelity and fidelity["score"] is not None:
        parts.append(f"fidelity {fidelity['score']:.2f} ({fidelity['level']})")
    if replay["similarity"] is not None:
        parts.append(f"similarity {replay['similarity']:.2f}")
    if replay["status"] != "completed":
        parts.append(f"replay {replay['status']}: "
                     f"{escape(clip(replay['error'] or '', MESSAGE_CHARS))}")
    return f"{label} " + " · ".join(parts)


def _failing_check(check: dict[str, Any], run_index: int | None) -> str:
    mark = "⚠️" if check["status"] == "error" else "❌"
    run = f" (run {run_index + 1})" if run_index is not None else ""
    lines = [f"{mark} *{escape(clip(check['name'], 150))}*{run} — "
             f"{escape(clip(check['message'], MESSAGE_CHARS))}"]
    for evidence in check["evidence"][:MAX_EVIDENCE_SHOWN]:
        turn = f"turn {evidence['turn']}: " if evidence["turn"] is not None else ""
        lines.append(f"> {turn}{escape(clip(evidence['text'], EVIDENCE_CHARS))}")
    return "\n".join(lines)


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_CHARS:  # cut at a line, so no entity or link is cut in half
        kept = text[:SECTION_CHARS].rsplit("\n", 1)[0]
        text = kept + "\n…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text,
                                             "verbatim": True}]}


def _button(replay: dict[str, Any], runs: int) -> dict[str, Any]:
    label = "Open comparison" if runs == 1 or replay["run_index"] is None else \
        f"Open run {replay['run_index'] + 1}"
    return {"type": "button", "text": {"type": "plain_text", "text": label},
            "url": replay["url"]}
