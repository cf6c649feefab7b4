"""`run_check` in-process: every verdict and exit code, the proofs it skips and says so, the live proof's findings.

The live proof starts a real statsd_exporter (a child of the exporter binary,
not of our code), so mutmut sees every line of ``check`` these tests run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netauto_statsd.catalog import all_metrics, find
from netauto_statsd.tooling.check import EXTRA_HINT, CheckOptions, missing_requirements, run_check
from netauto_statsd.tooling.findings import EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK, EXIT_UNUSABLE, Finding, Report
from netauto_statsd.tooling.live_check import BURST
from tests.support import MAPPING, ROOT
from tests.tooling.bridge.edits import DROP_COMMENT, OUTPUT_BUCKETS, TEAM_RULE, Edit, edited, line_of

N = len(all_metrics())
DASHBOARDS, RULES = str(ROOT / "grafana" / "dashboards"), str(ROOT / "bridge" / "rules")


def check(capsys: pytest.CaptureFixture[str], **options: object) -> tuple[int, str, str]:
    """run_check with the repo's files (absolute paths) and ``options``; (exit code, stdout, stderr)."""
    given: dict[str, object] = {"mapping": str(MAPPING), "dashboards": DASHBOARDS, "rules": RULES, **options}
    capsys.readouterr()
    code = run_check(CheckOptions(**given))  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_exporter_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")


# ------------------------------------------------------------------ the report and its verdicts
def test_a_finding_renders_file_line_problem_and_fix() -> None:
    assert Finding("m.yml", 3, "bad", "fix it").render() == "m.yml:3: bad\n    fix: fix it"
    assert Finding("m.yml", 0, "odd", "look", "warning").render() == "m.yml:0: warning: odd\n    fix: look"


def test_the_report_records_each_finding_and_skip_once() -> None:
    report = Report()
    report.error("m.yml", 1, "bad", "fix")
    report.error("m.yml", 1, "bad", "fix")
    report.warn("m.yml", 1, "bad", "fix")
    report.warn("m.yml", 1, "bad", "fix")
    report.skip("no exporter")
    report.skip("no exporter")
    assert report.errors == [Finding("m.yml", 1, "bad", "fix")]
    assert report.warnings == [Finding("m.yml", 1, "bad", "fix", "warning")]
    assert report.skipped == ["no exporter"]


@pytest.mark.parametrize(
    ("errors", "warnings", "skipped", "strict", "offline", "code", "verdict"),
    [
        (0, 0, 0, False, False, EXIT_OK, "check OK: 0 problem(s), 0 warning(s)"),
        (0, 1, 0, False, False, EXIT_OK, "check OK: 0 problem(s), 1 warning(s)"),
        (0, 1, 0, True, False, EXIT_FAILED, "check FAILED: 0 problem(s), 1 warning(s)"),
        (2, 0, 1, False, True, EXIT_FAILED, "check FAILED: 2 problem(s), 0 warning(s)"),
        (1, 0, 1, False, False, EXIT_FAILED, "check FAILED: 1 problem(s), 0 warning(s)"),
        (
            0, 1, 2, False, False, EXIT_INCOMPLETE,
            "check INCOMPLETE: 0 problem(s), 1 warning(s), 2 proof(s) skipped (fix the reason above, or pass "
            "--offline if the skip is intended)",
        ),
        (
            0, 0, 1, False, True, EXIT_OK,
            "check OK: 0 problem(s), 0 warning(s) (offline: skipped proofs above were intended)",
        ),
        (0, 0, 0, True, True, EXIT_OK, "check OK: 0 problem(s), 0 warning(s)"),
    ],
)  # fmt: skip
def test_the_verdict_line_and_exit_code(
    errors: int, warnings: int, skipped: int, strict: bool, offline: bool, code: int, verdict: str
) -> None:
    report = Report()
    for i in range(errors):
        report.error("m.yml", i, f"e{i}", "f")
    for i in range(warnings):
        report.warn("m.yml", i, f"w{i}", "f")
    for i in range(skipped):
        report.skip(f"s{i}")
    report.notes.append("n")
    assert report.exit_code(strict, offline) == code
    lines = report.render(strict, offline).splitlines()
    assert lines[-1] == verdict
    expected = [x for i in range(errors) for x in (f"m.yml:{i}: e{i}", "    fix: f")]
    expected += [x for i in range(warnings) for x in (f"m.yml:{i}: warning: w{i}", "    fix: f")]
    assert lines[:-1] == expected + ["note: n"] + [f"skipped: s{i}" for i in range(skipped)]


