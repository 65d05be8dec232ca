"""`voicereplay call` end to end with the real embedded models, offline.

The demo call is replayed through faster-whisper, piper and (a) the recorded baseline replies —
the audio path's fidelity check — or (b) SmolLM2 in-process with the fixed prompt. Bad inputs
(no audio, corrupt audio, silent audio, no system prompt, an unreachable model) each give one
clear error or a documented fallback, and never a half-stored replay.
"""

from __future__ import annotations

import json
import shutil
import socket
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jiwer
import pytest
import soundfile
from typer.testing import CliRunner

from voicereplay.cli import app

DEMO_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
DEMO = "dfed92e7-b86e-5139-835c-d451a4f9d515"
runner = CliRunner()


pytestmark = pytest.mark.models  # every test here runs the real STT/TTS (and LLM)

@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any connection that leaves the machine: nothing may be fetched from a network."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in (
            "127.0.0.1", "::1", "localhost"
        ):
            raise AssertionError(f"a replay tried to reach {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def replays(out: str) -> list[dict[str, Any]]:
    return json.loads(out)


def by_role(replay: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [t for t in replay["turns"] if t["role"] == role]


def wav_seconds(path: str) -> float:
    with wave.open(path) as w:
        return w.getnframes() / w.getframerate()


def test_recorded_replay_reproduces_the_demo_call() -> None:
    code, out, err = run("call", DEMO, "--dir", str(DEMO_DIR), "--model", "recorded", "--json")
    assert code == 0, err
    [replay] = replays(out)
    baseline = json.loads((DEMO_DIR / "demo-refund.json").read_text())
    said = [m["message"] for m in baseline["artifact"]["messages"] if m["role"] == "user"]

    users = by_role(replay, "user")
    assert [u["origin"] for u in users] == ["original-audio"] * 5
    assert jiwer.wer(" ".join(said).lower(), " ".join(u["heard"] for u in users).lower()) < 0.35

    agents = by_role(replay, "agent")
    assert agents[0]["origin"] == "first-message"
    bot = [m["message"] for m in baseline["artifact"]["messages"] if m["role"] == "bot"]
    assert [a["text"] for a in agents] == bot  # the recorded replies, verbatim
    for turn in agents[1:]:
        t = turn["timings"]
        assert t["response"] == pytest.approx(0.3 + t["stt"] + t["llm_ttft"] + t["tts_ttfa"],
                                              abs=0.02)

    [result] = by_role(replay, "tool_result")
    assert result["tool_result"]["source"] == "recorded"
    assert "refunded" in result["tool_result"]["result"]

    files = {r["kind"]: r["path"] for r in replay["recordings"]}
    assert set(files) == {"stereo", "customer", "agent", "mixed"}
    for path in files.values():
        assert wav_seconds(path) == pytest.approx(replay["duration"], abs=0.1)
    assert soundfile.info(files["stereo"]).channels == 2
    # the audio is the timeline: it ends with the last turn (the gaps between turns hold the
    # measured stage latencies, so the length depends on this machine: not asserted)
    ends = [t["end"] for t in replay["turns"] if t.get("end") is not None]
    assert max(ends) == pytest.approx(replay["duration"], abs=1.0)

    code, out, _ = run("replays", "list", DEMO, "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [replay["id"]]
    code, out, _ = run("replays", "show", replay["id"][:8])
    assert code == 0 and "issue_refund" in out and "stereo.wav" in out


def test_local_model_replays_against_the_fixed_prompt() -> None:
    code, out, err = run(
        "call", DEMO, "--dir", str(DEMO_DIR), "--model", "local",
        "--prompt-file", str(DEMO_DIR / "fixed-prompt.txt"), "--seed", "3",
        "--set", "model.max_tokens=40", "--runs", "2", "--json",
    )
    assert code == 0, err
    first, second = replays(out)
    assert {first["run_index"], second["run_index"]} == {0, 1}
    assert first["batch_id"] == second["batch_id"]
    assert first["snapshot_id"] != first["base_snapshot_id"]
    assert "system_prompt" in first["overrides"]
    llm_turns = [t for t in by_role(first, "agent") if t["origin"] == "llm"]
    assert llm_turns and any(t["text"] for t in llm_turns)
    request = llm_turns[0]["llm_request"]
    assert "check_status" in request["messages"][0]["content"]  # the fixed prompt was sent
    assert {t["function"]["name"] for t in request["tools"]} >= {"check_status", "issue_refund"}
    assert first["backends"]["llm"] == "llama-cpp"
    # the batch's comparison measures how much the two runs disagree, turn by turn
    fidelity = first["comparison"]["fidelity"]
    assert fidelity["runs"] == 2 and fidelity["flakiness"]
    assert {f["turn"] for f in fidelity["flakiness"]} <= set(range(1, 7))
    assert all(0.0 <= f["disagreement"] <= 1.0 and len(f["texts"]) == 2
               for f in fidelity["flakiness"])
    assert second["comparison"]["fidelity"]["runs"] == 2


def _copy_demo(tmp_path: Path, *, audio: bool = True) -> Path:
    target = tmp_path / "calls"
    target.mkdir()
    for path in DEMO_DIR.iterdir():
        if path.suffix == ".json" or (audio and path.suffix == ".wav"):
            shutil.copy(path, target / path.name)
    return target


def test_a_call_without_recordings_falls_back_to_synthesized_caller_turns(
    tmp_path: Path,
) -> None:
    calls = _copy_demo(tmp_path, audio=False)
    code, out, err = run("call", DEMO, "--dir", str(calls), "--model", "recorded", "--json")
    assert code == 0, err
    [replay] = replays(out)
    assert {u["origin"] for u in by_role(replay, "user")} == {"tts-of-transcript"}
    assert len(by_role(replay, "user")) == 5


def test_silent_recordings_fall_back_with_a_warning(tmp_path: Path) -> None:
    calls = _copy_demo(tmp_path)
    for path in calls.glob("*.wav"):
        data, rate = soundfile.read(str(path))
        soundfile.write(str(path), data * 0.0, rate, subtype="PCM_16")
    code, out, err = run("call", DEMO, "--dir", str(calls), "--model", "recorded", "--json")
    assert code == 0, err
    [replay] = replays(out)
    assert {u["origin"] for u in by_role(replay, "user")} == {"tts-of-transcript"}
    assert replay["warnings"]


def test_corrupt_recordings_are_left_out_and_the_caller_synthesized(tmp_path: Path) -> None:
    calls = _copy_demo(tmp_path)
    for path in calls.glob("*.wav"):
        path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x07" * 64)
    code, out, err = run("calls", "import", "--provider", "files", "--dir", str(calls))
    assert code == 0, err
    for kind in ("stereo", "customer", "agent", "mixed"):  # each file named, with what is wrong
        assert f"{kind} recording demo-refund.{kind}.wav is not audio that can be decoded" in (
            out + err).replace("\n", " ")
    code, out, err = run("call", DEMO, "--dir", str(calls), "--model", "recorded", "--json")
    assert code == 0, err
    [replay] = replays(out)
    assert [u["origin"] for u in by_role(replay, "user")] == ["tts-of-transcript"] * 5
    assert any("synthesized from the transcript" in w for w in replay["warnings"])


def test_a_snapshot_without_a_system_prompt_replays_with_a_warning(tmp_path: Path) -> None:
    calls = _copy_demo(tmp_path)
    sidecar = calls / "demo-refund.assistant.json"
    assistant = json.loads(sidecar.read_text())
    assistant["model"]["messages"] = []
    sidecar.write_text(json.dumps(assistant))
    code, out, err = run("call", DEMO, "--dir", str(calls), "--model", "recorded", "--json")
    assert code == 0, err
    [replay] = replays(out)
    assert any("no system prompt" in w for w in replay["warnings"])


def test_an_unreachable_model_says_which_override_to_pass() -> None:
    code, _, err = run("call", DEMO, "--dir", str(DEMO_DIR))
    assert code == 2
    assert "OPENAI_API_KEY" in err and "--llm-base-url" in err and "--model local" in err
    assert run("replays", "list", "--json")[1].strip() == "[]"
