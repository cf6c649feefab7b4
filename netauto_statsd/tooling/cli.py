"""The ``netauto-statsd`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from netauto_statsd.catalog import CONSTANT_TAG_KEYS, CatalogError, Metric, all_metrics, app_metrics, wire_name
from netauto_statsd.tooling.catalog_source import ENV_VARIABLE, load_catalog, namespace_arg

Handler = Callable[[argparse.Namespace], int]


def catalog_rows(namespace: str) -> list[dict[str, Any]]:
    """The catalog as JSON-ready dicts (one per metric)."""
    from netauto_statsd.wire.base import plain_pattern

    rows = []
    for m in all_metrics():
        rows.append(
            {
                "name": wire_name(m, namespace),
                "type": m.type,
                "tags": [{"key": t.key, "values": list(t.values) if t.values else None} for t in m.tags],
                "constant_tags": list(CONSTANT_TAG_KEYS),
                "unit": m.unit,
                "help": m.help,
                "prometheus_name": m.prometheus_name,
                "labels": list(m.label_names()),
                "buckets": list(m.buckets) or None,
                "max_combinations": m.max_combinations,
                "per_process": m.per_process,
                "ttl": m.ttl or None,
                "plain_statsd": plain_pattern(m, namespace),
                "area": m.area,
                "module": m.module,
            }
        )
    return rows


def _tag_text(metric: Metric, sep: str = "|") -> str:
    return ", ".join(f"{t.key}={sep.join(t.values)}" if t.values else t.key for t in metric.tags)


def print_markdown(namespace: str) -> None:
    """The built-in metrics as a Markdown table, then the app's (``--catalog``) with the module declaring each."""
    app = app_metrics()
    print("| statsd name | type | unit | tags | Prometheus series | help |")
    print("|---|---|---|---|---|---|")
    for m in (m for m in all_metrics() if m not in app):
        tags = _tag_text(m, " / ")
        print(f"| `{wire_name(m, namespace)}` | {m.type} | {m.unit} | {tags} | `{m.prometheus_name}` | {m.help} |")
    if not app:
        return
    modules = ", ".join(f"`{name}`" for name in dict.fromkeys(m.module for m in app))
    print(f"\n## App metrics\n\nDeclared outside the library, in {modules} (loaded with `--catalog`).\n")
    print("| statsd name | type | unit | tags | Prometheus series | help | declared in |")
    print("|---|---|---|---|---|---|---|")
    for m in app:
        tags = _tag_text(m, " / ")
        print(
            f"| `{wire_name(m, namespace)}` | {m.type} | {m.unit} | {tags} | `{m.prometheus_name}` "
            f"| {m.help} | `{m.module}` |"
        )


def cmd_catalog(args: argparse.Namespace) -> int:
    """Print the metric catalog as a table or JSON."""
    rows = catalog_rows(args.namespace)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.markdown:
        print_markdown(args.namespace)
        return 0
    width = max(len(r["name"]) for r in rows)
    for m, row in zip(all_metrics(), rows, strict=False):
        print(f"{row['name']:<{width}}  {m.type:<9}  {m.unit:<7}  {m.prometheus_name}")
        print(f"{'':<{width}}  tags: {_tag_text(m) or '-'}  |  {m.help}")
    return 0