def test_the_default_verdict_is_neither_strict_nor_offline() -> None:
    report = Report()
    report.warn("m.yml", 1, "w", "f")
    report.skip("s")
    assert report.exit_code() == EXIT_INCOMPLETE
    assert report.render().splitlines()[-1].startswith("check INCOMPLETE")


# ------------------------------------------------------------------ when check cannot run or has nothing to check
def test_the_extra_check_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert missing_requirements(plain=True) == []
    monkeypatch.setitem(__import__("sys").modules, "statsd", None)
    assert missing_requirements(plain=True) == ["statsd"]
    assert missing_requirements(plain=False) == []
    monkeypatch.setitem(__import__("sys").modules, "ruamel.yaml", None)
    assert missing_requirements(plain=True) == ["ruamel.yaml", "statsd"]


def test_a_missing_extra_is_one_line_naming_the_pip_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "statsd", None)
    assert check(capsys) == (
        EXIT_UNUSABLE, "",
        f"netauto-statsd check: needs statsd (the `check` extra): {EXTRA_HINT} (or --no-plain to skip the "
        "plain-StatsD proof)\n",
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    code, out, err = check(capsys)
    assert (code, out) == (EXIT_UNUSABLE, "")
    assert err == f"netauto-statsd check: needs prometheus_client, statsd (the `check` extra): {EXTRA_HINT}\n"


def test_a_catalog_module_that_does_not_import_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(capsys, catalog=("no_such_app.metrics",), offline=True)
    assert (code, out) == (EXIT_UNUSABLE, "")
    assert err == (
        "netauto-statsd check: cannot import catalog module 'no_such_app.metrics': "
        "ModuleNotFoundError: No module named 'no_such_app'\n"
    )


def test_an_unusable_exporter_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = check(capsys, exporter=str(tmp_path))
    assert (code, out) == (EXIT_UNUSABLE, "")
    assert err == f"netauto-statsd check: --exporter {tmp_path}: not an executable file\n"


def test_no_mapping_file_is_incomplete_and_says_nothing_was_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = check(capsys, mapping=str(tmp_path / "nope.yml"), offline=True)
    assert code == EXIT_INCOMPLETE
    assert out == (
        f"{tmp_path / 'nope.yml'}: no mapping file here (run from the repository root, or pass --mapping PATH)\n"
        "check INCOMPLETE: nothing was checked\n"
    )


def test_without_an_exporter_the_static_proofs_run_and_the_verdict_is_incomplete(
    capsys: pytest.CaptureFixture[str], no_exporter_on_path: None
) -> None:
    code, out, _ = check(capsys)
    assert code == EXIT_INCOMPLETE
    assert out.splitlines() == [
        "skipped: statsd_exporter not found on PATH (or pass --exporter): --check-config and the live proof",
        "check INCOMPLETE: 0 problem(s), 0 warning(s), 1 proof(s) skipped (fix the reason above, or pass --offline "
        "if the skip is intended)",
    ]
    code, out, _ = check(capsys, offline=True)
    assert code == EXIT_OK
    assert out.splitlines()[-1] == "check OK: 0 problem(s), 0 warning(s) (offline: skipped proofs above were intended)"


def test_missing_dashboards_and_rules_folders_are_skips(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_exporter_on_path: None
) -> None:
    code, out, _ = check(capsys, dashboards=str(tmp_path / "d"), rules=str(tmp_path / "r"), offline=True)
    assert code == EXIT_OK
    assert out.splitlines()[:3] == [
        "skipped: statsd_exporter not found on PATH (or pass --exporter): --check-config and the live proof",
        f"skipped: no dashboards folder at {tmp_path / 'd'}: their queries were not checked",
        f"skipped: no alert rules folder at {tmp_path / 'r'}: their queries were not checked",
    ]


@pytest.mark.exporter
def test_a_mapping_that_does_not_parse_runs_no_later_proof(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exporter_binary: str
) -> None:
    path = edited(tmp_path, Edit('  - match: "netauto.runner.stop"', '  - match: "netauto.runner.stop'))
    code, out, _ = check(capsys, mapping=str(path), exporter=exporter_binary)
    assert code == EXIT_FAILED
    lines = out.splitlines()
    assert lines[0].startswith(f"{path}:") and "not valid YAML" in lines[0]
    assert lines[-3:] == [
        "note: the mapping does not parse: --check-config and the live proof were not run",
        "note: dashboard and alert-rule queries were not checked: the mapping does not parse",
        "check FAILED: 1 problem(s), 0 warning(s)",
    ]


@pytest.mark.exporter
def test_a_lint_error_does_not_stop_the_queries_but_stops_the_live_proof(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exporter_binary: str
) -> None:
    path = edited(tmp_path, Edit('help: "Runs created."', 'help: "Runs created."\n    labels_x: 1', 1))
    code, out, _ = check(capsys, mapping=str(path), exporter=exporter_binary)
    assert code == EXIT_FAILED
    line = line_of(path, "labels_x: 1")
    assert out.splitlines() == [
        f"{path}:{line}: unknown key `labels_x` (statsd_exporter v0.30.0 silently ignores it)",
        "    fix: did you mean `labels`?",
        "note: the live proof was not run: fix the problems above first",
        "check FAILED: 1 problem(s), 0 warning(s)",
    ]


@pytest.mark.exporter
def test_what_the_exporter_refuses_is_a_finding(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exporter_binary: str
) -> None:
    """--check-config catches what the lint does not model (a summary with histogram options)."""
    path = edited(tmp_path, Edit("observer_type: histogram\n    histogram_options:\n" + OUTPUT_BUCKETS,
                                 "observer_type: summary\n    histogram_options:\n" + OUTPUT_BUCKETS, 0))  # fmt: skip
    code, out, _ = check(
        capsys, mapping=str(path), exporter=exporter_binary, dashboards=str(tmp_path), rules=str(tmp_path)
    )
    assert code == EXIT_FAILED
    lines = out.splitlines()
    assert lines[0].startswith(f"{path}:0: statsd_exporter --check-config failed: ")
    assert lines[0].endswith('error="cannot use summary observer and histogram options at the same time"')
    assert lines[1:] == ["    fix: fix what it names", "check FAILED: 1 problem(s), 0 warning(s)"]


# ------------------------------------------------------------------ every proof, on the repo
@pytest.mark.exporter
def test_every_proof_passes_on_the_repo(capsys: pytest.CaptureFixture[str], exporter_binary: str) -> None:
    code, out, err = check(capsys, exporter=exporter_binary, strict=True)
    assert (code, err) == (EXIT_OK, "")
    assert out.splitlines() == [
        f"note: live proof against {exporter_binary} v0.30.0: {N} metrics x 2 wire format(s), {2 * N} contexts "
        "compared sample for sample",
        "check OK: 0 problem(s), 0 warning(s)",
    ]


@pytest.mark.exporter
def test_no_plain_proves_the_dogstatsd_wire_only(capsys: pytest.CaptureFixture[str], exporter_binary: str) -> None:
    code, out, _ = check(capsys, exporter=exporter_binary, plain=False, strict=True)
    assert code == EXIT_OK
    assert f"{N} metrics x 1 wire format(s), {N} contexts compared sample for sample" in out


@pytest.mark.exporter
def test_a_summary_nothing_reads_as_buckets_is_an_operators_choice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exporter_binary: str
) -> None:
    """The mapping header offers `observer_type: summary` for an unread histogram; the live proof accepts it.

    (It used to report the summary as a type mismatch with a stray `quantile` label, so the knob could never pass.)
    """
    old = "    observer_type: histogram\n    histogram_options:\n" + OUTPUT_BUCKETS + "\n"
    path = edited(tmp_path, Edit(old, "    observer_type: summary\n", 0))
    empty = tmp_path / "none"
    empty.mkdir()
    options = {"mapping": str(path), "exporter": exporter_binary, "dashboards": str(empty), "rules": str(empty)}
    code, out, _ = check(capsys, plain=False, **options)  # one wire format shows it
    assert code == EXIT_OK, out
    assert out.splitlines()[-1] == "check OK: 0 problem(s), 0 warning(s)"


