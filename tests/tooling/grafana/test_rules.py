"""Alert rules and Prometheus config: promtool checks, promtool unit tests, and house rules."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from netauto_statsd.tooling.dashboards import DEFAULT_DIR, load_dashboards
from netauto_statsd.tooling.dashboards.queries import known_series
from netauto_statsd.tooling.promql import problems
from tests.support import ROOT

BRIDGE = ROOT / "bridge"
RULE_FILES = sorted((BRIDGE / "rules").glob("*.yml"))
RULE_TESTS = sorted((BRIDGE / "rules" / "tests").glob("*.yml"))
DOC = ROOT / "docs" / "dashboards.md"

pytestmark = pytest.mark.prometheus


def _alerts() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def _promtool(promtool: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_promtool_check_rules(promtool_binary: str) -> None:
    done = _promtool(promtool_binary, "check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_check_config(promtool_binary: str) -> None:
    """The config and the rule files it globs (rules/*.yml, relative to it)."""
    done = _promtool(promtool_binary, "check", "config", str(BRIDGE / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(RULE_FILES)} rule files found" in done.stdout


def test_promtool_test_rules(promtool_binary: str) -> None:
    done = _promtool(promtool_binary, "test", "rules", *map(str, RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_catch_a_wrong_threshold(promtool_binary: str, tmp_path: Path) -> None:
    """The promtool tests are not vacuous: summing the queue gauge instead of max-ing it fails them."""
    rules = tmp_path / "rules"
    shutil.copytree(BRIDGE / "rules", rules)
    path = rules / "netauto.yml"
    text = path.read_text()
    broken = text.replace(
        'max by (env, queue) (netauto_rq_queue_jobs{state="queued"}) > 100',
        'sum by (env, queue) (netauto_rq_queue_jobs{state="queued"}) > 100',
    )
    assert broken != text
    path.write_text(broken)
    done = _promtool(promtool_binary, "test", "rules", str(rules / "tests" / "netauto_test.yml"))
    assert done.returncode != 0
    assert "NetautoRQBacklogHigh" in done.stdout + done.stderr


@pytest.mark.parametrize("rule", _alerts(), ids=lambda r: r["alert"])
def test_alert_house_rules(rule: dict[str, Any]) -> None:
    """A `for:`, a severity, a summary and a runbook that points at a real section of the docs."""
    assert rule.get("for"), "an alert without `for:` pages on every blip"
    assert rule["labels"]["severity"] in {"info", "warning", "critical"}
    annotations = rule["annotations"]
    assert annotations["summary"]
    anchor = f"docs/dashboards.md#{rule['alert'].lower()}"
    assert anchor in annotations["runbook"], f"runbook must link {anchor}"
    assert f"### {rule['alert']}" in DOC.read_text(), f"docs/dashboards.md has no section for {rule['alert']}"
    uids = {d["uid"] for d in load_dashboards(ROOT / DEFAULT_DIR).values()}
    assert annotations["dashboard"] in uids


@pytest.mark.parametrize("rule", _alerts(), ids=lambda r: r["alert"])
def test_alert_reads_only_known_series(rule: dict[str, Any]) -> None:
    assert problems(rule["expr"], known_series()) == []


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - fires == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_exporter_job_name_matches_dashboards_and_rules() -> None:
    """`up{job="statsd-exporter"}` in panels and alerts must name the scrape job of prometheus.yml."""
    jobs = {job["job_name"] for job in yaml.safe_load((BRIDGE / "prometheus.yml").read_text())["scrape_configs"]}
    texts = [p.read_text() for p in RULE_FILES] + [p.read_text() for p in sorted((ROOT / DEFAULT_DIR).glob("*.json"))]
    used = {m for text in texts for m in re.findall(r'job=\\?"([^"\\]+)', text)}
    assert used and used <= jobs
