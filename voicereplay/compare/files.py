"""The report files written beside a replay's audio.

:func:`write_reports` writes, into the replay's folder (or ``out_dir``):

* ``report.json`` — the :class:`~voicereplay.compare.model.Comparison`, versioned by its
  ``schema_version``; its JSON Schema is ``report.schema.json`` in this package
  (:func:`report_schema`; regenerate with ``python -m voicereplay.compare.schema``);
* ``report.md`` — the same for a pull request or an issue;
* ``junit.xml`` — one test case per check, for CI;
* ``latency.<fmt>`` and ``waveform.<fmt>`` — the per-turn latency chart and both calls'
  waveforms with turn boundaries, as PNG or SVG.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from voicereplay.compare.model import Comparison
from voicereplay.errors import ConfigError, RecordingError
from voicereplay.models import Call, Recording, Replay, local_recordings

__all__ = ["FIGURE_FORMATS", "SCHEMA_PATH", "report_schema", "write_reports"]

FIGURE_FORMATS = ("png", "svg")
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
FigureFormat = Literal["png", "svg"]


def report_schema() -> dict[str, Any]:
    """The JSON Schema of ``report.json`` (as shipped in ``report.schema.json``)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _audio(recordings: list[Recording]) -> Path | None:
    """The recording to draw: mixed (both parties on one track), else stereo."""
    local = local_recordings(recordings)
    return local.get("mixed") or local.get("stereo")


def write_reports(comparison: Comparison, call: Call, replay: Replay, out_dir: Path, *,
                  figures: str = "png") -> dict[str, str]:
    """Write every report file into ``out_dir``; returns (and records) name → path."""
    from voicereplay.compare.charts import latency_chart, waveform_chart
    from voicereplay.compare.junit import write_junit
    from voicereplay.compare.markdown import report_markdown

    fmt = figures.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise ConfigError(f"--figures {figures!r}: use png or svg")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "latency_chart": out_dir / f"latency.{fmt}",
        "waveform": out_dir / f"waveform.{fmt}",
        "json": out_dir / "report.json",
        "markdown": out_dir / "report.md",
        "junit": out_dir / "junit.xml",
    }
    latency_chart(comparison, files["latency_chart"])
    baseline_audio, replay_audio = _audio(call.recordings), _audio(replay.recordings)
    try:
        waveform_chart(call, replay, baseline_audio, replay_audio, files["waveform"])
    except RecordingError as exc:  # draw the turns without the audio rather than no picture
        comparison.warnings.append(f"waveform drawn without audio: {exc.message}")
        waveform_chart(call, replay, None, None, files["waveform"])
    comparison.files = {name: str(path) for name, path in files.items()}
    write_junit(comparison, files["junit"])
    files["markdown"].write_text(report_markdown(comparison, figures={
        "latency": files["latency_chart"].name, "waveform": files["waveform"].name}),
        encoding="utf-8")
    files["json"].write_text(comparison.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return comparison.files