@pytest.mark.exporter
def test_the_live_proof_reports_a_series_the_exporter_produces_differently_at_its_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exporter_binary: str
) -> None:
    """`scale` passes every static check; only the real exporter shows the durations 1000x off, in both wires."""
    name = 'name: "netauto_runner_duration_seconds"\n'
    path = edited(tmp_path, Edit(name, name + "    scale: 1000\n", 2))
    code, out, _ = check(capsys, mapping=str(path), exporter=exporter_binary)
    assert code == EXIT_FAILED
    count, sent = 5 + BURST, 1.995 + 0.12 * BURST
    summary = f"counted {count} observation(s) summing to {sent * 1000:g}; sent {count} summing to {sent:g}"
    owner = find("runner.duration").module  # type: ignore[union-attr]
    fix = (
        f"    fix: this rule makes the exporter differ from the contract declared in `{owner}` "
        "(name, type, labels, unit): compare it with `netauto-statsd mapping`"
    )
    dogstatsd, plain = (
        line_of(path, '- match: "netauto.runner.duration"'),
        line_of(path, '- match: "netauto.runner.duration.'),
    )
    assert out.splitlines() == [
        f"{path}:{dogstatsd}: [dogstatsd] `netauto_runner_duration_seconds` {summary}",
        fix,
        f"{path}:{plain}: [statsd] `netauto_runner_duration_seconds` {summary}",
        fix,
        f"note: live proof against {exporter_binary} v0.30.0: {N} metrics x 2 wire format(s), {2 * N} contexts "
        "compared sample for sample",
        "check FAILED: 2 problem(s), 0 warning(s)",
    ]


