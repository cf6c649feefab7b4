"""A small app catalog, built without registering it, and mappings rendered from it for the in-process check tests.

The metrics are plain :class:`~netauto_statsd.catalog.Metric` values (not
declared through ``counter()``/``histogram()``/``gauge()``), so they never join
this test process's registry; ``check``'s functions take them as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from netauto_statsd.catalog import Metric, Tag
from netauto_statsd.tooling.findings import Report
from netauto_statsd.tooling.mapping import DROP_RULE, render_rule
from netauto_statsd.tooling.mapping_lint import Rule, lint_mapping

NAMESPACE = "acme"
APP = "tests.app.metrics"
HITS = Metric("app.hits", "counter", (Tag("view"),), "1", "Hits.", "app_hits_total", module=APP)
LATENCY = Metric(
    "app.latency", "histogram", (Tag("view"),), "seconds", "Latency.", "app_latency_seconds",
    buckets=(0.01, 0.1, 1.0), module=APP,
)  # fmt: skip
SIZE = Metric("app.size", "histogram", (), "bytes", "Size.", "app_size_bytes", buckets=(256.0, 1024.0), module=APP)
LEVEL = Metric("app.level", "gauge", (Tag("view"),), "1", "Level.", "app_level", module=APP)
SESSIONS = Metric(
    "app.sessions", "gauge", (Tag("view"),), "1", "Sessions.", "app_sessions", per_process=True, ttl="2m",
    module=APP,
)  # fmt: skip
METRICS = (HITS, LATENCY, SIZE, LEVEL, SESSIONS)


def mapping_text(metrics: Sequence[Metric] = METRICS, *, before_drop: str = "", drop: bool = True) -> str:
    """The mapping ``metrics`` imply (both wire forms), with ``before_drop`` inserted before the drop rule."""
    lines = ["mappings:"]
    for plain in (False, True):
        for metric in metrics:
            lines += render_rule(metric, NAMESPACE, plain)
    text = "\n".join(lines) + "\n" + before_drop
    return text + ("\n".join(DROP_RULE) + "\n" if drop else "")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yml"
    path.write_text(text)
    return path


def parsed(path: Path) -> tuple[list[Rule], Report]:
    """The rules of ``path`` and the report of its lint."""
    report = Report()
    return lint_mapping(path, report), report
