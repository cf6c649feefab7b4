"""``netauto-statsd report`` from a REAL Prometheus fed with real traffic (Emitter -> statsd_exporter).

Every panel of every committed dashboard must come out as a PNG with values
plotted (counted per panel in report.json), all shown by one index.html; a
selection that matches nothing must show "No data" rather than fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from netauto_statsd.tooling import grafana_vars as gv
from netauto_statsd.tooling.cli import main
from netauto_statsd.tooling.dashboards import DEFAULT_DIR, flat_panels, load_dashboards
from tests.support import ROOT, free_port, require_module
from tests.tooling.grafana.conftest import Stack
from tests.tooling.grafana.traffic import SOURCES, TrafficSource

require_module("matplotlib", "pip install 'netauto-statsd[report]'")

DASHBOARDS = load_dashboards(ROOT / DEFAULT_DIR)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def traffic_source() -> TrafficSource:
    """The synthetic source: it exercises every catalog metric, so every panel must have data."""
    return SOURCES["synthetic"]


def _report(stack: Stack, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(
        [
            "report",
            "--prometheus",
            stack.prometheus.url,
            "--out",
            str(out),
            "--dashboards",
            str(ROOT / DEFAULT_DIR),
            "--range",
            "5m",
            *extra,
        ]
    )
    return code, json.loads((out / "report.json").read_text())


@pytest.mark.exporter
@pytest.mark.prometheus
@pytest.mark.slow
def test_every_panel_has_a_non_empty_chart(stack: Stack, tmp_path: Path) -> None:
    code, sidecar = _report(stack, tmp_path, "--var", f"env={stack.report.env}", "--require-data")
    assert code == 0
    assert sidecar["scrape_interval_s"] == stack.prometheus.interval_s, "asked from Prometheus' config"
    expected = {name: [p["title"] for p in flat_panels(board)] for name, board in DASHBOARDS.items()}
    got = {d["file"]: [p["title"] for p in d["panels"]] for d in sidecar["dashboards"]}
    assert got == expected
    index = (tmp_path / "index.html").read_text()
    failures = []
    for board in sidecar["dashboards"]:
        assert board["variables"]["env"] == stack.report.env
        for panel in board["panels"]:
            where = f"{board['file']} / {panel['title']}"
            png = tmp_path / panel["png"]
            assert png.read_bytes()[:8] == PNG_MAGIC, where
            assert f"src='{panel['png']}'" in index, where
            errors = [t["error"] for t in panel["targets"] if t["error"]]
            if errors or panel["points"] <= 0:
                failures.append(f"{where}: {panel['points']} values plotted {errors}")
            queries = [t["query"] for t in panel["targets"]]
            assert all("$" not in q for q in queries), f"{where}: variable left in {queries}"
    assert not failures, "\n".join(failures)
    assert "no data" not in index


@pytest.mark.exporter
@pytest.mark.prometheus
@pytest.mark.slow
def test_panels_without_data_say_so(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, sidecar = _report(stack, tmp_path, "--var", "env=nowhere", "--require-data")
    assert code == 1, "--require-data: an empty panel fails"
    panels = [p for d in sidecar["dashboards"] for p in d["panels"]]
    empty = [p for p in panels if p["points"] == 0]
    # panels whose every query is filtered by env (and has no `or vector(0)` fallback) must be empty
    filtered = [
        p for p in panels if all('env="nowhere"' in t["query"] and "vector(0)" not in t["query"] for t in p["targets"])
    ]
    assert filtered and all(p in empty for p in filtered)
    for panel in empty:
        assert (tmp_path / panel["png"]).read_bytes()[:8] == PNG_MAGIC
        assert all(t["series"] == 0 and t["error"] is None for t in panel["targets"])
    index = (tmp_path / "index.html").read_text()
    assert index.count("class='no-data'") == len(empty)
    assert f"{len(panels) - len(empty)} with data" in index
    assert capsys.readouterr().out.count("  no data: ") == len(empty)


def test_unreachable_prometheus_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["report", "--prometheus", url, "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreachable" in err[0] and url in err[0]
    assert main(["report", "--prometheus", url, "--out", str(tmp_path), "--range", "soon"]) == 2


def test_variables_resolve_as_grafana_does() -> None:
    assert gv.builtins(300, 1) == {"__interval": "1s", "__rate_interval": "4s", "__range": "300s"}
    assert gv.builtins(3600, 15)["__rate_interval"] == "60s"
    assert gv.builtins(86400, 15)["__interval"] == "87s"
    multi = {"multi": True, "includeAll": True}
    assert gv.all_value({**multi, "allValue": ".*"}, ["a"]) == ".*"
    assert gv.all_value(multi, ["par1", "ams-2.x"]) == "(par1|ams-2\\\\.x)"
    assert gv.format_value({"multi": False}, ["it's"]) == "it\\\\'s"
    assert gv.interpolate('x{a=~"$v", b="${w:raw}"}[[[r]]]', {"v": "1", "w": "2", "r": "3"}) == 'x{a=~"1", b="2"}[3]'
    assert gv.legend("{{le}}", {"le": "0.5"}, "e") == "0.5"
    assert gv.legend("__auto", {"site": "par1", "protocol": "ssh"}, "e") == "protocol=ssh, site=par1"
    assert gv.parse_duration("1m30s") == 90 and gv.parse_duration("500ms") == 0.5
    with pytest.raises(ValueError):
        gv.parse_duration("1 hour")
