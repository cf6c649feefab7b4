"""Static charts of dashboard panels (matplotlib, Agg), for ``netauto-statsd report``.

One PNG per panel, drawn as its Grafana panel type would show the same data:
time series as lines, stat as one big number, bar gauge as horizontal bars,
heatmap as per-bucket cells (cumulative ``le`` buckets turned into per-bucket
rates, as Grafana's heatmap format does). A panel without data keeps its frame
and says "No data" in grey in the middle, as Grafana does; a query error is
printed in red instead. Every renderer returns the number of finite values it
plotted, which the report records per panel.

matplotlib is imported only here and only when a chart is drawn (the
``report`` extra); the figure is a plain ``Figure`` on the Agg canvas, so no
global pyplot state and no display are involved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: Legend entries drawn at most (the sidecar still counts every series).
MAX_LEGEND = 8
#: Requirement to install when matplotlib is missing (also the ``report`` extra).
MATPLOTLIB_REQUIREMENT = "matplotlib>=3.8,<4"


class ChartsUnavailableError(RuntimeError):
    """matplotlib is not installed."""


@dataclass
class Series:
    """One series of one target: a name (legend) and its finite points."""

    name: str
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Chart:
    """What to draw for one panel."""

    title: str
    kind: str  # timeseries | stat | bargauge | heatmap
    unit: str
    series: list[Series]
    width: int = 12  # Grafana grid columns (of 24)
    height: int = 8  # Grafana grid rows
    error: str | None = None


def format_value(unit: str, value: float) -> str:
    """A value the way the panel's unit shows it (a small subset of Grafana's unit formats)."""
    if not math.isfinite(value):
        return str(value)
    if unit == "s":
        for limit, scale, suffix in ((1e-3, 1e6, "µs"), (1, 1e3, "ms"), (120, 1, "s"), (7200, 1 / 60, "min")):
            if abs(value) < limit:
                return f"{value * scale:.3g} {suffix}"
        return f"{value / 3600:.3g} h"
    if unit in ("bytes", "Bps"):
        suffix = "/s" if unit == "Bps" else ""
        for power, name in ((4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
            if abs(value) >= 1024**power:
                return f"{value / 1024**power:.3g} {name}{suffix}"
        return f"{value:.3g} B{suffix}"
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    suffix = {"ops": " ops/s", "reqps": " req/s", "cps": " c/s"}.get(unit, "")
    for limit, name in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{name}{suffix}"
    return f"{value:.3g}{suffix}"


def _figure(chart: Chart) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ChartsUnavailableError(
            f"the report needs {MATPLOTLIB_REQUIREMENT}: pip install 'netauto-statsd[report]'"
        ) from exc
    fig = Figure(figsize=(max(3.0, chart.width * 0.5), max(2.0, chart.height * 0.42)), dpi=90, layout="constrained")
    return fig


def _message(ax: Any, text: str, color: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", color=color, fontsize=11, wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _when(times: Sequence[float]) -> list[datetime]:
    return [datetime.fromtimestamp(t, tz=timezone.utc) for t in times]


def _timeseries(ax: Any, chart: Chart) -> int:
    from matplotlib.ticker import FuncFormatter

    points = 0
    for series in chart.series:
        if series.values:
            ax.plot(_when(series.times), series.values, label=series.name, linewidth=1.2)
            points += len(series.values)
    if points:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_value(chart.unit, v)))
        ax.set_ylim(bottom=min(0.0, *(min(s.values) for s in chart.series if s.values)))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(chart.series) > 1 or chart.series[0].name:
            ax.legend(
                *[x[:MAX_LEGEND] for x in ax.get_legend_handles_labels()], fontsize=6, loc="upper left", frameon=False
            )
    return points


def _stat(ax: Any, chart: Chart) -> int:
    values = [s.values[-1] for s in chart.series if s.values]
    if not values:
        return 0
    ax.text(
        0.5, 0.5, format_value(chart.unit, values[0]), ha="center", va="center", fontsize=26, transform=ax.transAxes
    )
    ax.set_axis_off()
    return 1


def _bargauge(ax: Any, chart: Chart) -> int:
    from matplotlib.ticker import FuncFormatter

    bars = sorted(((s.values[-1], s.name) for s in chart.series if s.values), reverse=True)
    if not bars:
        return 0
    ax.barh([name for _, name in bars][::-1], [value for value, _ in bars][::-1], color="#3274d9")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_value(chart.unit, v)))
    ax.tick_params(labelsize=7)
    return len(bars)


def _le(series: Series) -> float:
    raw = series.labels.get("le", series.name)
    try:
        return float(raw)
    except ValueError:
        return math.inf


def _heatmap(ax: Any, chart: Chart) -> int:
    buckets = sorted((s for s in chart.series if s.values), key=_le)
    if not buckets:
        return 0
    times = sorted({t for s in buckets for t in s.times})
    index = {t: i for i, t in enumerate(times)}
    cumulative = [[math.nan] * len(times) for _ in buckets]
    for row, series in enumerate(buckets):
        for t, v in zip(series.times, series.values, strict=True):
            cumulative[row][index[t]] = v
    cells = [
        [max(0.0, cur - (cumulative[row - 1][col] if row else 0.0)) for col, cur in enumerate(cumulative[row])]
        for row in range(len(buckets))
    ]
    ax.pcolormesh(_when(times), range(len(buckets)), cells, cmap="Oranges", shading="nearest")
    ax.set_yticks(range(len(buckets)), [format_value(chart.unit, _le(s)) for s in buckets], fontsize=6)
    ax.tick_params(axis="x", labelsize=7)
    return sum(1 for row in cells for v in row if math.isfinite(v))


RENDERERS = {"timeseries": _timeseries, "stat": _stat, "bargauge": _bargauge, "heatmap": _heatmap}


def render(chart: Chart, path: Path) -> int:
    """Draw ``chart`` into the PNG ``path``; return the number of values plotted (0: "No data").

    Raises:
        ChartsUnavailableError: matplotlib is not installed.
    """
    fig = _figure(chart)
    ax = fig.add_subplot()
    ax.set_title(chart.title, fontsize=10, loc="left")
    if chart.error:
        _message(ax, "Query error\n" + chart.error[:200], "#c4162a")
        points = 0
    else:
        points = RENDERERS.get(chart.kind, _timeseries)(ax, chart)
        if not points:
            _message(ax, "No data", "#8e8e8e")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return points
