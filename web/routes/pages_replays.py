"""The replay pages: the comparison of a replay with its call (``/replays/{id}``, a stable URL
to share), the replay form of a call, and a job's live status until it opens the comparison."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from voicereplay.pipeline import show_replay
from voicereplay.pipeline.views import ComparisonView, comparison_view
from voicereplay.web.deps import SettingsDep, StoreDep
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
                    settings: SettingsDep) -> Response:
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
        "data": data, "tracks": list(TRACKS), "call_path": call_path})
