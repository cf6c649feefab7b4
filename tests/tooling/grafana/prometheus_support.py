"""A real Prometheus for tests: the repo's bridge/prometheus.yml and rules, on free loopback ports.

The config is copied to a temp dir with scrape targets rewritten to the test's
processes, a 1 s scrape and rule-evaluation interval, and the rule files
pointed at bridge/rules/ by absolute path. Storage lives in the temp dir.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT, Exporter, Process, free_port, http_get, require_binary, wait_until

PROMETHEUS_CONFIG = ROOT / "bridge" / "prometheus.yml"
RULES_DIR = ROOT / "bridge" / "rules"
PROMETHEUS_HOW = "apt-get install prometheus (Debian package; gives prometheus and promtool)"
#: The scrape and evaluation interval tests run with (production: 15 s).
TEST_INTERVAL_S = 1


def require_prometheus() -> str:
    """Path of the prometheus binary (skip on a laptop without it, fail under CI=true)."""
    return require_binary("prometheus", PROMETHEUS_HOW)


def require_promtool() -> str:
    """Path of promtool (skip on a laptop without it, fail under CI=true)."""
    return require_binary("promtool", PROMETHEUS_HOW)


class PrometheusError(AssertionError):
    """Prometheus answered a query with an error (bad PromQL, unknown function...)."""


def rewrite_config(
    source: Path, targets: Mapping[str, Sequence[str]], self_address: str, interval_s: int = TEST_INTERVAL_S
) -> dict[str, Any]:
    """Return ``source`` with every job's targets replaced and test-speed intervals.

    Args:
        source: the Prometheus config to copy (bridge/prometheus.yml).
        targets: job name -> ``host:port`` targets; every job except ``prometheus``
            must be given (a job the test forgot would silently scrape nothing).
        self_address: this Prometheus' own ``host:port`` for the ``prometheus`` job.
        interval_s: scrape and evaluation interval.
    """
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    config["global"].update(
        scrape_interval=f"{interval_s}s", scrape_timeout=f"{interval_s}s", evaluation_interval=f"{interval_s}s"
    )
    config["rule_files"] = [str((source.parent / pattern).resolve()) for pattern in config.get("rule_files", [])]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    unknown = set(targets) - jobs
    if unknown:
        raise KeyError(f"no scrape job named {sorted(unknown)} in {source}; jobs: {sorted(jobs)}")
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name == "prometheus":
            addresses = [self_address]
        elif name in targets:
            addresses = list(targets[name])
        else:
            raise KeyError(f"test gave no targets for scrape job {name!r}")
        job["static_configs"] = [{"targets": addresses}]
    return config


class Prometheus:
    """A real Prometheus with the repo's config (targets rewritten) and alert rules."""

    def __init__(
        self,
        binary: str,
        tmp: Path,
        targets: Mapping[str, Sequence[str]],
        config: Path = PROMETHEUS_CONFIG,
        interval_s: int = TEST_INTERVAL_S,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.interval_s = interval_s
        rendered = rewrite_config(config, targets, f"127.0.0.1:{self.port}", interval_s)
        self.config_path = tmp / f"prometheus-{self.port}.yml"
        self.config_path.write_text(yaml.safe_dump(rendered, sort_keys=False))
        args = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={tmp / f'prometheus-data-{self.port}'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self.process = Process(args, tmp / f"prometheus-{self.port}.log")
        try:
            wait_until(self._ready, 30, "prometheus /-/ready")
        except AssertionError:
            self.process.stop()
            raise AssertionError(f"prometheus did not start:\n{self.process.log()}") from None

    def _ready(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"prometheus exited:\n{self.process.log()}")
        return "Ready" in http_get(f"{self.url}/-/ready")

    def stop(self) -> None:
        """Stop the process (its data dir goes with the test's tmp dir)."""
        self.process.stop()

    # ------------------------------------------------------------------ HTTP API
    def api(self, path: str, params: Mapping[str, str | Sequence[str]] | None = None, method: str = "POST") -> Any:
        """Call ``/api/v1/<path>``; return ``data``. Raises PrometheusError with Prometheus' message."""
        encoded = urllib.parse.urlencode(params or {}, doseq=True)
        if method == "GET":
            request = urllib.request.Request(f"{self.url}/api/v1/{path}?{encoded}", method="GET")
        else:
            request = urllib.request.Request(f"{self.url}/api/v1/{path}", data=encoded.encode(), method="POST")
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read())
            except ValueError:
                raise PrometheusError(f"{path}: HTTP {exc.code}") from exc
        if payload.get("status") != "success":
            raise PrometheusError(f"{path}: {payload.get('errorType')}: {payload.get('error')}")
        return payload["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns the result vector (scalars become one unlabelled sample)."""
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        data = self.api("query", params)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[dict[str, Any]]:
        """Range query; returns the result matrix."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s}s"}
        return list(self.api("query_range", params)["result"])

    def label_values(self, label: str, match: str, start: float, end: float) -> list[str]:
        """Values of ``label`` on series matching ``match`` (what Grafana's label_values() asks)."""
        params = {"match[]": [match], "start": f"{start:.3f}", "end": f"{end:.3f}"}
        return list(self.api(f"label/{urllib.parse.quote(label)}/values", params, method="GET"))

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule, each with its group name under ``group``."""
        out = []
        for group in self.api("rules", method="GET")["groups"]:
            for rule in group["rules"]:
                out.append({**rule, "group": group["name"]})
        return out

    def alerts(self) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts."""
        return list(self.api("alerts", method="GET")["alerts"])

    # ------------------------------------------------------------------ waiting
    def scrape_count(self, job: str) -> int:
        """Scrapes of ``job`` stored so far (from its ``up`` series over the last 10 min)."""
        result = self.query(f'sum(count_over_time(up{{job="{job}"}}[10m]))')
        return int(float(result[0]["value"][1])) if result else 0

    def wait_for_scrapes(self, job: str, count: int = 1, timeout: float = 15.0) -> None:
        """Block until ``job`` has been scraped ``count`` more times (polls; never sleeps blindly)."""
        target = self.scrape_count(job) + count
        wait_until(lambda: self.scrape_count(job) >= target, timeout, f"{count} more scrape(s) of {job}")

    def wait_until_ingested(self, exporter: Exporter, prefix: str = "netauto_", timeout: float = 20.0) -> None:
        """Block until every ``prefix`` series the exporter exposes is in Prometheus with the same value."""

        def totals_match() -> bool:
            expected: dict[str, tuple[int, float]] = {}
            for name, _labels, value in exporter.samples(prefix):
                count, total = expected.get(name, (0, 0.0))
                expected[name] = (count + 1, total + value)
            selector = f'{{__name__=~"{prefix}.+"}}'
            counts = {
                r["metric"]["__name__"]: int(float(r["value"][1]))
                for r in self.query(f"count by (__name__) ({selector})")
            }
            sums = {
                r["metric"]["__name__"]: float(r["value"][1]) for r in self.query(f"sum by (__name__) ({selector})")
            }
            return bool(expected) and all(
                counts.get(name) == count and math.isclose(sums.get(name, math.nan), total, rel_tol=1e-9)
                for name, (count, total) in expected.items()
            )

        wait_until(totals_match, timeout, f"Prometheus to hold every {prefix}* series of the exporter")


def finite_values(series: Sequence[Mapping[str, Any]]) -> int:
    """Number of finite sample values in an instant vector or range matrix."""
    count = 0
    for s in series:
        points = s.get("values") or ([s["value"]] if "value" in s else [])
        count += sum(1 for _, v in points if math.isfinite(float(v)))
    return count