def cmd_mapping(args: argparse.Namespace) -> int:
    """Print the mapping the catalog implies, or --diff / --update an operators' mapping file."""
    from pathlib import Path

    from netauto_statsd.tooling.mapping import render_mapping

    if args.diff or args.update:
        from netauto_statsd.tooling.check import EXTRA_HINT, missing_requirements
        from netauto_statsd.tooling.mapping_update import diff_mapping, update_mapping

        missing = missing_requirements(plain=False)
        if missing:
            print(f"netauto-statsd mapping: needs {', '.join(missing)}: {EXTRA_HINT}", file=sys.stderr)
            return 2
        path = Path(args.diff or args.update)
        if not path.is_file():
            print(f"netauto-statsd mapping: {path}: no such file", file=sys.stderr)
            return 2
        if args.update:
            try:
                added = update_mapping(path, all_metrics(), args.namespace, plain=not args.no_plain)
            except ValueError as exc:
                print(f"netauto-statsd mapping: {exc}", file=sys.stderr)
                return 1
            for match in added:
                print(f"{path}: added rule for {match}")
            print(f"{path}: {len(added)} rule(s) added; every other line unchanged")
            return 0
        report = diff_mapping(path, all_metrics(), args.namespace, plain=not args.no_plain)
        for finding in report.errors:
            print(finding.render())
        print(f"{path}: {len(report.errors)} difference(s) from the contract")
        return 1 if report.errors else 0
    sys.stdout.write(render_mapping(args.namespace))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check the mapping, dashboards and alert rules against the catalog."""
    from netauto_statsd.tooling.check import CheckOptions, run_check

    options = CheckOptions(
        mapping=args.mapping,
        dashboards=args.dashboards,
        rules=args.rules,
        exporter=args.exporter,
        plain=not args.no_plain,
        namespace=args.namespace,
        catalog=tuple(args.catalog),
        strict=args.strict,
        offline=args.offline,
    )
    return run_check(options)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo app, a worker and the load generator."""
    from netauto_demo.main import run_demo

    return run_demo(args)


