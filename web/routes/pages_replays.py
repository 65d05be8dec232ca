"""The replay pages: the comparison of a replay with its call (``/replays/{id}``, a stable URL
to share), the replay form of a call, and a job's live status until it opens the comparison."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from voicereplay.config import Settings
from voicereplay.errors import VoiceReplayError
from voicereplay.pipeline import ReplayRequest, show_replay
from voicereplay.pipeline.forms import (
    MODES,
    ReplayForm,
    backend_choices,
    form_for,
    request_from_form,
)
from voicereplay.pipeline.views import ComparisonView, comparison_view, prompt_diff
from voicereplay.scenario import SUFFIX
from voicereplay.web.deps import QueueDep, SettingsDep, StoreDep
from voicereplay.web.templating import templates

router = APIRouter(include_in_schema=False)

# The track switch: what a person picks → the recording kinds that can play it, best first.
TRACKS = {"mixed": ("mixed", "stereo"), "caller": ("customer",), "agent": ("agent",)}


def _player(view: ComparisonView, side: str, base: str, peaks: str,
            duration: float | None) -> dict[str, Any]:
    kinds = view.tracks[side]
    tracks = {}
    for name, wanted in TRACKS.items():
        kind = next((k for k in wanted if k in kinds), None)
        if kind is not None:
            tracks[name] = {"kind": kind, "audio": f"{base}/{kind}",
                            "peaks": f"{peaks}/{kind}.json"}
    return {"side": side, "duration": duration, "tracks": tracks,
            "regions": [r.model_dump() for r in view.regions[side]]}


@router.get("/replays/{replay_id}", response_class=HTMLResponse)
def comparison_page(replay_id: str, request: Request, store: StoreDep,
                    settings: SettingsDep, saved: str | None = None) -> Response:
    result = show_replay(store, replay_id, settings=settings)
    view = comparison_view(store, result)
    call, replay = result.call, result.replay
    call_path = f"calls/{call.provider}/{call.call_id}"
    data = {
        "players": {
            "baseline": _player(view, "baseline", f"/files/{call_path}",
                                f"/waveforms/{call_path}", call.duration),
            "replay": _player(view, "replay", f"/files/replays/{replay.id}",
                              f"/waveforms/replays/{replay.id}", replay.duration),
        },
        "rows": [{"index": r.index, "kind": r.kind, "number": r.number,
                  "baseline": r.baseline.model_dump() if r.baseline else None,
                  "replay": r.replay.model_dump() if r.replay else None} for r in view.rows],
    }
    return templates.TemplateResponse(request, "comparison.html", {
        "call": call, "replay": replay, "comparison": result.comparison, "view": view,
        "data": data, "tracks": list(TRACKS), "call_path": call_path,
        "saved": _saved(settings, saved)})


def _saved(settings: Settings, name: str | None) -> dict[str, str] | None:
    """The scenario "Save as test" just wrote (shown above the form), if it exists."""
    if not name:
        return None
    path = settings.scenarios_dir / f"{name}{SUFFIX}"
    return {"name": name, "path": str(path)} if path.is_file() else None


# -- the replay form --------------------------------------------------------------------------
def _form_page(request: Request, store: StoreDep, provider: str, call_id: str,
               form: ReplayForm | None = None, error: str | None = None,
               status_code: int = 200) -> Response:
    call = store.get_call(call_id, provider)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    form = form or form_for(snapshot)
    original = (snapshot.system_prompt or "") if snapshot else ""
    return templates.TemplateResponse(request, "replay_form.html", {
        "call": call, "snapshot": snapshot, "form": form, "error": error, "modes": MODES,
        "backends": backend_choices(), "defaults": ReplayRequest.model_fields,
        "diff": prompt_diff(original, form.system_prompt.replace("\r\n", "\n"))},
        status_code=status_code)


@router.get("/calls/{provider}/{call_id}/replay", response_class=HTMLResponse)
def replay_form(provider: str, call_id: str, request: Request, store: StoreDep) -> Response:
    return _form_page(request, store, provider, call_id)


@router.post("/calls/{provider}/{call_id}/replay", response_class=HTMLResponse)
def submit_replay(provider: str, call_id: str, request: Request, store: StoreDep,
                  queue: QueueDep, form: Annotated[ReplayForm, Form()]) -> Response:
    call = store.get_call(call_id, provider)
    try:
        replay_request = request_from_form(call, store.snapshot_for_call(
            call.call_id, call.provider), form)
    except VoiceReplayError as exc:
        return _form_page(request, store, provider, call_id, form, exc.message, 422)
    job, _ = queue.submit(replay_request, key=form.submission or None)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.post("/calls/{provider}/{call_id}/replay/diff", response_class=HTMLResponse)
def prompt_diff_partial(provider: str, call_id: str, request: Request, store: StoreDep,
                        system_prompt: Annotated[str, Form()] = "") -> Response:
    """htmx: the edited system prompt against the call's own, before submitting."""
    call = store.get_call(call_id, provider)
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    original = (snapshot.system_prompt or "") if snapshot else ""
    return templates.TemplateResponse(request, "_prompt_diff.html", {
        "diff": prompt_diff(original, system_prompt.replace("\r\n", "\n"))})


# -- a job's live status ----------------------------------------------------------------------
@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request, store: StoreDep) -> Response:
    job = store.jobs.get(job_id)
    return templates.TemplateResponse(request, "job.html", {"job": job})


@router.get("/jobs/{job_id}/status", response_class=HTMLResponse)
def job_status(job_id: str, request: Request, store: StoreDep) -> Response:
    """htmx polls this every second; a completed job sends the browser to its comparison."""
    job = store.jobs.get(job_id)
    response = templates.TemplateResponse(request, "_job_status.html", {"job": job})
    if job.status == "COMPLETED" and job.replay_ids and request.headers.get("HX-Request"):
        response.headers["HX-Redirect"] = f"/replays/{job.replay_ids[0]}"
    return response
