"""What a first-time user and an attacker broke in the CLI: each case, as they typed it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from voicereplay.cli import app
from voicereplay.cli.common import print_json
from voicereplay.compare.prices import load_prices
from voicereplay.errors import ConfigError

runner = CliRunner()
BOOKING = "f3352433-32b4-5484-8824-ecaafb04a309"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def import_marked_call(tmp_path: Path, fixtures_dir: Path) -> None:
    """The booking call with markup-looking text from the provider in several fields."""
    folder = tmp_path / "export"
    folder.mkdir()
    for file in (fixtures_dir / "vapi").glob("vapi-2025-booking*"):
        shutil.copy(file, folder / file.name)
    path = folder / "vapi-2025-booking.json"
    data = json.loads(path.read_text())
    data["endedReason"] = "[/]"
    data["summary"] = "[bold red]not bold[/bold red] [link=http://x]y[/link]"
    data["analysis"]["summary"] = data["summary"]
    path.write_text(json.dumps(data))
    code, _out, err = run("calls", "import", "--dir", str(folder), "--no-recordings")
    assert code == 0, err


def test_provider_text_is_printed_literally(tmp_path: Path, fixtures_dir: Path) -> None:
    import_marked_call(tmp_path, fixtures_dir)
    code, out, err = run("calls", "list")
    assert code == 0, err
    assert "[/]" in out
    code, out, err = run("calls", "show", BOOKING)
    assert code == 0, err
    assert "[bold red]not bold[/bold red]" in out and "[/]" in out
    # a snapshot diff row keeps its brackets
    code, out, err = run("snapshot", "diff", BOOKING, "--set", "first_message=[book_appointment]")
    assert code == 0, err
    assert "[book_appointment]" in out
    # an id the user typed is echoed as typed
    code, _out, err = run("calls", "show", "[bold]x")
    assert code == 4 and "[bold]x" in err


@pytest.mark.parametrize(("name", "value", "message"), [
    ("VOICEREPLAY_DOWNLOAD_CONCURRENCY", "abc", "expected a whole number"),
    ("VOICEREPLAY_DOWNLOAD_CONCURRENCY", "0", "expected a whole number"),
    ("VOICEREPLAY_HTTP_TIMEOUT", "-1", "positive number of seconds"),
    ("VOICEREPLAY_DATABASE_URL", "not a url", "is not a database URL"),
    ("VOICEREPLAY_DATABASE_URL", "sqlite:///:memory:", "in-memory SQLite"),
    ("VOICEREPLAY_DATABASE_URL", "mysql://u@h/db", "not supported"),
    ("VAPI_BASE_URL", "ftp://example", "http(s)://"),
])
def test_a_bad_setting_is_one_line_and_exit_2(name: str, value: str, message: str) -> None:
    code, _out, err = run("calls", "list", env={name: value})
    assert code == 2
    assert message in err and name in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_download_concurrency_is_used(tmp_path: Path, fixtures_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from voicereplay import pipeline

    seen: list[int] = []
    real = pipeline.import_calls

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["concurrency"])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "import_calls", spy)
    code, _out, err = run("calls", "import", "--dir", str(fixtures_dir / "demo"),
                          env={"VOICEREPLAY_DOWNLOAD_CONCURRENCY": "3"})
    assert code == 0, err
    code, _out, err = run("calls", "import", "--dir", str(fixtures_dir / "demo"),
                          "--concurrency", "5", env={"VOICEREPLAY_DOWNLOAD_CONCURRENCY": "3"})
    assert code == 0, err
    assert seen == [3, 5]


def test_list_says_when_nothing_matches_and_refuses_unknown_providers(
        tmp_path: Path, fixtures_dir: Path) -> None:
    code, _out, err = run("calls", "list")
    assert code == 0 and "no calls stored yet" in err
    run("calls", "import", "--dir", str(fixtures_dir / "vapi"), "--no-recordings")
    code, _out, err = run("calls", "list", "--since", "1h")
    assert code == 0 and "no calls match (3 stored)" in err
    code, _out, err = run("calls", "list", "--provider", "twilio")
    assert code == 2 and "unknown provider 'twilio'; known: retell, vapi" in err


def test_prices_must_be_finite_and_not_negative(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    for bad in ("m: {input: -1, output: 1}", "m: {input: .inf, output: 1}",
                "m: {input: 1, output: .nan}"):
        prices.write_text(bad + "\n")
        with pytest.raises(ConfigError, match="finite numbers"):
            load_prices(prices)
    prices.write_text("m: {input: 0, output: 2.5}\n")
    assert load_prices(prices)["m"] == (0.0, 2.5)


def test_json_output_is_always_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    print_json({"p90": float("inf"), "rows": [float("nan"), 1.5], "ok": True})
    printed = capsys.readouterr().out
    assert "Infinity" not in printed and "NaN" not in printed
    assert json.loads(printed) == {"p90": None, "rows": [None, 1.5], "ok": True}


def test_call_refuses_unreadable_prompt_files_in_one_line(tmp_path: Path,
                                                          fixtures_dir: Path) -> None:
    latin1 = tmp_path / "prompt.txt"
    latin1.write_bytes("Vous êtes l'agent de réception.".encode("latin-1"))
    code, _out, err = run("call", "any-call", "--prompt-file", str(latin1))
    assert code == 2 and "not UTF-8 text" in err and "Traceback" not in err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, _out, err = run("call", "any-call", "--prompt-file", str(empty))
    assert code == 2 and "is empty" in err
    run("calls", "import", "--dir", str(fixtures_dir / "vapi"), "--no-recordings")
    code, _out, err = run("snapshot", "diff", BOOKING, "--prompt-file", str(latin1))
    assert code == 2 and "not UTF-8 text" in err
