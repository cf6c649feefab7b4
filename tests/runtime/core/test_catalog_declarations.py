"""The declaration API and the registry: what an app's ``counter()`` / ``histogram()`` / ``gauge()`` declares.

An app declares its metrics in its own module with the same functions as the
built-in families; they join :data:`~netauto_statsd.catalog.BY_NAME` and emit
like the built-ins (here to a real loopback UDP socket). Conflicting
declarations fail at import time, naming both modules. Every test restores the
registry it found.

The declaring module a ``counter()`` records is tested in ``test_declaring_module.py``.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netauto_statsd import catalog
from netauto_statsd.catalog import CatalogError, Counter, Gauge, Histogram, Metric, Tag, model, runner, throughput
from netauto_statsd.emitter import Emitter, get_emitter, set_emitter
from tests.runtime.core.wire import Line, UdpSink, parse_dogstatsd, split_lines

MakeEmitter = Callable[..., Emitter]
KIND = Tag("kind", ("full", "delta"), "what the job syncs")
BUILTIN_GROUPS = ("runner", "throughput", "liveview", "http", "rq", "db")


@pytest.fixture(autouse=True)
def _registry_restored() -> Iterator[None]:
    """Each test starts with the built-in families only (other tests may have loaded app catalogs);
    whatever it declares leaves the registry afterwards."""
    before = dict(catalog.BY_NAME)
    builtin = {id(v) for family in catalog.FAMILIES for v in vars(family).values() if isinstance(v, Metric)}
    catalog.BY_NAME.clear()
    catalog.BY_NAME.update((name, metric) for name, metric in before.items() if id(metric) in builtin)
    yield
    catalog.BY_NAME.clear()
    catalog.BY_NAME.update(before)


def _sent(emitter: Emitter, sink: UdpSink) -> list[Line]:
    emitter.flush()
    return [parse_dogstatsd(text) for text in split_lines(sink.drain())]


def _counter(name: str, module: str, help: str = "Jobs.", series: str = "") -> Counter:
    return Counter(name, "counter", (KIND,), "1", help, series or name.replace(".", "_") + "_total", module=module)


# ---------------------------------------------------------------- declaration
def test_an_app_counter_gets_the_documented_defaults_and_emits(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    jobs = catalog.counter("sync.jobs", tags=[KIND], help="Sync jobs run.", prometheus_name="sync_jobs_total")
    assert type(jobs) is Counter
    assert (jobs.name, jobs.type, jobs.tags, jobs.tag_keys) == ("sync.jobs", "counter", (KIND,), ("kind",))
    assert (jobs.unit, jobs.help, jobs.prometheus_name) == ("1", "Sync jobs run.", "sync_jobs_total")
    assert (jobs.max_combinations, jobs.area, jobs.per_process, jobs.ttl, jobs.buckets) == (500, "app", False, "", ())
    assert catalog.find("sync.jobs") is jobs and catalog.get("sync.jobs") is jobs
    assert catalog.all_metrics()[-1] is jobs and catalog.BY_NAME["sync.jobs"] is jobs

    set_emitter(make_emitter(sink.port))
    jobs.inc(kind="full")
    jobs.inc(2, kind="full")
    jobs.inc(kind="delta")
    assert sorted((line.name, line.values, line.tags) for line in _sent(get_emitter(), sink)) == [
        ("netauto.sync.jobs", (1.0,), (("kind", "delta"), ("env", "dev"), ("service", "netauto"))),
        ("netauto.sync.jobs", (3.0,), (("kind", "full"), ("env", "dev"), ("service", "netauto"))),
    ]


def test_every_declaration_function_records_a_declaring_module_name() -> None:
    """A dotted name (which one: ``test_declaring_module.py``), never missing: ``check``, the docs and
    ``is_builtin`` read it for every metric."""
    declared = (
        catalog.counter("sync.jobs", help="Jobs.", prometheus_name="sync_jobs_total"),
        catalog.histogram("sync.took", unit="seconds", help="Took.", prometheus_name="sync_took_seconds", buckets=[1]),
        catalog.gauge("sync.depth", help="Depth.", prometheus_name="sync_depth"),
    )
    for metric in declared:
        assert isinstance(metric.module, str) and metric.module.replace("_", "a").replace(".", "a").isalnum()
        assert isinstance(catalog.is_builtin(metric), bool)


def test_an_app_counter_takes_every_field_given() -> None:
    jobs = catalog.counter(
        "sync.bytes",
        unit="bytes",
        help="Bytes synced.",
        prometheus_name="sync_bytes_total",
        max_combinations=7,
        area="sync",
    )
    assert (jobs.tags, jobs.unit, jobs.max_combinations, jobs.area) == ((), "bytes", 7, "sync")


def test_an_app_gauge_is_per_process_with_a_ttl_by_default(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    depth = catalog.gauge("sync.depth", tags=(KIND,), help="Queued syncs.", prometheus_name="sync_depth")
    assert type(depth) is Gauge
    assert (depth.type, depth.unit, depth.per_process, depth.ttl) == ("gauge", "1", True, "2m")
    assert (depth.max_combinations, depth.area, depth.help, depth.prometheus_name) == (
        500,
        "app",
        "Queued syncs.",
        "sync_depth",
    )
    assert depth.label_names() == ("env", "kind", "process", "service")

    set_emitter(make_emitter(sink.port))
    depth.set(4, kind="full")
    depth.add(-1, kind="full")
    (line,) = _sent(get_emitter(), sink)
    assert (line.name, line.type, line.values[-1]) == ("netauto.sync.depth", "g", 3.0)
    assert line.tag_dict["process"].endswith(f"-{os.getpid()}")


def test_a_gauge_that_is_not_per_process_has_no_ttl_and_no_process_label() -> None:
    shared = catalog.gauge(
        "sync.limit",
        unit="bytes",
        help="Configured limit.",
        prometheus_name="sync_limit_bytes",
        per_process=False,
        ttl="5m",
        max_combinations=3,
        area="sync",
    )
    assert (shared.per_process, shared.ttl, shared.unit, shared.max_combinations, shared.area) == (
        False,
        "",
        "bytes",
        3,
        "sync",
    )
    assert shared.label_names() == ("env", "service")
    kept = catalog.gauge("sync.level", help="Level.", prometheus_name="sync_level", ttl="30s")
    assert (kept.per_process, kept.ttl) == (True, "30s")


def test_an_app_histogram_keeps_float_buckets_and_emits(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    took = catalog.histogram(
        "sync.duration",
        tags=(KIND,),
        unit="seconds",
        help="Sync time.",
        prometheus_name="sync_duration_seconds",
        buckets=[1, 2.5, 10],
    )
    assert type(took) is Histogram
    assert took.buckets == (1.0, 2.5, 10.0) and all(type(b) is float for b in took.buckets)
    assert (took.type, took.unit, took.max_combinations, took.area) == ("histogram", "seconds", 500, "app")
    assert (took.help, took.prometheus_name, took.per_process, took.ttl) == (
        "Sync time.",
        "sync_duration_seconds",
        False,
        "",
    )
    other = catalog.histogram(
        "sync.size",
        unit="bytes",
        help="Size.",
        prometheus_name="sync_size_bytes",
        buckets=(),
        max_combinations=9,
        area="sync",
    )
    assert (other.tags, other.max_combinations, other.area) == ((), 9, "sync")

    set_emitter(make_emitter(sink.port))
    took.observe(0.5, kind="delta")
    took.observe(2, kind="delta")
    for size in (10, 20, 30):  # tagless: from the second call on, through the child kept by the first
        other.observe(size)
    lines = {line.name: line for line in _sent(get_emitter(), sink)}
    assert (lines["netauto.sync.duration"].type, lines["netauto.sync.duration"].values) == ("h", (0.5, 2.0))
    assert lines["netauto.sync.duration"].tag_dict["kind"] == "delta"
    assert lines["netauto.sync.size"].values == (10.0, 20.0, 30.0)


# ------------------------------------------------------------------ conflicts
def test_declaring_the_same_metric_again_returns_the_first_object() -> None:
    first = catalog.declare(_counter("sync.jobs", "tests.app"))
    again = _counter("sync.jobs", "tests.app")
    assert again is not first and catalog.declare(again) is first
    assert catalog.all_metrics().count(first) == 1


def test_a_different_metric_under_a_taken_name_is_refused_naming_both_modules() -> None:
    catalog.declare(_counter("sync.jobs", "tests.app_one"))
    with pytest.raises(CatalogError) as raised:
        catalog.declare(_counter("sync.jobs", "tests.app_two", help="Other help."))
    assert str(raised.value) == (
        "metric 'sync.jobs' declared in tests.app_two is already declared differently in tests.app_one"
    )
    assert catalog.get("sync.jobs").module == "tests.app_one"


def test_a_metric_producing_a_taken_series_is_refused_naming_both() -> None:
    catalog.declare(_counter("sync.jobs", "tests.app_one", series="sync_jobs_total"))
    catalog.declare(_counter("sync.more", "tests.app_one", series="sync_more_total"))
    # the series taken by a metric in the middle of the registry, then by the last one
    with pytest.raises(CatalogError) as raised:
        catalog.declare(_counter("sync.stops", "tests.app_two", series="netauto_runner_stops_total"))
    assert str(raised.value) == (
        f"series 'netauto_runner_stops_total' of 'sync.stops' (tests.app_two) is already produced "
        f"by 'runner.stop' ({runner.STOPS.module})"
    )
    with pytest.raises(CatalogError) as raised:
        catalog.declare(_counter("sync.again", "tests.x", series="sync_more_total"))
    assert str(raised.value).endswith("is already produced by 'sync.more' (tests.app_one)")
    assert catalog.find("sync.stops") is None and catalog.find("sync.again") is None


# -------------------------------------------------------------- the registry
@pytest.mark.parametrize(
    ("module", "builtin"),
    [
        ("netauto_statsd.catalog", True),
        ("netauto_statsd.catalog.runner", True),
        ("netauto_statsd.catalogue", False),
        ("netauto_statsd.catalog_app", False),
        ("netauto_statsd", False),
        ("app.netauto_statsd.catalog", False),
    ],
)
def test_only_the_catalog_package_is_builtin(module: str, builtin: bool) -> None:
    assert catalog.is_builtin(_counter("sync.jobs", module)) is builtin


def test_app_metrics_are_those_declared_outside_the_library() -> None:
    app = catalog.declare(_counter("sync.jobs", "tests.app"))
    library = catalog.declare(_counter("sync.more", "netauto_statsd.catalog.extra"))
    later = catalog.declare(_counter("sync.last", "netauto_statsd.catalog_app"))
    assert catalog.app_metrics()[-2:] == (app, later)
    assert library not in catalog.app_metrics() and library in catalog.all_metrics()


def test_groups_are_the_families_then_app_then_app_areas_never_client() -> None:
    assert catalog.groups() == (*BUILTIN_GROUPS, "app")
    catalog.declare(Counter("sync.jobs", "counter", (), "1", "", "sync_jobs_total", area="sync"))
    catalog.declare(Counter("sync.more", "counter", (), "1", "", "sync_more_total", area="sync"))
    assert catalog.groups() == (*BUILTIN_GROUPS, "sync", "app")
    catalog.declare(Counter("sync.last", "counter", (), "1", "", "sync_last_total", area="app"))
    assert catalog.groups() == (*BUILTIN_GROUPS, "sync", "app")


def test_find_returns_none_and_get_raises_for_an_undeclared_name() -> None:
    assert catalog.find("sync.nothing") is None
    with pytest.raises(KeyError):
        catalog.get("sync.nothing")
    assert catalog.find("runner.start") is runner.STARTS and catalog.get("runner.start") is runner.STARTS


def test_wire_name_prefixes_the_namespace_unless_empty() -> None:
    assert catalog.wire_name(runner.STARTS) == "netauto.runner.start"
    assert catalog.wire_name(runner.STARTS, "corp") == "corp.runner.start"
    assert catalog.wire_name(runner.STARTS, "") == "runner.start"


def test_exposed_series_of_each_kind() -> None:
    assert catalog.exposed_series(runner.DURATION) == (
        "netauto_runner_duration_seconds_bucket",
        "netauto_runner_duration_seconds_sum",
        "netauto_runner_duration_seconds_count",
    )
    assert catalog.exposed_series(runner.STARTS) == ("netauto_runner_starts_total",)
    assert catalog.exposed_series(catalog.liveview.SESSIONS) == ("netauto_liveview_sessions",)


# ------------------------------------------------------------- load()
@pytest.fixture
def app_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], str]:
    """Write a module ``name`` with ``source`` on sys.path; forgotten from sys.modules afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(source)
        written.append(name)
        return name

    yield write  # type: ignore[misc]
    for name in written:
        sys.modules.pop(name, None)


