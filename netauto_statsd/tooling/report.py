"""``netauto-statsd report``: every dashboard panel as a static chart, without Grafana.

For CI artifacts, machines without Grafana and reviewing a dashboard change:
each panel of each dashboard JSON (default ``grafana/dashboards/``) is queried
against a Prometheus exactly as Grafana would query it - template variables
resolved through the same ``label_values`` calls ("All" becomes the variable's
all value, a single-value variable its first option unless ``--var`` picks
one), ``$__interval``, ``$__rate_interval`` and ``$__range`` computed from the
time range and the scrape interval - and drawn with matplotlib into
``OUT/<dashboard>/<nn>-<panel>.png``. ``OUT/index.html`` shows them all on one
page; ``OUT/report.json`` records, per panel, the interpolated queries, the
series returned, the values plotted and any error.

A panel without data is drawn with its title and "No data" in the middle, as
in Grafana, marked "no data" in the page and listed at its top; with
``--require-data`` the command then exits 1.
"""

from __future__ import annotations

import html
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netauto_statsd.tooling import grafana_vars as gv
from netauto_statsd.tooling.charts import Chart, Series, render
from netauto_statsd.tooling.dashboards import load_dashboards
from netauto_statsd.tooling.promql import parse_label_values

#: Scrape interval assumed when Prometheus does not tell (Grafana's default too).
DEFAULT_SCRAPE_S = 15.0


class ReportError(RuntimeError):
    """Prometheus unreachable or answering with an error; ``str()`` is one line."""


class Prometheus:
    """The few Prometheus HTTP API calls Grafana makes for a dashboard (stdlib only)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: Mapping[str, str | Sequence[str]]) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read())
            except ValueError:
                raise ReportError(f"Prometheus at {self.url}: {path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ReportError(f"Prometheus at {self.url} is unreachable ({reason})") from None
        if payload.get("status") != "success":
            raise ReportError(f"{payload.get('errorType')}: {payload.get('error')}")
        return payload["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """Instant query (scalars become one unlabelled sample)."""
        data = self._get("query", {"query": expr, "time": f"{at:.3f}"})
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[dict[str, Any]]:
        """Range query, step aligned like Grafana's (start and end rounded to the step)."""
        start, end = math.floor(start / step_s) * step_s, math.ceil(end / step_s) * step_s
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:g}s"}
        return list(self._get("query_range", params)["result"])

    def label_values(self, label: str, match: str, start: float, end: float) -> list[str]:
        """``label_values(match, label)`` as Grafana asks it."""
        params: dict[str, str | Sequence[str]] = {"start": f"{start:.3f}", "end": f"{end:.3f}"}
        if match:
            params["match[]"] = [match]
        return sorted(self._get(f"label/{urllib.parse.quote(label)}/values", params))

    def scrape_interval(self) -> float | None:
        """The global scrape interval of Prometheus' loaded config, if it says."""
        config = self._get("status/config", {}).get("yaml", "")
        match = re.search(r"^global:\s*\n(?:[ \t]+.*\n)*?[ \t]+scrape_interval:\s*(\S+)", config, re.MULTILINE)
        return gv.parse_duration(match.group(1)) if match else None


@dataclass
class TargetReport:
    """One query of one panel, as run."""

    ref: str
    expr: str
    query: str = ""
    instant: bool = False
    series: int = 0
    values: int = 0
    error: str | None = None


@dataclass
class PanelReport:
    """One panel: where its chart is and what it holds."""

    title: str
    type: str
    row: str
    png: str
    points: int = 0
    targets: list[TargetReport] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        """The first query error, if any."""
        return next((t.error for t in self.targets if t.error), None)


@dataclass
class DashboardReport:
    """One dashboard: its resolved variables and its panels."""

    file: str
    title: str
    variables: dict[str, str]
    panels: list[PanelReport] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "panel"