def test_series_of_other_senders_rules_may_be_read_by_dashboards(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_exporter_on_path: None
) -> None:
    """A rule for another sender's metric makes its series (and a histogram rule's _bucket) known to queries."""
    histogram = (
        '  - match: "netops.push.*.seconds"\n    match_metric_type: observer\n    name: "netops_push_seconds"\n'
        '    help: "Push time."\n    labels:\n      group: "${1}"\n    histogram_options:\n      buckets: [1, 10]\n'
    )
    untyped = '  - match: "netops.size.*"\n    name: "netops_size_bytes"\n    help: "Size."\n'
    untyped += '    labels:\n      group: "${1}"\n'
    untyped += "    histogram_options:\n      buckets: [1, 10]\n"
    templated = '  - match: "netops.*.count"\n    name: "netops_${1}_total"\n'
    path = edited(tmp_path, Edit(DROP_COMMENT, TEAM_RULE + histogram + untyped + templated + DROP_COMMENT))
    dashboards = tmp_path / "dash"
    dashboards.mkdir()
    exprs = [
        "sum by (group) (rate(netops_backups_done_total[5m]))",
        "sum by (le, group) (rate(netops_push_seconds_bucket[5m]))",
        "sum(rate(netops_push_seconds_count[5m]))",
        "sum by (site) (rate(netops_backups_done_total[5m]))",
        "sum(rate(netops_backups_done_total_bucket[5m]))",
        "sum(rate(netops_size_bytes_bucket[5m]))",  # buckets without match_metric_type: a histogram
        "sum(rate(dropped[5m]))",  # the drop rule's name is no series
        "sum(rate(netops_x_total[5m]))",  # nor is a templated name
        'sum by (site) (rate(netauto_runs_created_total{protocol="ssh"}[5m]))',  # the catalog's labels stay
    ]
    panels = [{"title": f"P{i}", "targets": [{"expr": e}]} for i, e in enumerate(exprs)]
    (dashboards / "team.json").write_text(json.dumps({"panels": panels}))
    code, out, _ = check(capsys, mapping=str(path), dashboards=str(dashboards), offline=True)
    assert code == EXIT_FAILED
    found = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(str(dashboards))]
    assert found == [
        "[P3] grouping by 'site', which no selected series has",
        "[P4] unknown series netops_backups_done_total_bucket",
        "[P6] unknown series dropped",
        "[P7] unknown series netops_x_total",
    ]
    assert "warning: rule `netops.backup.*.done` matches no catalog metric" in out
    # without the team's rules, its series are unknown
    code, out, _ = check(capsys, dashboards=str(dashboards), offline=True)
    assert "[P0] unknown series netops_backups_done_total" in out


