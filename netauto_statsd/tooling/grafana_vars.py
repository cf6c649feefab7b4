"""What Grafana does to a dashboard query before Prometheus sees it, re-done without Grafana.

Used by ``netauto-statsd report`` to run every panel query the way a Grafana
would show it. The rules follow Grafana's Prometheus datasource
(``interpolateQueryExpr``, ``prometheusRegularEscape``,
``prometheusSpecialRegexEscape``) and its global variables (``$__interval``,
``$__rate_interval``, ``$__range``).

Example:
    >>> values = builtins(3600, 15)
    >>> values["__rate_interval"]
    '60s'
    >>> interpolate('rate(x{env="$env"}[$__rate_interval])', {**values, "env": "prod"})
    'rate(x{env="prod"}[60s])'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")
_REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")
#: Grafana's default "max data points" of a panel query.
MAX_DATA_POINTS = 1000


def rate_interval(interval_s: float, scrape_s: float) -> float:
    """``$__rate_interval``: max(``$__interval`` + scrape interval, 4 x scrape interval)."""
    return max(interval_s + scrape_s, 4 * scrape_s)


def interval(range_s: float, scrape_s: float, max_points: int = MAX_DATA_POINTS) -> float:
    """``$__interval``: range / max data points, never below the scrape interval."""
    return max(range_s / max_points, scrape_s)


def duration(seconds: float) -> str:
    """A Prometheus duration in whole seconds, rounded up (``12.2`` -> ``13s``)."""
    return f"{max(1, math.ceil(seconds))}s"


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``15s``, ``1m30s``, ``2h`` or ``500ms``.

    Raises:
        ValueError: not a duration.
    """
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r} (e.g. 15s, 5m, 1h)")
    return sum(float(n) * units[u] for n, u in parts)


def regular_escape(value: str) -> str:
    """Single-value variable (no multi, no All): backslashes and quotes only."""
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def regex_escape(value: str) -> str:
    """Multi-value / All variable: every regex metacharacter escaped, inside a PromQL string."""
    value = value.replace("\\", "\\\\\\\\")
    return _REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(), value)


def format_value(variable: Mapping[str, Any], values: Sequence[str]) -> str:
    """The text Grafana puts in place of ``$name`` for the selected ``values``."""
    if not variable.get("multi") and not variable.get("includeAll"):
        return regular_escape(values[0])
    escaped = [regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def all_value(variable: Mapping[str, Any], options: Sequence[str]) -> str:
    """What "All" becomes: the variable's custom all value, else every option as a regex alternation."""
    custom = variable.get("allValue")
    return str(custom) if custom else format_value({**variable, "multi": True}, list(options))


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


def legend(template: str, labels: Mapping[str, str], expr: str) -> str:
    """A series name as Grafana's legend would show it (``{{label}}`` templates; ``__auto``)."""
    if template and template != "__auto":
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if not shown:
        return labels.get("__name__", expr if len(expr) <= 60 else expr[:57] + "...")
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