def cmd_dashboards(args: argparse.Namespace) -> int:
    """Regenerate grafana/dashboards/*.json from the catalog, or --check they are current."""
    from pathlib import Path

    from netauto_statsd.tooling.dashboards import (
        GeneratorUnavailableError,
        render_dashboards,
        stale_dashboards,
        write_dashboards,
    )

    out = Path(args.out)
    try:
        if args.publish:
            from netauto_statsd.tooling.publish import parse_rendered, run_publish

            return run_publish(
                parse_rendered(render_dashboards()),
                folder=args.folder,
                dry_run=args.dry_run,
                app=args.app,
                datasource_uid=args.datasource_uid,
            )
        if args.check:
            if not out.is_dir():
                print(f"{out}: no dashboards folder here (run from the repository root, or pass --out DIR)")
                return 3
            stale = stale_dashboards(out)
            for name in stale:
                state = "missing" if not (out / name).exists() else "out of date"
                print(f"{out / name}: {state}, run `netauto-statsd dashboards`")
            return 1 if stale else 0
        for path in write_dashboards(out):
            print(path)
    except GeneratorUnavailableError as exc:
        print(f"netauto-statsd dashboards: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Render every dashboard panel from a Prometheus into PNGs and one index.html."""
    from pathlib import Path

    from netauto_statsd.tooling.report import run_report

    return run_report(
        args.prometheus,
        Path(args.out),
        dashboards_dir=Path(args.dashboards),
        range_text=args.range,
        scrape_text=args.scrape_interval,
        variables=args.var,
        require_data=args.require_data,
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    parser = argparse.ArgumentParser(prog="netauto-statsd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    catalog_help = (
        f"app catalog module declaring metrics (dotted path, repeatable); also {ENV_VARIABLE} (comma-separated) "
        "and [tool.netauto-statsd] catalog in ./pyproject.toml"
    )
    namespace_help = "namespace as configured (default netauto); the client's own rule applies"

    p = sub.add_parser("catalog", help="print the metric catalog")
    p.add_argument("--json", action="store_true", help="a JSON array, one object per metric")
    p.add_argument("--markdown", action="store_true", help="a Markdown table (for the docs)")
    p.add_argument("--namespace", default="netauto", type=namespace_arg, help=namespace_help)
    p.add_argument("--catalog", action="append", default=[], metavar="MODULE", help=catalog_help)
    p.set_defaults(handler=cmd_catalog)

    p = sub.add_parser("mapping", help="print the mapping the catalog implies, or --diff / --update a mapping file")
    p.add_argument("--namespace", default="netauto", type=namespace_arg, help=namespace_help)
    p.add_argument("--catalog", action="append", default=[], metavar="MODULE", help=catalog_help)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--diff", metavar="FILE", help="print what FILE lacks or contradicts in the contract (exit 1)")
    what.add_argument("--update", metavar="FILE", help="add rules for new catalog metrics to FILE, keeping every edit")
    p.add_argument("--no-plain", action="store_true", help="ignore the plain-StatsD rules")
    p.set_defaults(handler=cmd_mapping)

    p = sub.add_parser("check", help="check the mapping and dashboards against the catalog (exit 1 on problems)")
    p.add_argument("--mapping", default="bridge/statsd_mapping.yml", help="mapping file to check")
    p.add_argument("--dashboards", default="grafana/dashboards", help="directory of Grafana dashboard JSON")
    p.add_argument("--exporter", default=None, help="statsd_exporter binary (default: found on PATH)")
    p.add_argument("--rules", default="bridge/rules", help="directory of Prometheus alert rule files")
    p.add_argument("--no-plain", action="store_true", help="skip the plain-StatsD encoding")
    p.add_argument("--namespace", default="netauto", type=namespace_arg, help=namespace_help)
    p.add_argument("--catalog", action="append", default=[], metavar="MODULE", help=catalog_help)
    p.add_argument("--strict", action="store_true", help="warnings fail the check too")
    p.add_argument(
        "--offline", action="store_true", help="a skipped proof (no exporter, no dashboards/rules folder) is intended"
    )
    p.set_defaults(handler=cmd_check)
    p = sub.add_parser("dashboards", help="regenerate the Grafana dashboards from the catalog (dashboards extra)")
    p.add_argument("--out", default="grafana/dashboards", help="output directory")
    p.add_argument("--check", action="store_true", help="exit 1 if the committed JSON differs from the generator")
    p.add_argument("--catalog", action="append", default=[], metavar="MODULE", help=catalog_help)
    p.add_argument("--publish", action="store_true", help="upload them to GRAFANA_URL (docs/stack.md; grafana extra)")
    p.add_argument("--folder", default="NetAuto", help="Grafana folder for --publish, created if missing")
    p.add_argument("--dry-run", action="store_true", help="with --publish: print what would change, write nothing")
    p.add_argument("--app", default=None, help="with --publish: uids <app>-<dashboard> and titles '<title> (<app>)'")
    p.add_argument("--datasource-uid", default="netauto-prometheus", help="with --publish: Prometheus datasource uid")
    p.set_defaults(handler=cmd_dashboards)

    p = sub.add_parser("report", help="every dashboard panel as a PNG chart + one index.html (report extra)")
    p.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    p.add_argument("--out", required=True, help="output directory (index.html, report.json, PNGs)")
    p.add_argument("--dashboards", default="grafana/dashboards", help="directory of Grafana dashboard JSON")
    p.add_argument("--range", default="1h", help="time range ending now (default 1h)")
    p.add_argument("--scrape-interval", default=None, help="for $__rate_interval (default: asked from Prometheus)")
    p.add_argument("--var", action="append", default=[], help="NAME=VALUE (or All, or a,b): a variable's selection")
    p.add_argument("--require-data", action="store_true", help="exit 1 when a panel has no data")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("demo", help="run the demo app, an RQ worker and a load generator (needs the demo extra)")
    p.add_argument("--role", choices=("all", "app", "worker", "load"), default="all", help="default: all together")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load; 0 runs until stopped (default 60)")
    p.add_argument("--rate", type=float, default=2.0, help="runs started per second (default 2)")
    p.add_argument("--devices", type=int, default=120, help="simulated devices (default 120: more than 100 folds)")
    p.add_argument("--viewers", type=int, default=6, help="max concurrent live viewers (default 6)")
    p.add_argument("--port", type=int, default=0, help="HTTP port of the app (default: any free port)")
    p.add_argument("--target", help="app URL for --role load (required there), e.g. http://127.0.0.1:8080")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``netauto-statsd``."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    if args.command in ("catalog", "mapping", "dashboards"):
        try:
            load_catalog(args.catalog)
        except CatalogError as exc:
            print(f"netauto-statsd {args.command}: {exc}", file=sys.stderr)
            return 2
    try:
        return handler(args)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
