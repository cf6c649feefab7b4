"""What Grafana does to a dashboard query before Prometheus sees it, re-done for tests.

Grafana cannot run here, so the end-to-end test interpolates panel queries the
way Grafana's Prometheus datasource does (public/app/plugins/datasource/prometheus:
``interpolateQueryExpr``, ``prometheusRegularEscape``, ``prometheusSpecialRegexEscape``)
and runs them through a real Prometheus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")
_REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")


def rate_interval(interval_s: float, scrape_s: float) -> float:
    """Grafana's ``$__rate_interval``: max(``$__interval`` + scrape interval, 4 x scrape interval)."""
    return max(interval_s + scrape_s, 4 * scrape_s)


def interval(range_s: float, scrape_s: float, max_points: int = 1000) -> float:
    """Grafana's ``$__interval``: range / max data points, never below the scrape interval."""
    return max(range_s / max_points, scrape_s)


def duration(seconds: float) -> str:
    """A Prometheus duration in whole seconds, rounded up (``12.2`` -> ``13s``)."""
    return f"{max(1, math.ceil(seconds))}s"


def regular_escape(value: str) -> str:
    """Single-value variable (no multi, no All): backslashes and quotes only."""
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def regex_escape(value: str) -> str:
    """Multi-value / All variable: every regex metacharacter escaped, inside a PromQL string."""
    value = value.replace("\\", "\\\\\\\\")
    return _REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(), value)


def format_value(variable: Mapping[str, Any], values: list[str]) -> str:
    """The text Grafana puts in place of ``$name`` for the selected ``values``."""
    if not variable.get("multi") and not variable.get("includeAll"):
        return regular_escape(values[0])
    escaped = [regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(expr: str, values: Mapping[str, str]) -> str:
    """Replace ``$name``, ``${name}``, ``${name:fmt}`` and ``[[name]]``; unknown names raise KeyError."""

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            raise KeyError(f"query uses undefined variable ${name}: {expr}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def builtins(range_s: float, scrape_s: float) -> dict[str, str]:
    """Grafana's global variables for a dashboard time range of ``range_s`` seconds."""
    step = interval(range_s, scrape_s)
    return {
        "__interval": duration(step),
        "__rate_interval": duration(rate_interval(step, scrape_s)),
        "__range": duration(range_s),
    }
