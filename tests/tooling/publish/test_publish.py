"""`dashboards --publish` against a local server that speaks Grafana's documented HTTP API.

Grafana cannot run here; the real-Grafana check is the compose stack (docs/stack.md).
Each test asserts the HTTP conversation itself - method, path, auth header and
body shape of every request - and what the user sees: one line per error, and
never the secret.
"""

from __future__ import annotations

import base64
import copy
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from netauto_statsd.tooling.dashboards import DEFAULT_DIR, load_dashboards
from netauto_statsd.tooling.publish import MAX_UID, OWNER_TAG, prepare, published_uid, run_publish
from tests.grafana_server import FakeGrafana
from tests.support import ROOT, free_port, require_module
from tests.tooling.publish.conftest import PASSWORD, TOKEN

require_module("grafana_client", "pip install 'netauto-statsd[grafana]'")

DASHBOARDS = load_dashboards(ROOT / DEFAULT_DIR)


def _env(grafana: FakeGrafana, **extra: str) -> dict[str, str]:
    return {"GRAFANA_URL": grafana.url, "GRAFANA_TOKEN": TOKEN, **extra}


def _publish(
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    dashboards: dict[str, dict[str, Any]] | None = None,
    **options: Any,
) -> tuple[int, str, str]:
    options.setdefault("folder", "NetAuto")
    options.setdefault("dry_run", False)
    code = run_publish(DASHBOARDS if dashboards is None else dashboards, env=env, **options)
    out, err = capsys.readouterr()
    assert TOKEN not in out + err and PASSWORD not in out + err
    return code, out, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got: {err!r}"
    return lines[0]


