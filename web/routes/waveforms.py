"""``/waveforms/…``: a recording's waveform peaks as JSON ``{duration, peaks}`` for the players
(computed once per recording and cached beside it: :mod:`voicereplay.peaks`). The recording is
found by call or replay id and track name in the store — never from a path in the request."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from voicereplay.peaks import waveform_peaks
from voicereplay.pipeline.views import recording_file
from voicereplay.web.deps import StoreDep

router = APIRouter(prefix="/waveforms", tags=["files"])


@router.get("/calls/{provider}/{call_id}/{track}.json")
def call_peaks(provider: str, call_id: str, track: str, store: StoreDep) -> dict[str, Any]:
    """Peaks of one track (stereo, customer, agent, mixed) of a stored call."""
    path = recording_file(store, track, call_id=call_id, provider=provider)
    return waveform_peaks(path).model_dump()


@router.get("/replays/{replay_id}/{track}.json")
def replay_peaks(replay_id: str, track: str, store: StoreDep) -> dict[str, Any]:
    """Peaks of one track of a stored replay."""
    return waveform_peaks(recording_file(store, track, replay_id=replay_id)).model_dump()
