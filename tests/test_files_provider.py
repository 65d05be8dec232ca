"""Exported call folders: bad files skipped by name, nothing read outside the folder, recordings
named by the call's own relative or file:// URLs."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from voicereplay.artifacts import ArtifactStore
from voicereplay.errors import PayloadError, RecordingError
from voicereplay.models import Call, Recording
from voicereplay.providers.files import FilesProvider, local_reference, read_json

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BOOKING = FIXTURES / "vapi" / "vapi-2025-booking"
RETELL = FIXTURES / "retell" / "retell-support"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def _loaded(folder: Path) -> dict[str, Call | Exception]:
    return {file.path.name: result for file, result in FilesProvider(folder).iter_loaded()}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _nested(depth: int) -> dict[str, Any]:
    deep: dict[str, Any] = {}
    for _ in range(depth):
        deep = {"a": deep}
    return deep


# -- bad files are one failure each ---------------------------------------------------------
def test_deeply_nested_files_and_fields_are_bad_files_not_a_stopped_import(tmp_path: Path) -> None:
    shutil.copy(f"{BOOKING}.json", tmp_path / "good.json")
    call = _json(Path(f"{BOOKING}.json"))
    _write(tmp_path / "deep-field.json", {**call, "metadata": {"deep": _nested(300)}})
    (tmp_path / "deep-file.json").write_text("[" * 100_000 + "]" * 100_000)
    loaded = _loaded(tmp_path)
    assert isinstance(loaded["good.json"], Call)
    for name in ("deep-field.json", "deep-file.json"):
        error = loaded[name]
        assert isinstance(error, PayloadError)
        assert str(error).startswith(str(tmp_path / name)) and "levels deep" in str(error)
    assert "metadata.deep.a.a" in str(loaded["deep-field.json"])


def test_a_deep_sidecar_is_a_payload_error_for_that_call_only(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "demo" / "demo-refund.json", tmp_path / "demo.json")
    _write(tmp_path / "demo.assistant.json", {"model": _nested(300)})
    provider = FilesProvider(tmp_path)
    (call,) = provider.list_calls()
    with pytest.raises(PayloadError, match="levels deep"):
        provider.get_snapshot(call)


def test_deep_tool_arguments_are_kept_as_text(tmp_path: Path) -> None:
    call = _json(Path(f"{BOOKING}.json"))
    deep = json.dumps(_nested(200))
    for message in call["artifact"]["messages"]:
        for tool_call in message.get("toolCalls") or []:
            tool_call["function"]["arguments"] = deep
    _write(tmp_path / "c.json", call)
    parsed = FilesProvider(tmp_path).get_call(call["id"])
    calls = [c for t in parsed.turns for c in t.tool_calls]
    assert calls and all(c.arguments == {} and c.raw_arguments == deep for c in calls)
    parsed.model_dump_json()  # and the call can be stored


def test_a_utf8_bom_export_is_read(tmp_path: Path) -> None:
    data = Path(f"{BOOKING}.json").read_bytes()
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + data)
    assert read_json(tmp_path / "bom.json") == json.loads(data)
    assert isinstance(_loaded(tmp_path)["bom.json"], Call)


# -- nothing is read outside the folder ---------------------------------------------------------
def test_symlinks_out_of_the_folder_are_not_followed(tmp_path: Path) -> None:
    folder, outside = tmp_path / "export", tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    shutil.copy(f"{BOOKING}.json", outside / "secret.json")
    (folder / "linked.json").symlink_to(outside / "secret.json")
    shutil.copy(f"{RETELL}.json", folder / "call.json")
    shutil.copy(f"{RETELL}.agent.json", outside / "agent.json")
    (folder / "call.agent.json").symlink_to(outside / "agent.json")
    shutil.copy(f"{RETELL}.stereo.wav", outside / "rec.wav")
    (folder / "call.stereo.wav").symlink_to(outside / "rec.wav")
    shutil.copy(f"{RETELL}.mixed.wav", folder / "real.wav")
    (folder / "call.mixed.wav").symlink_to(folder / "real.wav")  # inside: fine
    loaded = _loaded(folder)
    refused = loaded["linked.json"]
    assert isinstance(refused, PayloadError) and "leaves the folder" in str(refused)
    call = loaded["call.json"]
    assert isinstance(call, Call)
    assert [r.kind for r in call.recordings] == ["mixed"]  # the stereo link was not followed
    provider = FilesProvider(folder)
    with pytest.raises(PayloadError, match="Retell LLM|neither"):
        provider.get_snapshot(provider.get_call(call.call_id))  # the agent link was not read


def test_a_file_that_is_not_audio_is_refused_without_its_bytes(tmp_path: Path) -> None:
    shutil.copy(f"{BOOKING}.json", tmp_path / "c.json")
    (tmp_path / "c.stereo.wav").write_bytes(b"token=SECRET-123 and more text")
    provider = FilesProvider(tmp_path)
    (call,) = provider.list_calls()
    with pytest.raises(RecordingError) as info:
        provider.fetch_recording(call, call.recordings[0], ArtifactStore(tmp_path / "blobs"))
    assert "not audio" in str(info.value)
    assert "SECRET" not in str(info.value) and "token" not in str(info.value)


# -- recordings named by the call's own URLs --------------------------------------------------
def _vapi_export(folder: Path, **urls: str) -> dict[str, Any]:
    call = _json(Path(f"{BOOKING}.json"))
    for key in ("recordingUrl", "stereoRecordingUrl"):
        call.pop(key, None)
        call["artifact"].pop(key, None)
    call["artifact"]["recording"] = {
        "stereoUrl": urls.get("stereo"),
        "mono": {"customerUrl": urls.get("customer"), "assistantUrl": urls.get("agent")},
    }
    _write(folder / "export.json", call)
    return call


def test_relative_and_file_urls_import_the_recordings_beside_the_call(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    shutil.copy(f"{BOOKING}.stereo.wav", tmp_path / "stereo.wav")
    shutil.copy(f"{BOOKING}.customer.wav", tmp_path / "audio" / "customer.wav")
    shutil.copy(f"{BOOKING}.agent.wav", tmp_path / "agent.wav")
    _vapi_export(tmp_path, stereo="stereo.wav", customer="audio/customer.wav",
                 agent=(tmp_path / "agent.wav").as_uri())
    provider = FilesProvider(tmp_path)
    (call,) = provider.list_calls()
    assert sorted(r.kind for r in call.recordings) == ["agent", "customer", "stereo"]
    store = ArtifactStore(tmp_path / "blobs")
    fetched = {r.kind: provider.fetch_recording(call, r, store) for r in call.recordings}
    assert fetched["stereo"].sha256 == _sha(tmp_path / "stereo.wav")
    assert fetched["customer"].sha256 == _sha(tmp_path / "audio" / "customer.wav")
    assert fetched["agent"].sha256 == _sha(tmp_path / "agent.wav")
    assert provider.warnings == []


def test_the_stem_convention_wins_over_the_url(tmp_path: Path) -> None:
    shutil.copy(f"{BOOKING}.stereo.wav", tmp_path / "stereo.wav")
    shutil.copy(f"{BOOKING}.mixed.wav", tmp_path / "export.stereo.wav")
    _vapi_export(tmp_path, stereo="stereo.wav")
    provider = FilesProvider(tmp_path)
    (call,) = provider.list_calls()
    (stereo,) = call.recordings
    blob = provider.fetch_recording(call, stereo, ArtifactStore(tmp_path / "blobs"))
    assert blob.sha256 == _sha(tmp_path / "export.stereo.wav")


def test_retell_multichannel_url_by_relative_name(tmp_path: Path) -> None:
    call = _json(Path(f"{RETELL}.json"))
    call["recording_multi_channel_url"] = "recording_multichannel.wav"
    call["recording_url"] = "https://cdn.example/recording.wav"  # remote: not imported here
    _write(tmp_path / "support.json", call)
    shutil.copy(f"{RETELL}.stereo.wav", tmp_path / "recording_multichannel.wav")
    provider = FilesProvider(tmp_path)
    (loaded,) = provider.list_calls()
    (stereo,) = loaded.recordings
    assert stereo.kind == "stereo" and stereo.url == "recording_multichannel.wav"
    blob = provider.fetch_recording(loaded, stereo, ArtifactStore(tmp_path / "blobs"))
    assert blob.sha256 == _sha(Path(f"{RETELL}.stereo.wav"))


@pytest.mark.parametrize("reference", [
    "../outside.wav", "sub/../../outside.wav", "{outside}", "file://{outside}",
    "link.wav", "file://otherhost/x.wav", "missing.wav",
])
def test_references_that_leave_the_folder_are_refused_with_a_warning(
    tmp_path: Path, reference: str, caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    outside = tmp_path / "outside.wav"
    shutil.copy(f"{BOOKING}.stereo.wav", outside)
    (folder / "link.wav").symlink_to(outside)
    _vapi_export(folder, stereo=reference.format(outside=outside))
    provider = FilesProvider(folder)
    with caplog.at_level(logging.WARNING, logger="voicereplay.providers.files"):
        (call,) = provider.list_calls()
        list(provider.list_calls())  # a second look warns no more
    assert call.recordings == []
    (warning,) = provider.warnings
    assert warning.startswith("export.json: recording ")
    assert ("not a file" in warning) if reference == "missing.wav" else (
        "not read" in warning)
    assert [r.getMessage() for r in caplog.records] == [warning]
    # asked for directly, it is still refused and never opened
    with pytest.raises(RecordingError):
        provider.open_recording(call, Recording(kind="stereo", url=reference.format(
            outside=outside)))


def test_local_reference_leaves_remote_urls_alone(tmp_path: Path) -> None:
    assert local_reference("https://storage.vapi.ai/x.wav", tmp_path) == (None, None)
    assert local_reference("C:\\calls\\x.wav", tmp_path)[0] is None