def test_load_imports_app_catalog_modules_and_returns_every_metric(app_modules: Callable[[str, str], str]) -> None:
    one = app_modules(
        "netauto_test_catalog_one",
        "from netauto_statsd.catalog import counter\n"
        "JOBS = counter('sync.jobs', help='Jobs.', prometheus_name='sync_jobs_total', area='sync')\n",
    )
    two = app_modules(
        "netauto_test_catalog_two",
        "from netauto_statsd.catalog import gauge\n"
        "DEPTH = gauge('sync.depth', help='Depth.', prometheus_name='sync_depth')\n",
    )
    everything = catalog.load([one, two])
    assert everything == catalog.all_metrics()
    assert [m.name for m in everything[-2:]] == ["sync.jobs", "sync.depth"]
    assert catalog.load([]) == catalog.all_metrics()


def test_load_names_a_module_that_cannot_be_imported(app_modules: Callable[[str, str], str]) -> None:
    with pytest.raises(CatalogError) as raised:
        catalog.load(["netauto_test_no_such_catalog"])
    assert str(raised.value) == (
        "cannot import catalog module 'netauto_test_no_such_catalog': "
        "ModuleNotFoundError: No module named 'netauto_test_no_such_catalog'"
    )
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)
    broken = app_modules("netauto_test_catalog_broken", "raise RuntimeError('half-written catalog')\n")
    with pytest.raises(CatalogError) as raised:
        catalog.load([broken])
    assert str(raised.value) == (
        "cannot import catalog module 'netauto_test_catalog_broken': RuntimeError: half-written catalog"
    )


