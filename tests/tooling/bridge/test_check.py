"""`netauto-statsd check` as operators run it: OK only when every proof ran, one clear line when it cannot run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from netauto_statsd.catalog import all_metrics
from netauto_statsd.tooling.findings import Report
from netauto_statsd.tooling.knobs import lint_knobs
from netauto_statsd.tooling.mapping_lint import lint_mapping
from netauto_statsd.tooling.mapping_update import diff_mapping
from tests.support import MAPPING, ROOT


def run_cli(
    *args: str, cwd: Path = ROOT, path_env: str | None = None, pre: str = ""
) -> subprocess.CompletedProcess[str]:
    """``netauto-statsd ARGS`` in a real subprocess; ``pre`` runs first (e.g. to hide an installed package)."""
    code = f"import sys; {pre or 'pass'}; from netauto_statsd.tooling.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if path_env is not None:
        env["PATH"] = path_env
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def test_the_repo_mapping_satisfies_the_contract_and_its_knobs() -> None:
    diff = diff_mapping(MAPPING, all_metrics(), "netauto")
    assert diff.errors == [], "\n".join(f.render() for f in diff.errors)
    report = Report()
    lint_knobs(str(MAPPING), lint_mapping(MAPPING, report), all_metrics(), report, "netauto")
    assert report.errors == [] and report.warnings == [], report.render()


def test_check_passes_on_the_repo_with_every_proof(exporter_binary: str) -> None:
    done = run_cli("check", "--exporter", exporter_binary, "--strict")
    assert done.returncode == 0, done.stdout + done.stderr
    n = len(all_metrics())
    assert f"{n} metrics x 2 wire format(s), {2 * n} contexts compared sample for sample" in done.stdout
    assert "v0.30.0" in done.stdout  # read from the binary with `go version -m` before sending
    assert done.stdout.rstrip().endswith("check OK: 0 problem(s), 0 warning(s)")


def test_no_plain_proves_dogstatsd_only_and_does_not_flag_the_plain_rules(exporter_binary: str) -> None:
    done = run_cli("check", "--exporter", exporter_binary, "--strict", "--no-plain")
    assert done.returncode == 0, done.stdout
    assert f"{len(all_metrics())} metrics x 1 wire format(s)" in done.stdout
    assert done.stdout.rstrip().endswith("check OK: 0 problem(s), 0 warning(s)")


def test_without_an_exporter_check_is_incomplete_not_ok(tmp_path: Path) -> None:
    done = run_cli("check", path_env="/nonexistent")
    assert done.returncode == 3, done.stdout
    assert "skipped: statsd_exporter not found on PATH (or pass --exporter): --check-config and the live proof" in (
        done.stdout
    )
    assert "check INCOMPLETE" in done.stdout and "check OK" not in done.stdout


def test_offline_says_the_skip_is_intended() -> None:
    done = run_cli("check", "--offline", path_env="/nonexistent")
    assert done.returncode == 0, done.stdout
    assert "check OK: 0 problem(s), 0 warning(s) (offline: skipped proofs above were intended)" in done.stdout


def test_a_missing_dashboards_folder_is_incomplete(exporter_binary: str, tmp_path: Path) -> None:
    done = run_cli("check", "--exporter", exporter_binary, "--dashboards", str(tmp_path / "nope"))
    assert done.returncode == 3, done.stdout
    assert f"skipped: no dashboards folder at {tmp_path / 'nope'}: their queries were not checked" in done.stdout


def test_outside_the_repo_nothing_is_checked_and_it_says_so(tmp_path: Path) -> None:
    done = run_cli("check", "--offline", cwd=tmp_path)
    assert done.returncode == 3, done.stdout
    assert "bridge/statsd_mapping.yml: no mapping file here (run from the repository root" in done.stdout
    assert "check INCOMPLETE: nothing was checked" in done.stdout


def test_an_exporter_that_does_not_exist_is_one_clear_line() -> None:
    done = run_cli("check", "--exporter", "/nonexistent")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "netauto-statsd check: --exporter /nonexistent: no such file "
        "(install it: go install github.com/prometheus/statsd_exporter@v0.30.0)"
    ]


def test_an_exporter_that_is_not_statsd_exporter_is_one_clear_line() -> None:
    done = run_cli("check", "--exporter", "/bin/true")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(
        "netauto-statsd check: --exporter /bin/true: not statsd_exporter (`--version` printed"
    )


def test_a_missing_extra_names_the_pip_command_not_a_traceback() -> None:
    done = run_cli("check", pre="sys.modules['yaml'] = None")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "netauto-statsd check: needs PyYAML (the `check` extra): pip install 'netauto-statsd[check]'"
    ]


def test_without_the_statsd_package_check_says_so_instead_of_false_findings() -> None:
    done = run_cli("check", pre="sys.modules['statsd'] = None")
    assert done.returncode == 2
    assert "did not produce" not in done.stdout
    assert done.stderr.splitlines() == [
        "netauto-statsd check: needs statsd (the `check` extra): pip install 'netauto-statsd[check]' "
        "(or --no-plain to skip the plain-StatsD proof)"
    ]


def test_a_yaml_error_is_reported_once(exporter_binary: str, tmp_path: Path) -> None:
    path = tmp_path / "mapping.yml"
    path.write_text(
        MAPPING.read_text().replace('  - match: "netauto.runner.stop"', '  - match: "netauto.runner.stop', 1)
    )
    done = run_cli("check", "--mapping", str(path), "--exporter", exporter_binary)
    assert done.returncode == 1
    assert done.stdout.count("not valid YAML") == 1, done.stdout
    assert f"{path}:" in done.stdout


def test_the_namespace_follows_the_clients_rule_everywhere() -> None:
    for args in (
        ["catalog", "--namespace", "bad name"],
        ["mapping", "--namespace", "a..b"],
        ["check", "--namespace", "1x"],
    ):
        done = run_cli(*args)
        assert done.returncode == 2, args
        assert "namespace must be dotted identifiers" in done.stderr, done.stderr
    assert run_cli("catalog", "--namespace", "acme.netops").returncode == 0


def test_dashboards_check_outside_the_repo_says_there_is_no_folder(tmp_path: Path) -> None:
    done = run_cli("dashboards", "--check", cwd=tmp_path)
    assert done.returncode == 3
    assert "out of date" not in done.stdout
    assert "grafana/dashboards: no dashboards folder here" in done.stdout
