""""Save as test" on the comparison page: the replay saved as a regression scenario
(:func:`voicereplay.pipeline.scenarios.save_scenario`, the same as ``voicereplay save``) into
the server's scenarios folder (``VOICEREPLAY_SCENARIOS``, default ``$VOICEREPLAY_HOME/
scenarios``), optionally redacted, and downloadable as a zip of the YAML and its audio folder.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from voicereplay.errors import NotStoredError
from voicereplay.pipeline.scenarios import save_scenario
from voicereplay.scenario import SUFFIX
from voicereplay.web.deps import SettingsDep, StoreDep

router = APIRouter(include_in_schema=False)
_NAME = re.compile(r"[A-Za-z0-9._-]{1,120}")


@router.post("/replays/{replay_id}/save-test")
async def save_as_test(replay_id: str, store: StoreDep, settings: SettingsDep,
                       name: Annotated[str, Form()] = "",
                       redact: Annotated[str, Form()] = "") -> Response:
    """Write the replay as a scenario, then show the comparison again with where it went."""
    redactor = None
    if redact:
        from voicereplay.pipeline.redact_config import load_redact_config
        from voicereplay.pipeline.scenario_redaction import ScenarioRedaction

        kept = load_redact_config(settings)
        redactor = ScenarioRedaction(names=kept.names, patterns=kept.pattern_args(),
                                     allow=kept.allow)
    replay = store.replays.get(replay_id)
    saved = await run_in_threadpool(lambda: save_scenario(
        store, replay.id, settings.scenarios_dir, name=name.strip() or None,
        redactor=redactor))
    return RedirectResponse(f"/replays/{replay.id}?saved={quote(saved.scenario.name)}#save",
                            status_code=303)


@router.get("/scenarios/{name}.zip")
def scenario_zip(name: str, settings: SettingsDep) -> Response:
    """A saved scenario (its YAML and audio folder) as a zip, ready for a repository."""
    root = settings.scenarios_dir
    path, folder = root / f"{name}{SUFFIX}", root / f"{name}.voicereplay"
    if not _NAME.fullmatch(name) or not path.is_file():
        raise NotStoredError(f"no scenario {name!r} is saved in {root}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, path.name)
        for file in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if file.is_file():
                archive.write(file, str(file.relative_to(root)))
    return Response(buffer.getvalue(), media_type="application/zip", headers={
        "content-disposition": f'attachment; filename="{name}.voicereplay.zip"'})