def resolve_variables(
    prometheus: Prometheus,
    dashboard: Mapping[str, Any],
    start: float,
    end: float,
    scrape_s: float,
    chosen: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every variable's interpolation text, in order, as Grafana resolves them on load.

    ``chosen`` picks values by name (``"All"``, one value, or ``a,b`` for a
    multi-value variable); otherwise multi-value variables are "All" and
    single-value ones keep their saved value if Prometheus offers it, else take the first option.
    """
    chosen = chosen or {}
    values = gv.builtins(end - start, scrape_s)
    for var in dashboard.get("templating", {}).get("list", []):
        name, query = var["name"], var.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        parsed = parse_label_values(text) if var.get("type") == "query" else None
        if parsed is not None:
            selector, label = parsed
            options = prometheus.label_values(label, gv.interpolate(selector, values), start, end)
        elif var.get("type") == "custom":
            options = [o.strip() for o in text.split(",") if o.strip()]
        else:
            options = [text] if text else []
        pick = chosen.get(name)
        if pick == "All" or (pick is None and var.get("includeAll")):
            values[name] = gv.all_value(var, options)
        elif pick is not None:
            values[name] = gv.format_value(var, pick.split(",") if var.get("multi") else [pick])
        elif options:
            current = var.get("current", {}).get("value")
            saved = current if isinstance(current, str) and current in options else options[0]
            values[name] = gv.format_value(var, [saved])
        else:
            values[name] = ""  # Grafana leaves it empty too: the panels show no data
    return values


def _series(result: Sequence[Mapping[str, Any]], legend: str, expr: str) -> list[Series]:
    out = []
    for item in result:
        labels = dict(item.get("metric", {}))
        points = item.get("values") or ([item["value"]] if "value" in item else [])
        series = Series(gv.legend(legend, labels, expr), labels=labels)
        for t, v in points:
            value = float(v)
            if math.isfinite(value):
                series.times.append(float(t))
                series.values.append(value)
        out.append(series)
    return out


def _panels_with_rows(dashboard: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out, row = [], ""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            row = panel.get("title", "")
            out += [(row, p) for p in panel.get("panels", [])]
        else:
            out.append((row, panel))
    return out


def report_dashboard(
    prometheus: Prometheus,
    file_name: str,
    dashboard: Mapping[str, Any],
    out_dir: Path,
    *,
    start: float,
    end: float,
    scrape_s: float,
    chosen: Mapping[str, str] | None = None,
) -> DashboardReport:
    """Query and draw every panel of one dashboard into ``out_dir/<dashboard>/``."""
    values = resolve_variables(prometheus, dashboard, start, end, scrape_s, chosen)
    step = gv.interval(end - start, scrape_s)
    shown = {k: v for k, v in values.items() if not k.startswith("__")}
    board = DashboardReport(file_name, str(dashboard.get("title", file_name)), shown)
    stem = Path(file_name).stem
    for number, (row, panel) in enumerate(_panels_with_rows(dashboard), start=1):
        title = str(panel.get("title", f"panel {number}"))
        png = f"{stem}/{number:02d}-{_slug(title)}.png"
        report = PanelReport(title, str(panel.get("type", "timeseries")), row, png)
        series: list[Series] = []
        for target in panel.get("targets", []):
            if "expr" not in target:
                continue
            run = TargetReport(str(target.get("refId", "")), target["expr"], instant=bool(target.get("instant")))
            try:
                run.query = gv.interpolate(target["expr"], values)
                if run.instant:
                    result = prometheus.query(run.query, end)
                else:
                    result = prometheus.query_range(run.query, start, end, step)
            except (ReportError, KeyError) as exc:
                run.error = str(exc).strip("'\"")
            else:
                found = _series(result, str(target.get("legendFormat", "")), run.query)
                run.series, run.values = len(found), sum(len(s.values) for s in found)
                series += found
            report.targets.append(run)
        grid = panel.get("gridPos", {})
        unit = str(panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short"))
        chart = Chart(title, report.type, unit, series, int(grid.get("w", 12)), int(grid.get("h", 8)), report.error)
        report.points = render(chart, out_dir / png)
        board.panels.append(report)
    return board


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#f7f8fa;color:#222}
h2{margin-top:2em;border-bottom:1px solid #ccc} h3{color:#555;margin:1.2em 0 .4em}
.grid{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px}
figure.no-data{border-color:#e0b000} figure.error{border-color:#c4162a}
figcaption{font-size:12px;color:#555} img{display:block;max-width:100%} code,pre{font-size:11px}
.badge{font-weight:bold;color:#8a6d00} .error .badge{color:#c4162a} details pre{white-space:pre-wrap;max-width:60em}
"""


def render_index(dashboards: Sequence[DashboardReport], meta: Mapping[str, Any]) -> str:
    """The single HTML page showing every chart."""
    esc = html.escape
    panels = [(d, p) for d in dashboards for p in d.panels]
    empty = [(d, p) for d, p in panels if not p.points]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>NetAuto dashboards report</title>",
        f"<style>{_STYLE}</style></head><body><h1>NetAuto dashboards report</h1>",
        f"<p>Prometheus <code>{esc(meta['prometheus'])}</code>, {esc(meta['start_utc'])} to {esc(meta['end_utc'])}"
        f" UTC, step {meta['step_s']:g}s, scrape interval {meta['scrape_interval_s']:g}s."
        f" {len(panels)} panels, {len(panels) - len(empty)} with data.</p>",
    ]
    if empty:
        items = "".join(f"<li>{esc(d.title)} / {esc(p.title)}: {esc(p.error or 'no data')}</li>" for d, p in empty)
        parts.append(f"<p class='badge'>Panels without data:</p><ul>{items}</ul>")
    for board in dashboards:
        variables = ", ".join(f"${esc(k)} = <code>{esc(v)}</code>" for k, v in board.variables.items())
        parts.append(f"<h2>{esc(board.title)}</h2><p>{esc(board.file)}; {variables or 'no variables'}</p>")
        row = None
        for panel in board.panels:
            if panel.row != row:
                parts.append(("</div>" if row is not None else "") + f"<h3>{esc(panel.row)}</h3><div class='grid'>")
                row = panel.row
            state = "error" if panel.error else ("no-data" if not panel.points else "")
            badge = f" <span class='badge'>{'query error' if panel.error else 'no data'}</span>" if state else ""
            queries = "\n\n".join(t.query or t.expr for t in panel.targets)
            parts.append(
                f"<figure class='{state}'><img src='{esc(panel.png)}' alt='{esc(panel.title)}'>"
                f"<figcaption>{esc(panel.title)} - {panel.points} values plotted{badge}"
                f"<details><summary>queries</summary><pre>{esc(queries)}</pre></details></figcaption></figure>"
            )
        if row is not None:
            parts.append("</div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(
    prometheus_url: str,
    out_dir: Path,
    *,
    dashboards_dir: Path,
    range_s: float = 3600.0,
    end: float | None = None,
    scrape_s: float | None = None,
    chosen: Mapping[str, str] | None = None,
) -> list[DashboardReport]:
    """Render every dashboard of ``dashboards_dir``; write ``index.html`` and ``report.json`` into ``out_dir``."""
    dashboards = load_dashboards(dashboards_dir)
    if not dashboards:
        raise ReportError(f"no dashboard JSON in {dashboards_dir}")
    prometheus = Prometheus(prometheus_url)
    scrape = scrape_s or prometheus.scrape_interval() or DEFAULT_SCRAPE_S
    end = time.time() if end is None else end
    start = end - range_s
    reports = [
        report_dashboard(prometheus, name, board, out_dir, start=start, end=end, scrape_s=scrape, chosen=chosen)
        for name, board in dashboards.items()
    ]
    utc = "%Y-%m-%d %H:%M:%S"
    meta = {
        "prometheus": prometheus.url,
        "start": start,
        "end": end,
        "start_utc": time.strftime(utc, time.gmtime(start)),
        "end_utc": time.strftime(utc, time.gmtime(end)),
        "step_s": gv.interval(range_s, scrape),
        "scrape_interval_s": scrape,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "index.html").write_text(render_index(reports, meta), encoding="utf-8")
    sidecar = {**meta, "dashboards": [{**asdict(r)} for r in reports]}
    (out_dir / "report.json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return reports


def run_report(
    prometheus_url: str,
    out_dir: Path,
    *,
    dashboards_dir: Path,
    range_text: str = "1h",
    scrape_text: str | None = None,
    variables: Sequence[str] = (),
    require_data: bool = False,
) -> int:
    """The CLI: 0 written, 1 Prometheus failed (or ``require_data`` and a panel is empty), 2 bad arguments."""
    import sys

    from netauto_statsd.tooling.charts import ChartsUnavailableError

    try:
        range_s = gv.parse_duration(range_text)
        scrape_s = gv.parse_duration(scrape_text) if scrape_text else None
        chosen = dict(v.split("=", 1) for v in variables if "=" in v)
        if len(chosen) != len(variables):
            raise ValueError("--var takes NAME=VALUE")
    except ValueError as exc:
        print(f"netauto-statsd report: {exc}", file=sys.stderr)
        return 2
    try:
        reports = write_report(
            prometheus_url, out_dir, dashboards_dir=dashboards_dir, range_s=range_s, scrape_s=scrape_s, chosen=chosen
        )
    except (ReportError, ChartsUnavailableError) as exc:
        print(f"netauto-statsd report: {exc}", file=sys.stderr)
        return 1
    panels = [(d, p) for d in reports for p in d.panels]
    empty = [f"{d.title} / {p.title}" for d, p in panels if not p.points]
    print(f"{out_dir / 'index.html'}: {len(panels)} panels of {len(reports)} dashboards, {len(empty)} without data")
    for name in empty:
        print(f"  no data: {name}")
    return 1 if require_data and empty else 0
