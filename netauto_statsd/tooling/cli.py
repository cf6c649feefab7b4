"""The ``netauto-statsd`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from netauto_statsd.catalog import CONSTANT_TAG_KEYS, METRICS, Metric, wire_name

Handler = Callable[[argparse.Namespace], int]


def catalog_rows(namespace: str) -> list[dict[str, Any]]:
    """The catalog as JSON-ready dicts (one per metric)."""
    from netauto_statsd.wire.base import plain_pattern

    rows = []
    for m in METRICS:
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
            }
        )
    return rows


def _tag_text(metric: Metric, sep: str = "|") -> str:
    return ", ".join(f"{t.key}={sep.join(t.values)}" if t.values else t.key for t in metric.tags)


def cmd_catalog(args: argparse.Namespace) -> int:
    """Print the metric catalog as a table or JSON."""
    rows = catalog_rows(args.namespace)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.markdown:
        print("| statsd name | type | unit | tags | Prometheus series | help |")
        print("|---|---|---|---|---|---|")
        for m, row in zip(METRICS, rows, strict=False):
            tags = _tag_text(m, " / ")
            print(f"| `{row['name']}` | {m.type} | {m.unit} | {tags} | `{m.prometheus_name}` | {m.help} |")
        return 0
    width = max(len(r["name"]) for r in rows)
    for m, row in zip(METRICS, rows, strict=False):
        print(f"{row['name']:<{width}}  {m.type:<9}  {m.unit:<7}  {m.prometheus_name}")
        print(f"{'':<{width}}  tags: {_tag_text(m) or '-'}  |  {m.help}")
    return 0


def cmd_mapping(args: argparse.Namespace) -> int:
    """Print the statsd_exporter mapping the catalog implies."""
    from netauto_statsd.tooling.mapping import render_mapping

    sys.stdout.write(render_mapping(args.namespace))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check the mapping and dashboards against the catalog."""
    from netauto_statsd.tooling.check import run_check

    return run_check(args.mapping, args.dashboards, exporter=args.exporter, plain=not args.no_plain)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo app, a worker and the load generator."""
    from netauto_demo.main import run_demo

    return run_demo(args)


def cmd_dashboards(args: argparse.Namespace) -> int:
    """Regenerate grafana/dashboards/*.json from the catalog, or --check they are current."""
    from pathlib import Path

    from netauto_statsd.tooling.dashboards import GeneratorUnavailableError, stale_dashboards, write_dashboards

    out = Path(args.out)
    try:
        if args.check:
            stale = stale_dashboards(out)
            for name in stale:
                print(f"{out / name}: out of date, run `netauto-statsd dashboards`")
            return 1 if stale else 0
        for path in write_dashboards(out):
            print(path)
    except GeneratorUnavailableError as exc:
        print(f"netauto-statsd dashboards: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    parser = argparse.ArgumentParser(prog="netauto-statsd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("catalog", help="print the metric catalog")
    p.add_argument("--json", action="store_true", help="a JSON array, one object per metric")
    p.add_argument("--markdown", action="store_true", help="a Markdown table (for the docs)")
    p.add_argument("--namespace", default="netauto", help="namespace as configured (default netauto)")
    p.set_defaults(handler=cmd_catalog)

    p = sub.add_parser("mapping", help="print the statsd_exporter mapping the catalog implies")
    p.add_argument("--namespace", default="netauto")
    p.set_defaults(handler=cmd_mapping)

    p = sub.add_parser("check", help="check the mapping and dashboards against the catalog (exit 1 on problems)")
    p.add_argument("--mapping", default="bridge/statsd_mapping.yml", help="mapping file to check")
    p.add_argument("--dashboards", default="grafana/dashboards", help="directory of Grafana dashboard JSON")
    p.add_argument("--exporter", default=None, help="statsd_exporter binary (default: found on PATH)")
    p.add_argument("--no-plain", action="store_true", help="skip the plain-StatsD encoding")
    p.set_defaults(handler=cmd_check)
    p = sub.add_parser("dashboards", help="regenerate the Grafana dashboards from the catalog (dashboards extra)")
    p.add_argument("--out", default="grafana/dashboards", help="output directory")
    p.add_argument("--check", action="store_true", help="exit 1 if the committed JSON differs from the generator")
    p.set_defaults(handler=cmd_dashboards)

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
    try:
        return handler(args)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
