"""``netauto-statsd catalog`` run as a real subprocess through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netauto_statsd import catalog
from netauto_statsd.wire.base import plain_pattern

SCRIPT = Path(sys.executable).parent / "netauto-statsd"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"console script missing: {SCRIPT} (pip install -e .)"
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_catalog_json_is_the_catalog() -> None:
    result = cli("catalog", "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    assert [row["name"] for row in rows] == [f"netauto.{m.name}" for m in catalog.METRICS]
    for row, metric in zip(rows, catalog.METRICS, strict=True):
        assert row["type"] == metric.type
        assert row["unit"] == metric.unit
        assert row["help"] == metric.help
        assert row["prometheus_name"] == metric.prometheus_name
        assert [t["key"] for t in row["tags"]] == list(metric.tag_keys)
        assert [t["values"] for t in row["tags"]] == [list(t.values) if t.values else None for t in metric.tags]
        assert row["constant_tags"] == ["env", "service"]
        assert row["labels"] == sorted(
            [*metric.tag_keys, "env", "service", *(["process"] if metric.per_process else [])]
        )
        assert row["buckets"] == (list(metric.buckets) or None)
        assert row["max_combinations"] == metric.max_combinations
        assert row["per_process"] is metric.per_process
        assert row["ttl"] == (metric.ttl or None)
        assert row["plain_statsd"] == plain_pattern(metric)


def test_catalog_json_honours_the_namespace() -> None:
    rows = json.loads(cli("catalog", "--json", "--namespace", "acme.netops").stdout)
    assert {row["name"] for row in rows} == {f"acme.netops.{m.name}" for m in catalog.METRICS}
    assert all(row["plain_statsd"].startswith("acme.netops.") for row in rows)


def test_catalog_table_lists_every_metric_with_its_series_and_tags() -> None:
    result = cli("catalog")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 * len(catalog.METRICS)
    for metric, head, detail in zip(catalog.METRICS, lines[::2], lines[1::2], strict=True):
        assert head.split() == [f"netauto.{metric.name}", metric.type, metric.unit, metric.prometheus_name]
        assert detail.strip().startswith("tags: ")
        for key in metric.tag_keys:
            assert key in detail
        assert detail.endswith(metric.help)


@pytest.mark.parametrize("args", [["bogus"], ["catalog", "--bogus"], []])
def test_bad_usage_exits_2_with_usage_on_stderr(args: list[str]) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage: netauto-statsd" in result.stderr