# ------------------------------------------------------------------ the static proofs without an exporter (fast)
def test_without_an_exporter_a_contract_finding_reads_the_dashboards_buckets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_exporter_on_path: None
) -> None:
    old = "    observer_type: histogram\n    histogram_options:\n" + OUTPUT_BUCKETS + "\n"
    path = edited(tmp_path, Edit(old, "    observer_type: summary\n", 0))
    code, out, _ = check(capsys, mapping=str(path), offline=True)
    assert code == EXIT_FAILED
    line = line_of(path, '- match: "netauto.runner.bytes"')
    assert (
        f"{path}:{line}: `runner.bytes` (DogStatsD) is a summary, but dashboards or alerts read "
        "`netauto_runner_processed_bytes_bucket`"
    ) in out
    empty = tmp_path / "none"
    empty.mkdir()
    code, out, _ = check(capsys, mapping=str(path), dashboards=str(empty), rules=str(empty), offline=True)
    assert code == EXIT_OK, out


def test_without_an_exporter_the_knob_lints_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_exporter_on_path: None
) -> None:
    path = edited(tmp_path, Edit("ttl: 2m", "ttl: 10s", 0))
    code, out, _ = check(capsys, mapping=str(path), offline=True)
    assert code == EXIT_FAILED
    line = line_of(path, '- match: "netauto.liveview.sessions"')
    assert (
        f"{path}:{line}: `netauto_liveview_sessions`: `ttl: 10s` is shorter than 30s (two scrapes): the series "
        "would flicker\n    fix: use `ttl: 2m` or longer"
    ) in out


def test_without_an_exporter_a_mapping_that_does_not_parse_stops_the_queries(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_exporter_on_path: None
) -> None:
    path = edited(tmp_path, Edit('  - match: "netauto.runner.stop"', '  - match: "netauto.runner.stop'))
    code, out, _ = check(capsys, mapping=str(path))
    assert code == EXIT_FAILED
    assert out.splitlines()[-3:] == [
        "note: dashboard and alert-rule queries were not checked: the mapping does not parse",
        "skipped: statsd_exporter not found on PATH (or pass --exporter): --check-config and the live proof",
        "check FAILED: 1 problem(s), 0 warning(s)",
    ]


def test_each_missing_package_of_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)
    assert missing_requirements(plain=False) == ["PyYAML"]
    monkeypatch.delitem(sys.modules, "ruamel.yaml", raising=False)
    monkeypatch.setitem(sys.modules, "ruamel", None)  # the parent package cannot be imported either
    assert missing_requirements(plain=False) == ["PyYAML", "ruamel.yaml"]


