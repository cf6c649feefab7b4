"""``netauto-statsd check``: the referee between the catalog (the contract) and the mapping (the knobs).

What an operator runs after editing ``bridge/statsd_mapping.yml`` and what CI runs:

1. the YAML is linted strictly (:mod:`.mapping_lint`);
2. the contract: every catalog metric (built-ins and ``--catalog`` modules), in
   both wire formats, must become its declared series with its declared type and
   labels (:mod:`.contract`); a finding names the catalog module that owns it;
3. the knobs: final drop rule, no catch-all before it, increasing buckets, ttl on
   per-process gauges (fail); unit-looking buckets, bucket count, rules for no
   catalog metric (warn) (:mod:`.knobs`); a finding points at the mapping line;
4. ``statsd_exporter --check-config``, then the live proof: the client's own wire
   into a throw-away exporter, counted back sample for sample (:mod:`.live_check`);
5. every dashboard and alert-rule query may only name series and labels the
   mapping produces (:mod:`.dashboard_check`).

Exit 0 only when every proof ran and nothing failed; 1 on problems (warnings
too with ``--strict``); 2 when check cannot run (missing extra, unusable
``--exporter``, bad catalog module); 3 when a proof was skipped (no exporter,
no dashboards or rules folder, no mapping) unless ``--offline`` says that is intended.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from netauto_statsd.catalog import DEFAULT_NAMESPACE, CatalogError, Metric
from netauto_statsd.tooling.findings import EXIT_INCOMPLETE, EXIT_UNUSABLE, Report

EXTRA_HINT = "pip install 'netauto-statsd[check]'"
#: Seconds ``statsd_exporter --check-config`` may take before check reports it as unusable.
CHECK_CONFIG_TIMEOUT = 60.0


@dataclass(frozen=True)
class CheckOptions:
    """What ``check`` judges, and how."""

    mapping: str = "bridge/statsd_mapping.yml"
    dashboards: str = "grafana/dashboards"
    rules: str = "bridge/rules"
    exporter: str | None = None
    plain: bool = True
    namespace: str = DEFAULT_NAMESPACE
    catalog: tuple[str, ...] = ()
    strict: bool = False
    offline: bool = False


def missing_requirements(plain: bool) -> list[str]:
    """Python packages ``check`` needs that are not installed (``statsd`` only for the plain-StatsD proof)."""
    needed = {"yaml": "PyYAML", "prometheus_client": "prometheus_client", "ruamel.yaml": "ruamel.yaml"}
    if plain:
        needed["statsd"] = "statsd"
    return [dist for module, dist in needed.items() if not _importable(module)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _fail_to_run(message: str) -> int:
    print(f"netauto-statsd check: {message}", file=sys.stderr)
    return EXIT_UNUSABLE


def run_check(options: CheckOptions) -> int:
    """Run every check, print the report, return the exit code (see the module docstring)."""
    from netauto_statsd.tooling.catalog_source import load_catalog
    from netauto_statsd.tooling.exporter import ExporterError, find_exporter, validate_binary

    missing = missing_requirements(options.plain)
    if missing:
        return _fail_to_run(
            f"needs {', '.join(missing)} (the `check` extra): {EXTRA_HINT}"
            + (" (or --no-plain to skip the plain-StatsD proof)" if missing == ["statsd"] else "")
        )
    try:
        metrics = load_catalog(options.catalog)
    except CatalogError as exc:
        return _fail_to_run(str(exc))
    binary = find_exporter(options.exporter)
    if options.exporter:
        try:
            validate_binary(options.exporter)
        except ExporterError as exc:
            return _fail_to_run(f"--exporter {exc}")
    path = Path(options.mapping)
    if not path.is_file():
        print(f"{options.mapping}: no mapping file here (run from the repository root, or pass --mapping PATH)")
        print("check INCOMPLETE: nothing was checked")
        return EXIT_INCOMPLETE
    report = Report()
    _judge(options, path, metrics, binary, report)
    print(report.render(options.strict, options.offline))
    return report.exit_code(options.strict, options.offline)


def _judge(options: CheckOptions, path: Path, metrics: Sequence[Metric], binary: str | None, report: Report) -> None:
    from netauto_statsd.tooling.contract import check_contract
    from netauto_statsd.tooling.dashboard_check import check_dashboards, check_rule_files, referenced_bucket_series
    from netauto_statsd.tooling.knobs import lint_knobs
    from netauto_statsd.tooling.mapping_lint import lint_mapping
    from netauto_statsd.tooling.series import known_series, rule_series

    where = options.mapping
    dash_dir, rules_dir = Path(options.dashboards), Path(options.rules)
    rules = lint_mapping(path, report)
    parsed = bool(rules) or not report.errors
    produced: list[Metric] = []
    if parsed:  # an empty `mappings: []` too: every metric unmapped, no final drop rule
        buckets = referenced_bucket_series(dash_dir, rules_dir)
        catalog_args = "".join(f" --catalog {module}" for module in options.catalog)
        produced = check_contract(
            where, rules, metrics, report, options.namespace, options.plain, buckets, catalog_args
        )
        lint_knobs(where, rules, metrics, report, options.namespace)
    if binary is None:
        report.skip("statsd_exporter not found on PATH (or pass --exporter): --check-config and the live proof")
    elif not parsed:
        report.notes.append("the mapping does not parse: --check-config and the live proof were not run")
    else:
        _prove_live(options, path, metrics, binary, report)
    if not parsed:
        report.notes.append("dashboard and alert-rule queries were not checked: the mapping does not parse")
        return
    series = known_series(produced)
    catalog_names = {m.prometheus_name for m in metrics}
    for rule in rules:  # rules for other senders produce series dashboards may read too
        if rule.action != "drop" and "$" not in rule.name and rule.name not in catalog_names:
            series.update(rule_series(rule.name, rule.labels, rule.metric_type == "observer" or bool(rule.buckets)))
    for directory, what, checker in (
        (dash_dir, "dashboards", check_dashboards),
        (rules_dir, "alert rules", check_rule_files),
    ):
        if directory.is_dir():
            for finding in checker(directory, series):
                report.add(finding)
        else:
            report.skip(f"no {what} folder at {directory}: their queries were not checked")


def _prove_live(options: CheckOptions, path: Path, metrics: Sequence[Metric], binary: str, report: Report) -> None:
    from netauto_statsd.tooling.contract import rules_for
    from netauto_statsd.tooling.exporter import COMPAT_SETTING, ExporterError, exporter_version
    from netauto_statsd.tooling.live_check import live_check
    from netauto_statsd.tooling.mapping_lint import lint_mapping

    where = options.mapping
    try:
        done = subprocess.run(
            [binary, f"--statsd.mapping-config={path}", "--check-config"],
            capture_output=True,
            text=True,
            timeout=CHECK_CONFIG_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        report.error(where, 0, f"cannot run {binary}: {exc}", "pass a statsd_exporter binary with --exporter")
        return
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        report.error(where, 0, f"statsd_exporter --check-config failed: {last[0]}", "fix what it names")
        return
    if report.errors:
        report.notes.append("the live proof was not run: fix the problems above first")
        return
    found = exporter_version(binary)
    version = found.version if found else ""
    if found is not None and found.rejects_multi_value() and COMPAT_SETTING.split("=")[0] not in os.environ:
        report.error(
            where,
            0,
            f"{binary} is statsd_exporter {version}: before v0.27.1 it rejects the multi-value lines "
            "the client packs histogram samples into",
            f"upgrade the exporter, or set {COMPAT_SETTING} in the app's environment (and here)",
        )
    try:
        result = live_check(binary, path, metrics, options.namespace, options.plain, version=version)
    except ExporterError as exc:
        report.error(where, 0, f"the live proof could not start the exporter: {exc}", "run it by hand to see why")
        return
    rules = lint_mapping(path, Report())
    for problem, fix, metric in result.problems:
        plain = problem.startswith("[statsd]")
        owners = rules_for(rules, metric, options.namespace, plain) if metric is not None else []
        report.error(where, owners[-1].line if owners else 0, problem, fix)
    report.notes += result.notes
