""""Save as test" on the comparison page: the replay saved as a scenario into the server's
scenarios folder (CSRF-checked), shown on the page, downloadable as a zip that runs."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.web_demo import replayed_demo
from voicereplay.scenario import load_scenario
from voicereplay.web import create_app


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, str, Path]]:
    settings, store, replay_id = replayed_demo(tmp_path / "home")
    with TestClient(create_app(settings, store=store)) as client:
        yield client, replay_id, settings.scenarios_dir


def test_save_as_test_writes_the_scenario_and_offers_it_as_a_zip(
        site: tuple[TestClient, str, Path], tmp_path: Path) -> None:
    client, replay_id, folder = site
    page = client.get(f"/replays/{replay_id}")
    assert 'id="save-test"' in page.text
    token = client.cookies.get("vr_csrf")
    refused = client.post(f"/replays/{replay_id}/save-test", data={"name": "x"},
                          follow_redirects=False)
    assert refused.status_code == 403 and not folder.exists()  # no CSRF token: nothing saved
    done = client.post(f"/replays/{replay_id}/save-test",
                       data={"name": "refund-bug", "csrf_token": token},
                       follow_redirects=False)
    assert done.status_code == 303, done.text
    path = folder / "refund-bug.voicereplay.yaml"
    scenario = load_scenario(path)
    assert scenario.source.replay_id == replay_id
    shown = client.get(done.headers["location"].split("#")[0])
    assert str(path) in shown.text and "/scenarios/refund-bug.zip" in shown.text

    again = client.post(f"/replays/{replay_id}/save-test",
                        data={"name": "refund-bug", "csrf_token": token})
    assert again.status_code == 400 and "exists" in again.text  # never overwritten

    archive = client.get("/scenarios/refund-bug.zip")
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        names = opened.namelist()
        assert "refund-bug.voicereplay.yaml" in names
        assert any(n.startswith("refund-bug.voicereplay/") and n.endswith(".wav")
                   for n in names)
        opened.extractall(tmp_path / "unzipped")
    assert load_scenario(tmp_path / "unzipped" / "refund-bug.voicereplay.yaml").name == \
        "refund-bug"
    assert client.get("/scenarios/nope.zip").status_code == 404
    assert client.get("/scenarios/..%2Fvoicereplay.zip").status_code == 404