def test_strict_makes_a_warning_fail_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_exporter_on_path: None
) -> None:
    rule = '  - match: "legacy.*.count"\n    name: "legacy_count"\n'
    path = edited(tmp_path, Edit(DROP_COMMENT, rule + DROP_COMMENT))
    code, out, _ = check(capsys, mapping=str(path), offline=True)
    assert code == EXIT_OK and "warning: rule `legacy.*.count` matches no catalog metric" in out
    code, out, _ = check(capsys, mapping=str(path), offline=True, strict=True)
    assert code == EXIT_FAILED and out.splitlines()[-1].startswith("check FAILED: 0 problem(s), 1 warning(s)")


# ------------------------------------------------------------------ an exporter on PATH that cannot do the live proof
def on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str) -> str:
    """An executable `statsd_exporter` holding ``content``, alone on PATH (what `check` finds without --exporter)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    binary = folder / "statsd_exporter"
    binary.write_text(content)
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    return str(binary)


def test_a_statsd_exporter_on_path_that_cannot_run_is_a_finding_not_a_crash(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A broken download (executable, but no program the kernel can start) stops the live proof with one finding."""
    binary = on_path(monkeypatch, tmp_path, "not a program\n")
    code, out, _ = check(capsys)
    assert code == EXIT_FAILED
    assert out.splitlines() == [
        f"{MAPPING}:0: cannot run {binary}: [Errno 8] Exec format error: '{binary}'",
        "    fix: pass a statsd_exporter binary with --exporter",
        "check FAILED: 1 problem(s), 0 warning(s)",
    ]


def test_a_program_on_path_that_is_not_statsd_exporter_stops_the_live_proof(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """It accepts `--check-config` (exits 0) but is no exporter: the live proof says it could not start one."""
    binary = on_path(monkeypatch, tmp_path, "#!/bin/sh\nexit 0\n")
    code, out, _ = check(capsys)
    assert code == EXIT_FAILED
    assert out.splitlines() == [
        f"{MAPPING}:0: the live proof could not start the exporter: {binary}: not statsd_exporter "
        "(`--version` printed nothing)",
        "    fix: run it by hand to see why",
        "check FAILED: 1 problem(s), 0 warning(s)",
    ]


@pytest.mark.exporter
def test_the_plain_wire_is_proven_against_its_own_rules(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exporter_binary: str
) -> None:
    """Only the plain-StatsD rule of `runner.duration` is 1000x off: only the [statsd] half of the proof says so."""
    rule = '  - match: "netauto.runner.duration.*.*.*.*.*"\n    match_metric_type: observer\n'
    rule += '    name: "netauto_runner_duration_seconds"\n'
    path = edited(tmp_path, Edit(rule, rule + "    scale: 1000\n"))
    code, out, _ = check(capsys, mapping=str(path), exporter=exporter_binary)
    assert code == EXIT_FAILED
    count, sent = 5 + BURST, 1.995 + 0.12 * BURST
    lines = out.splitlines()
    assert lines[0] == (
        f"{path}:{line_of(path, rule.splitlines()[0].strip())}: [statsd] `netauto_runner_duration_seconds` counted "
        f"{count} observation(s) summing to {sent * 1000:g}; sent {count} summing to {sent:g}"
    )
    assert lines[-1] == "check FAILED: 1 problem(s), 0 warning(s)"


def test_a_statsd_exporter_that_fails_check_config_silently_says_no_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_path(monkeypatch, tmp_path, "#!/bin/sh\nexit 1\n")
    code, out, _ = check(capsys)
    assert code == EXIT_FAILED
    assert out.splitlines() == [
        f"{MAPPING}:0: statsd_exporter --check-config failed: (no output)",
        "    fix: fix what it names",
        "check FAILED: 1 problem(s), 0 warning(s)",
    ]


def test_a_statsd_exporter_whose_check_config_hangs_is_stopped_at_the_timeout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """check never hangs on a stuck binary: past CHECK_CONFIG_TIMEOUT it is a finding (0.5 s here, 60 s in use)."""
    import netauto_statsd.tooling.check as check_module

    monkeypatch.setattr(check_module, "CHECK_CONFIG_TIMEOUT", 0.5)
    binary = on_path(monkeypatch, tmp_path, "#!/bin/sh\nexec /bin/sleep 30\n")
    code, out, _ = check(capsys)
    assert code == EXIT_FAILED
    command = [binary, f"--statsd.mapping-config={MAPPING}", "--check-config"]
    assert out.splitlines() == [
        f"{MAPPING}:0: cannot run {binary}: Command '{command}' timed out after 0.5 seconds",
        "    fix: pass a statsd_exporter binary with --exporter",
        "check FAILED: 1 problem(s), 0 warning(s)",
    ]


@pytest.mark.exporter
def test_an_exporter_of_unknown_version_is_named_without_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, exporter_binary: str
) -> None:
    """Without `go` to read the module version, a `go install`-ed exporter prints none: the note names no version."""
    monkeypatch.setenv("PATH", "/nonexistent")
    code, out, _ = check(capsys, exporter=exporter_binary, plain=False)
    assert code == EXIT_OK, out
    assert out.splitlines()[0] == (
        f"note: live proof against {exporter_binary}: {N} metrics x 1 wire format(s), {N} contexts compared "
        "sample for sample"
    )


