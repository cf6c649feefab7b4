"""One model of statsd_exporter (netauto_statsd.tooling.exporter): flags, version, and what check says of an old one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netauto_statsd.catalog import all_metrics
from netauto_statsd.tooling import exporter as model
from tests import support
from tests.support import IN_CI, MAPPING, ROOT, require_binary

OLD_EXPORTER = ROOT / ".tools" / "statsd_exporter" / "v0.26.1" / "statsd_exporter"


def old_exporter() -> str:
    """statsd_exporter v0.26.1 as scripts/test caches it (skip on a laptop without it, fail under CI=true)."""
    if os.access(OLD_EXPORTER, os.X_OK):
        return str(OLD_EXPORTER)
    message = f"{OLD_EXPORTER} not found (scripts/test installs the compatibility matrix)"
    if IN_CI:
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


def test_tests_and_tools_share_one_launcher_and_one_free_port() -> None:
    assert support.free_port is model.free_port
    assert issubclass(support.Exporter, model.ThrowawayExporter)


def test_a_throwaway_exporter_runs_dogstatsd_only_on_loopback(exporter_binary: str) -> None:
    with model.ThrowawayExporter(exporter_binary, MAPPING) as exporter:
        cmdline = Path(f"/proc/{exporter.proc.pid}/cmdline").read_bytes().split(b"\0")
        flags = {arg.decode() for arg in cmdline if arg}
        assert set(model.DOGSTATSD_ONLY_FLAGS) <= flags
        assert f"--statsd.listen-udp=127.0.0.1:{exporter.udp_port}" in flags
        assert "--statsd.listen-tcp=" in flags
        assert exporter.self_errors() == dict.fromkeys((*model.SELF_ERRORS, "drop_actions"), 0.0)
    assert not exporter.alive()


def test_the_version_of_a_go_installed_exporter_is_read_before_sending(exporter_binary: str) -> None:
    require_binary("go", "install Go (scripts/test needs it for statsd_exporter)")
    found = model.exporter_version(exporter_binary)
    assert found == model.ExporterVersion("github.com/prometheus/statsd_exporter", "v0.30.0")
    assert found.as_tuple() == (0, 30, 0) and not found.rejects_multi_value()


def test_an_exporter_that_exits_at_once_is_one_clear_error(tmp_path: Path, exporter_binary: str) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("mappings:\n  - match: 'a.*'\n    name: '$$$'\n")
    with pytest.raises(model.ExporterError) as caught:
        model.ThrowawayExporter(exporter_binary, bad)
    message = str(caught.value)
    assert message.startswith(f"{exporter_binary} exited instead of serving /-/ready: ")
    assert "\n" not in message


def test_check_tells_an_operator_running_v0_26_what_is_lost_and_what_to_set() -> None:
    binary = old_exporter()
    env = {k: v for k, v in os.environ.items() if k != "NETAUTO_STATSD_EXPORTER_COMPAT"}
    done = subprocess.run(
        [sys.executable, "-m", "netauto_statsd.tooling.cli", "check", "--exporter", binary],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    where = "bridge/statsd_mapping.yml:0:"
    assert (
        f"{where} {binary} is statsd_exporter v0.26.1: before v0.27.1 it rejects the multi-value lines the client "
        "packs histogram samples into\n"
        "    fix: upgrade the exporter, or set NETAUTO_STATSD_EXPORTER_COMPAT=0.26 in the app's environment (and here)"
    ) in done.stdout
    assert (
        f"{where} the exporter rejected lines (malformed_value): it does not accept the DogStatsD multi-value lines "
        "(`name:v1:v2:...|h`) the client packs histogram samples into, accepted since v0.27.1 (this one is v0.26.1); "
        "every packed duration and size is lost (12 histogram context(s) lost: dogstatsd:runner.duration, "
    ) in done.stdout
    assert (
        "    fix: upgrade statsd_exporter to v0.30.0 (>= v0.27.1), or set NETAUTO_STATSD_EXPORTER_COMPAT=0.26 "
        "in the app's environment (one value per line)"
    ) in done.stdout


def test_with_the_compat_setting_every_sample_reaches_v0_26() -> None:
    from netauto_statsd.config import Settings

    if "exporter_compat" not in Settings.__dataclass_fields__:
        pytest.skip("NETAUTO_STATSD_EXPORTER_COMPAT is added to config by the exporter-matrix work (issue 17.2)")
    binary = old_exporter()
    done = subprocess.run(
        [sys.executable, "-m", "netauto_statsd.tooling.cli", "check", "--exporter", binary],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "NETAUTO_STATSD_EXPORTER_COMPAT": "0.26"},
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    assert f"v0.26.1: {len(all_metrics())} metrics x 2 wire format(s)" in done.stdout