def test_first_publish_creates_the_folder_and_every_dashboard(
    grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _publish(capsys, _env(grafana))
    assert (code, err) == (0, "")
    calls = [(r.method, r.path) for r in grafana.requests]
    assert calls[:4] == [
        ("GET", "/api/health"),
        ("GET", "/api/folders/netauto"),
        ("GET", "/api/search"),
        ("POST", "/api/folders"),
    ]
    search = grafana.requests[2]
    assert search.query == {"query": ["NetAuto"], "type": ["dash-folder"]}
    assert grafana.requests[3].body == {"title": "NetAuto", "uid": "netauto"}
    saves = [r for r in grafana.requests if r.path == "/api/dashboards/db"]
    assert len(saves) == len(DASHBOARDS) == 4
    for request, (name, board) in zip(saves, sorted(DASHBOARDS.items()), strict=True):
        assert request.method == "POST"
        assert request.headers["Content-Type"].startswith("application/json")
        body = request.body
        assert set(body) == {"dashboard", "folderUid", "overwrite", "message"}, name
        assert body["folderUid"] == "netauto" and body["overwrite"] is False
        assert body["dashboard"] == {**board, "id": None}
    for request in grafana.requests[1:]:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert set(grafana.state.dashboards) == {d["uid"] for d in DASHBOARDS.values()}
    assert all(d["folderUid"] == "netauto" for d in grafana.state.dashboards.values())
    assert "create 4, update 0, unchanged 0" in out


def test_second_run_writes_nothing(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    assert _publish(capsys, _env(grafana))[0] == 0
    before = len(grafana.requests)
    code, out, _ = _publish(capsys, _env(grafana))
    second = grafana.requests[before:]
    assert code == 0
    assert [r for r in second if r.method != "GET"] == []
    assert sum(1 for r in second if r.path.startswith("/api/dashboards/uid/")) == 4
    assert "create 0, update 0, unchanged 4" in out
    assert all(d["dashboard"]["version"] == 1 for d in grafana.state.dashboards.values())


def test_a_changed_dashboard_is_updated_in_place(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    _publish(capsys, _env(grafana))
    changed = copy.deepcopy(DASHBOARDS)
    name = "runner_overview.json"
    changed[name]["description"] += " Edited."
    before = len(grafana.requests)
    code, out, _ = _publish(capsys, _env(grafana), changed)
    writes = [r for r in grafana.requests[before:] if r.method != "GET"]
    assert code == 0 and len(writes) == 1
    body = writes[0].body
    uid = changed[name]["uid"]
    assert body["dashboard"]["uid"] == uid and body["overwrite"] is False
    assert body["dashboard"]["version"] == 1, "an update carries the version it read"
    assert isinstance(body["dashboard"]["id"], int)
    stored = grafana.state.dashboards[uid]["dashboard"]
    assert stored["description"].endswith("Edited.") and stored["version"] == 2
    assert "create 0, update 1, unchanged 3" in out
    assert f"update         {uid}" in out and out.count("[description]") == 1


def test_dry_run_reads_but_writes_nothing(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _publish(capsys, _env(grafana), dry_run=True)
    assert code == 0
    assert grafana.writes() == []
    assert "would create" in out and "would create 4" in out
    assert grafana.state.folders == {} and grafana.state.dashboards == {}


def test_basic_auth_from_user_and_password(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"GRAFANA_URL": grafana.url, "GRAFANA_USER": "admin", "GRAFANA_PASSWORD": PASSWORD}
    assert _publish(capsys, env)[0] == 0
    expected = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert {r.headers.get("Authorization") for r in grafana.requests[1:]} == {expected}


def test_401_names_the_credential_never_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    server = FakeGrafana(token="another-token", user="admin", password="another-password")
    try:
        code, _, err = _publish(capsys, {"GRAFANA_URL": server.url, "GRAFANA_TOKEN": TOKEN})
        line = _one_line(err)
        assert code == 1
        assert "401" in line and "GRAFANA_TOKEN" in line and server.url in line
        env = {"GRAFANA_URL": server.url, "GRAFANA_USER": "admin", "GRAFANA_PASSWORD": PASSWORD}
        code, _, err = _publish(capsys, env)
        assert code == 1 and "GRAFANA_USER=admin" in _one_line(err) and "401" in err
        assert server.writes() == []
    finally:
        server.close()


def test_403_says_which_credential_may_not_write(capsys: pytest.CaptureFixture[str]) -> None:
    server = FakeGrafana(token=TOKEN, can_write=False)
    try:
        code, _, err = _publish(capsys, {"GRAFANA_URL": server.url, "GRAFANA_TOKEN": TOKEN})
        line = _one_line(err)
        assert code == 1 and "403" in line and "GRAFANA_TOKEN" in line and "create folder" in line
    finally:
        server.close()


def test_unreachable_grafana_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, _, err = _publish(capsys, {"GRAFANA_URL": url, "GRAFANA_TOKEN": TOKEN})
    line = _one_line(err)
    assert code == 1 and line.endswith("is unreachable (connection refused)") and url in line


def test_missing_configuration_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _publish(capsys, {})
    assert code == 2 and "GRAFANA_URL is not set" in _one_line(err)
    code, _, err = _publish(capsys, {"GRAFANA_URL": "http://127.0.0.1:1"})
    assert code == 2 and "GRAFANA_TOKEN" in _one_line(err)
    code, _, err = _publish(capsys, {"GRAFANA_URL": "http://admin:" + PASSWORD + "@127.0.0.1:1", "GRAFANA_TOKEN": "x"})
    assert code == 2 and "must not hold credentials" in _one_line(err)


def test_folder_conflict(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    grafana.state.folders["netauto"] = {"id": 7, "uid": "netauto", "title": "Somebody else's", "url": "/x"}
    code, _, err = _publish(capsys, _env(grafana))
    line = _one_line(err)
    assert code == 1 and line.endswith("choose another --folder") and "folder conflict" in line
    assert grafana.writes() == []


def test_existing_folder_with_the_title_is_reused(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    grafana.state.folders["abc123"] = {"id": 7, "uid": "abc123", "title": "NetAuto", "url": "/x"}
    assert _publish(capsys, _env(grafana))[0] == 0
    assert [r.path for r in grafana.writes()] == ["/api/dashboards/db"] * 4
    assert {d["folderUid"] for d in grafana.state.dashboards.values()} == {"abc123"}


def test_uid_conflicts_are_one_line_each_and_the_rest_is_published(
    grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, liveview = DASHBOARDS["runner_overview.json"], DASHBOARDS["liveview_health.json"]
    grafana.state.dashboards[runner["uid"]] = {
        "dashboard": {**runner, "id": 50, "version": 3},
        "folderUid": "",
        "provisioned": True,
    }
    grafana.state.dashboards[liveview["uid"]] = {
        "dashboard": {"uid": liveview["uid"], "title": "Hand-made", "tags": [], "id": 51, "version": 1},
        "folderUid": "",
        "provisioned": False,
    }
    code, out, err = _publish(capsys, _env(grafana))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 2
    assert "uid conflict" in lines[0] and "Hand-made" in lines[0]
    assert "uid conflict" in lines[1] and "provisioned" in lines[1] and "--app" in lines[1]
    assert "create 2" in out and "2 conflict(s)" in out
    # --app gives every dashboard its own uid: no conflict, nothing of the others touched
    code, _, err = _publish(capsys, _env(grafana), app="demo", folder="NetAuto demo")
    assert (code, err) == (0, "")
    assert grafana.state.dashboards[runner["uid"]]["dashboard"]["version"] == 3


def test_same_title_in_the_folder_is_a_conflict(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    assert _publish(capsys, _env(grafana))[0] == 0
    renamed = copy.deepcopy(DASHBOARDS)
    renamed["runner_overview.json"]["uid"] = "netauto-runner-renamed"
    code, _, err = _publish(capsys, _env(grafana), renamed)
    line = _one_line(err)
    assert code == 1 and line.startswith("netauto-statsd dashboards --publish: conflict: save dashboard")
    assert "same name" in line


def test_nothing_secret_is_logged_or_written(
    grafana: FakeGrafana,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    _publish(capsys, _env(grafana))
    _publish(capsys, {"GRAFANA_URL": grafana.url, "GRAFANA_TOKEN": "wrong-" + TOKEN})
    assert TOKEN not in caplog.text
    assert os.listdir(tmp_path) == []


def test_stable_uids_and_datasource() -> None:
    assert published_uid("netauto-runner-overview", None) == "netauto-runner-overview"
    assert published_uid("netauto-runner-overview", "Billing API") == "billing-api-runner-overview"
    long = published_uid("netauto-runner-overview", "a-very-long-application-name")
    assert len(long) == MAX_UID and long == published_uid("netauto-runner-overview", "a-very-long-application-name")
    boards = prepare(DASHBOARDS, app="demo", datasource_uid="prom-main")
    for name, board in boards.items():
        assert board["uid"] == published_uid(DASHBOARDS[name]["uid"], "demo")
        assert board["title"].endswith(" (demo)") and OWNER_TAG in board["tags"]
        text = str(board)
        assert "netauto-prometheus" not in text and "prom-main" in text
    assert DASHBOARDS["runner_overview.json"]["uid"] == "netauto-runner-overview", "prepare() copies"


def test_cli_publishes_what_the_generator_renders(
    grafana: FakeGrafana, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_module("grafana_foundation_sdk", "pip install 'netauto-statsd[dashboards]'")
    from netauto_statsd.tooling.cli import main

    for key, value in _env(grafana).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GRAFANA_USER", raising=False)
    assert main(["dashboards", "--publish", "--folder", "Ops"]) == 0
    assert main(["dashboards", "--publish", "--folder", "Ops", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "create 4" in out and "unchanged 4" in out and TOKEN not in out
    assert {f["title"] for f in grafana.state.folders.values()} == {"Ops"}