def test_load_passes_a_conflicting_declaration_through_unwrapped(app_modules: Callable[[str, str], str]) -> None:
    clash = app_modules(
        "netauto_test_catalog_clash",
        "from netauto_statsd.catalog import counter\n"
        "STARTS = counter('runner.start', help='Mine.', prometheus_name='my_starts_total')\n",
    )
    with pytest.raises(CatalogError) as raised:
        catalog.load([clash])
    assert str(raised.value).startswith("metric 'runner.start' declared in ")
    assert str(raised.value).endswith(f" is already declared differently in {runner.STARTS.module}")
    assert raised.value.__cause__ is None


# ------------------------------------------------------------- the model
def test_a_tags_sample_value_is_its_example_else_its_first_value_else_x() -> None:
    assert Tag("site", ("a", "b"), example="par1").sample_value() == "par1"
    assert Tag("protocol", ("ssh", "telnet")).sample_value() == "ssh"
    assert Tag("device").sample_value() == "x"
    assert Tag("device", ()).sample_value() == "x"


def test_metric_objects_without_the_emitter_say_what_is_missing() -> None:
    with pytest.raises(AttributeError) as raised:
        model._Runtime().count  # noqa: B018 - the attribute access is the test
    assert str(raised.value) == "metric objects need netauto_statsd.emitter imported first (no 'count' yet)"


def test_label_names_are_sorted_with_the_constant_and_process_tags() -> None:
    assert runner.STOPS.label_names() == ("env", "protocol", "service", "site", "status")
    assert catalog.liveview.SESSIONS.label_names() == ("env", "process", "service", "view")


def test_a_metric_hashes_as_its_name_and_pickles_only_its_contract(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    set_emitter(make_emitter(sink.port))
    created = throughput.RUNS_CREATED
    created.inc(site="par1", protocol="ssh")
    created.inc(site="par1", protocol="ssh")  # kept child and generated keyword function now exist
    assert hash(created) == hash("run.created")
    assert set(created.__getstate__()) == {
        "name",
        "type",
        "tags",
        "unit",
        "help",
        "prometheus_name",
        "buckets",
        "max_combinations",
        "per_process",
        "ttl",
        "area",
        "module",
        "tag_keys",
    }
    copy = pickle.loads(pickle.dumps(created))
    assert copy == created and copy._kids == {}
    copy.inc(5, site="par1", protocol="ssh")  # the copy emits too
    copy.inc(site="par1", protocol="ssh")
    (line,) = [x for x in _sent(get_emitter(), sink) if x.name == "netauto.run.created"]
    assert line.values == (8.0,)
