"""`mapping --update` adds what the catalog needs and keeps every ops edit; `--diff` names what is missing.

App catalogs are loaded in subprocesses (as users run the tools), so their
declarations never join this test process's registry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netauto_statsd.catalog import all_metrics
from netauto_statsd.tooling.mapping_update import update_mapping
from tests.support import MAPPING, ROOT
from tests.tooling.bridge.edits import DROP_COMMENT, TEAM_RULE, Edit, edited
from tests.tooling.bridge.test_operator_edits import OPERATOR_EDITS

APP = ROOT / "examples" / "config_push"
APP_MODULE = "config_push.metrics"


def tool(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "netauto_statsd.tooling.cli", *args]
    path = os.pathsep.join([str(APP), str(ROOT)])
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": path, **(env or {})},
        timeout=120,
    )  # fmt: skip


def test_update_on_a_current_mapping_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    shutil.copy(MAPPING, path)
    assert update_mapping(path, all_metrics(), "netauto") == []
    assert path.read_bytes() == MAPPING.read_bytes()


def test_update_adds_both_wire_forms_before_the_drop_rule_and_keeps_every_ops_edit(tmp_path: Path) -> None:
    path = edited(tmp_path, *OPERATOR_EDITS.values())
    before = path.read_text()
    done = tool("mapping", "--catalog", APP_MODULE, "--update", str(path))
    assert done.returncode == 0, done.stderr
    added = [line.rsplit(" ", 1)[1] for line in done.stdout.splitlines() if "added rule for" in line]
    assert added == [
        "netauto.config_push.pushes",
        "netauto.config_push.pushes.*.*.*.*",
        "netauto.config_push.duration",
        "netauto.config_push.duration.*.*.*.*",
        "netauto.config_push.pending",
        "netauto.config_push.pending.*.*.*.*",
    ]
    after = path.read_text()
    # every line of the edited file is still there, in order; the new rules sit just before the drop rule
    head, tail = before.split(TEAM_RULE + DROP_COMMENT)
    assert after.startswith(head + TEAM_RULE) and after.endswith(DROP_COMMENT + tail)
    inserted = after[len(head + TEAM_RULE) : len(after) - len(DROP_COMMENT + tail)]
    assert inserted.startswith(
        "  # --- config_push.metrics (added by `netauto-statsd mapping --update`: review buckets, ttl, help) ---\n"
        '  - match: "netauto.config_push.pushes"\n'
    )
    assert inserted.count("  - match: ") == 6 and "ttl: 2m" in inserted
    # running it again is a no-op, and the result satisfies the contract
    again = tool("mapping", "--catalog", APP_MODULE, "--update", str(path))
    assert again.stdout.splitlines() == [f"{path}: 0 rule(s) added; every other line unchanged"]
    assert path.read_text() == after
    diff = tool("mapping", "--catalog", APP_MODULE, "--diff", str(path))
    assert diff.returncode == 0 and diff.stdout.splitlines() == [f"{path}: 0 difference(s) from the contract"]


def test_diff_names_what_the_file_lacks_for_the_app(tmp_path: Path) -> None:
    done = tool("mapping", "--catalog", APP_MODULE, "--diff", str(MAPPING))
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == f"{MAPPING}: 6 difference(s) from the contract"
    assert (
        "catalog metric `config_push.duration` (plain StatsD `netauto.config_push.duration.*.*.*.*`) is not mapped"
        in (done.stdout)
    )


@pytest.mark.parametrize("how", ["--catalog", "NETAUTO_STATSD_CATALOG", "pyproject.toml"])
def test_the_app_catalog_is_read_three_ways(how: str, tmp_path: Path) -> None:
    args, env, cwd = ["catalog", "--json"], {}, tmp_path
    if how == "--catalog":
        args += ["--catalog", APP_MODULE]
    elif how == "NETAUTO_STATSD_CATALOG":
        env = {"NETAUTO_STATSD_CATALOG": f" {APP_MODULE} ,"}
    else:
        cwd = APP
    done = tool(*args, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    assert '"module": "config_push.metrics"' in done.stdout
    assert done.stdout.count('"name": "netauto.config_push.') == 3


def test_a_catalog_module_that_cannot_be_imported_is_one_clear_line() -> None:
    done = tool("check", "--catalog", "no_such_app.metrics", "--offline")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "netauto-statsd check: cannot import catalog module 'no_such_app.metrics': "
        "ModuleNotFoundError: No module named 'no_such_app'"
    ]


def test_an_unmapped_app_metric_names_the_command_with_its_catalog(exporter_binary: str) -> None:
    done = tool("check", "--catalog", APP_MODULE, "--exporter", exporter_binary)
    assert done.returncode == 1
    assert (
        f"    fix: run `netauto-statsd mapping --catalog {APP_MODULE} --update bridge/statsd_mapping.yml` "
        "(adds its rule before the final drop rule)"
    ) in done.stdout


def test_an_app_contract_finding_points_at_the_app_module(tmp_path: Path, exporter_binary: str) -> None:
    path = tmp_path / "m.yml"
    shutil.copy(MAPPING, path)
    assert tool("mapping", "--catalog", APP_MODULE, "--update", str(path)).returncode == 0
    path.write_text(path.read_text().replace('"netauto_config_pushes_total"', '"netauto_config_push_total"', 1))
    done = tool("check", "--catalog", APP_MODULE, "--mapping", str(path), "--exporter", exporter_binary)
    assert done.returncode == 1
    assert (
        "`config_push.pushes` (DogStatsD) becomes `netauto_config_push_total`, the catalog declares "
        "`netauto_config_pushes_total`\n    fix: restore this rule to the contract; the contract is declared in "
        "`config_push.metrics` (change it there, and the dashboards, to change it)"
    ) in done.stdout


def test_update_refuses_a_file_that_does_not_parse(tmp_path: Path) -> None:
    path = edited(tmp_path, Edit('  - match: "netauto.runner.stop"', '  - match: "netauto.runner.stop'))
    done = tool("mapping", "--update", str(path))
    assert done.returncode == 1
    assert done.stderr.startswith(f"netauto-statsd mapping: {path}:")
    assert "not valid YAML" in done.stderr