def test_an_empty_mappings_list_fails_the_contract_and_the_knobs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_exporter_on_path: None
) -> None:
    """`mappings: []` parses; it used to skip the contract and the knob lints and get "check OK" offline."""
    path = tmp_path / "statsd_mapping.yml"
    path.write_text("mappings: []\n")
    code, out, _ = check(capsys, mapping=str(path), dashboards=str(tmp_path), rules=str(tmp_path), offline=True)
    assert code == EXIT_FAILED
    lines = out.splitlines()
    assert lines[:2] == [
        f"{path}:0: catalog metric `runner.start` (DogStatsD `netauto.runner.start`) is not mapped",
        f"    fix: run `netauto-statsd mapping --update {path}` (adds its rule before the final drop rule)",
    ]
    assert f"{path}:0: no final drop rule: unmapped names would reach Prometheus under mangled default names" in lines
    assert lines[-1] == f"check FAILED: {2 * N + 1} problem(s), 0 warning(s)"


def test_the_contracts_fix_repeats_the_catalog_modules_given(tmp_path: Path, no_exporter_on_path: None) -> None:
    """An unmapped metric of a `--catalog` module: the suggested `mapping --update` names every module again."""
    from netauto_statsd.tooling.check import _judge
    from tests.tooling.bridge.appmetrics import APP, HITS

    report = Report()
    options = CheckOptions(
        mapping=str(MAPPING), dashboards=str(tmp_path), rules=str(tmp_path), catalog=(APP, "tests.other")
    )
    _judge(options, MAPPING, [HITS], None, report)
    fixes = {finding.fix for finding in report.errors}
    assert (
        f"run `netauto-statsd mapping --catalog {APP} --catalog tests.other --update {MAPPING}` "
        "(adds its rule before the final drop rule)" in fixes
    )


@pytest.mark.exporter
def test_a_lint_warning_lets_the_live_proof_run_and_is_kept(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exporter_binary: str
) -> None:
    """Twins with different ttls are a warning, not an error: the live proof still runs, and both are reported."""
    sessions = 'help: "Connected live-view sessions (per process, summed)."\n    ttl: 2m'
    path = edited(tmp_path, Edit(sessions, sessions.replace("2m", "3m")))
    code, out, _ = check(capsys, mapping=str(path), exporter=exporter_binary, plain=False)
    assert code == EXIT_OK
    twin, first = (
        line_of(path, '- match: "netauto.liveview.sessions.'),
        line_of(path, '- match: "netauto.liveview.sessions"'),
    )
    assert out.splitlines() == [
        f"{path}:{twin}: warning: `netauto_liveview_sessions`: ttl 2m here, 3m in its twin at line {first}",
        "    fix: give both rules for one series the same ttl",
        f"note: live proof against {exporter_binary} v0.30.0: {N} metrics x 1 wire format(s), {N} contexts compared "
        "sample for sample",
        "check OK: 0 problem(s), 1 warning(s)",
    ]
