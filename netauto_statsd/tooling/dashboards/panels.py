"""Panel, variable and dashboard builders on top of grafana-foundation-sdk.

Small, opinionated wrappers: every panel gets the fixed datasource uid, a unit,
a description (ours, then the catalog help of each netauto series it reads),
and an explicit id so the generated JSON is stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge, common, heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

from netauto_statsd import catalog
from netauto_statsd.annotations import LIFECYCLE_TAGS
from netauto_statsd.tooling.dashboards.grafana_model import DATASOURCE_UID, UNITS
from netauto_statsd.tooling.dashboards.queries import Scope, label_values
from netauto_statsd.tooling.promql import references

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

#: The panel builders a row may hold (each has ``.id()``).
PanelBuilder = timeseries.Panel | stat.Panel | bargauge.Panel | heatmap.Panel

_SERIES_HELP = {series: m.help for m in catalog.METRICS for series in catalog.exposed_series(m)}


@dataclass(frozen=True)
class Q:
    """One panel target: a PromQL expression and its legend."""

    expr: str
    legend: str = ""


def describe(text: str, targets: Sequence[Q]) -> str:
    """``text`` plus the catalog help of every netauto series the targets read."""
    seen: dict[str, str] = {}
    for target in targets:
        for series in sorted(references(target.expr).metrics):
            if series in _SERIES_HELP:
                base = series.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
                seen.setdefault(base, _SERIES_HELP[series])
    if not seen:
        return text
    return text + "\n\nSeries: " + "; ".join(f"{name} ({line.rstrip('.')})" for name, line in seen.items())


def _target(q: Q, ref: str, *, instant: bool = False, fmt: pm.PromQueryFormat | None = None) -> prometheus.Dataquery:
    built = prometheus.Dataquery().expr(q.expr).ref_id(ref).datasource(DATASOURCE).legend_format(q.legend or "__auto")
    built = built.instant() if instant else built.range()
    if fmt is not None:
        built = built.format(fmt)
    return built


def _refs(
    targets: Sequence[Q], *, instant: bool = False, fmt: pm.PromQueryFormat | None = None
) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    """Targets A, B, C... in order."""
    return [_target(q, chr(ord("A") + i), instant=instant, fmt=fmt) for i, q in enumerate(targets)]


def _check_unit(unit: str) -> str:
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r} is not one of {sorted(UNITS)}")
    return unit


def graph(
    title: str,
    text: str,
    unit: str,
    targets: Sequence[Q],
    *,
    width: int = 12,
    height: int = 8,
    max_: float | None = None,
) -> timeseries.Panel:
    """A time series panel, legend as a table with mean and last values."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(describe(text, targets))
        .datasource(DATASOURCE)
        .unit(_check_unit(unit))
        .min(0)
        .span(width)
        .height(height)
        .fill_opacity(10)
        .legend(
            common.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "lastNotNull"])
        )
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
        .targets(_refs(targets))
    )
    if max_ is not None:
        panel = panel.max(max_)
    return panel


def single(title: str, text: str, unit: str, q: Q, *, width: int = 6, height: int = 4) -> stat.Panel:
    """A stat panel showing one instant value."""
    return (
        stat.Panel()
        .title(title)
        .description(describe(text, [q]))
        .datasource(DATASOURCE)
        .unit(_check_unit(unit))
        .span(width)
        .height(height)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .targets(_refs([q], instant=True))
    )


def top(title: str, text: str, unit: str, q: Q, *, width: int = 12, height: int = 8) -> bargauge.Panel:
    """A horizontal bar gauge of an instant top-N query."""
    return (
        bargauge.Panel()
        .title(title)
        .description(describe(text, [q]))
        .datasource(DATASOURCE)
        .unit(_check_unit(unit))
        .min(0)
        .span(width)
        .height(height)
        .orientation(cm.VizOrientation.HORIZONTAL)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .targets(_refs([q], instant=True))
    )


def heat(title: str, text: str, unit: str, q: Q, *, width: int = 12, height: int = 8) -> heatmap.Panel:
    """A heatmap of pre-computed histogram buckets (no client-side calculation)."""
    return (
        heatmap.Panel()
        .title(title)
        .description(describe(text, [q]))
        .datasource(DATASOURCE)
        .unit(_check_unit(unit))
        .span(width)
        .height(height)
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit(unit))
        .cell_values(heatmap.CellValues().unit("cps"))
        .color(heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME).scheme("Oranges").steps(64))
        .rows_frame(heatmap.RowsHeatmapOptions().layout(cm.HeatmapCellLayout.LE))
        .targets(_refs([Q(q.expr, "{{le}}")], fmt=pm.PromQueryFormat.HEATMAP))
    )


def variable(name: str, label: str, query: str, *, multi: bool) -> gd.QueryVariable:
    """A ``label_values`` variable; multi-value ones get an "All" option matching ``.*``."""
    var = (
        gd.QueryVariable(name)
        .label(label)
        .query(query)
        .datasource(DATASOURCE)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        var = var.all_value(".*").current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    return var


#: Quantiles shown by every "p50 / p95 / p99" panel.
QUANTILES = (0.5, 0.95, 0.99)


def quantiles(scope: Scope, name: str) -> list[Q]:
    """p50, p95 and p99 targets of histogram ``name``."""
    return [Q(scope.quantile(q, name), f"p{round(q * 100)}") for q in QUANTILES]


def env_variable(source: str) -> gd.QueryVariable:
    """The single-value ``$env`` variable, from the ``env`` label of catalog metric ``source``."""
    return variable("env", "Environment", label_values(source, "env", ()), multi=False)


@dataclass(frozen=True)
class Row:
    """A titled row of panels, laid out left to right, wrapping at 24 columns."""

    title: str
    panels: tuple[PanelBuilder, ...]


def build(uid: str, title: str, text: str, variables: Sequence[gd.QueryVariable], rows: Sequence[Row]) -> dm.Dashboard:
    """Assemble a dashboard with stable panel ids (1, 2, ... in layout order).

    Besides Grafana's built-in annotations, every dashboard shows the lifecycle
    annotations (app start / stop, see :mod:`netauto_statsd.annotations`) as "Deploys".
    """
    board = (
        gd.Dashboard(title)
        .uid(uid)
        .description(text)
        .tags(["netauto", "netauto-statsd"])
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .annotation(
            gd.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
            .built_in(1)
        )
        .annotation(
            gd.AnnotationQuery()
            .name("Deploys")
            .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(False)
            .icon_color("rgba(255, 152, 48, 1)")
            .target(gd.AnnotationTarget().type("tags").tags(list(LIFECYCLE_TAGS)).match_any(False).limit(100))
        )
        .link(
            gd.DashboardLink("NetAuto")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["netauto"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    for var in variables:
        board = board.with_variable(var)
    next_id = 1
    for row in rows:
        board = board.with_row(gd.Row(row.title).id(next_id))
        next_id += 1
        for panel in row.panels:
            board = board.with_panel(panel.id(next_id))
            next_id += 1
    return board.build()
