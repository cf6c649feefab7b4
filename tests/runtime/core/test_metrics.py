"""Metric objects: declared once, emitted through ``inc`` / ``observe`` / ``set`` / ``add`` and bound children."""

from __future__ import annotations

import os

import pytest

from netauto_statsd import catalog
from netauto_statsd.catalog import CatalogError, Counter, Gauge, Histogram, db, liveview, runner, throughput
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, configure, set_emitter
from netauto_statsd.testing import Recorder, recording
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines

RUN = {"site": "par1", "protocol": "ssh"}


def test_each_builtin_family_is_one_module_of_typed_constants() -> None:
    for family in catalog.FAMILIES:
        declared = [v for v in vars(family).values() if isinstance(v, catalog.Metric)]
        assert declared, family.__name__
        for metric in declared:
            assert metric.module == family.__name__ and metric.area == family.AREA
            assert isinstance(metric, {"counter": Counter, "histogram": Histogram, "gauge": Gauge}[metric.type])
    assert [m.name for m in catalog.METRICS] == [m.name for f in catalog.FAMILIES for m in vars(f).values()
                                                 if isinstance(m, catalog.Metric)]  # fmt: skip
    assert catalog.groups()[:7] == ("runner", "throughput", "liveview", "http", "rq", "db", "app")


def test_metric_objects_emit_every_kind(statsd_recorder: Recorder) -> None:
    throughput.RUNS_CREATED.inc(**RUN)
    throughput.CHUNK_BYTES.inc(512, **RUN)
    runner.DURATION.observe(0.25, **RUN, status="ok")
    liveview.SESSIONS.set(3, view="/v")
    liveview.SESSIONS.add(-1, view="/v")
    assert statsd_recorder.total("run.created", site="par1") == 1
    assert statsd_recorder.total("chunk.bytes") == 512
    assert statsd_recorder.values("runner.duration", status="ok") == [0.25]
    assert statsd_recorder.gauge("liveview.sessions", view="/v") == 2


def test_bound_children_emit_like_unbound_calls(statsd_recorder: Recorder) -> None:
    created = throughput.RUNS_CREATED.bind(**RUN)
    duration = runner.DURATION.bind(**RUN, status="ok")
    sessions = liveview.SESSIONS.bind(view="/v")
    for _ in range(3):
        created.inc()
        duration.observe(0.5)
        sessions.add(1)
    sessions.set(7)
    assert statsd_recorder.total("run.created", **RUN) == 3
    assert statsd_recorder.values("runner.duration") == [0.5, 0.5, 0.5]
    assert statsd_recorder.gauge("liveview.sessions", view="/v") == 7


def test_strict_mode_refuses_a_bad_binding_at_bind_time(statsd_recorder: Recorder) -> None:
    with pytest.raises(CatalogError, match=r"tag 'region' is not declared for 'run\.created'"):
        throughput.RUNS_CREATED.bind(**RUN, region="eu")
    with pytest.raises(CatalogError, match="counters cannot go down"):
        throughput.RUNS_CREATED.bind(**RUN).inc(-1)


def test_a_bound_child_follows_the_process_wide_emitter_when_it_is_replaced() -> None:
    created = throughput.RUNS_CREATED.bind(**RUN)  # bound while another emitter was installed
    with recording() as first:
        created.inc()
    with recording() as second:
        created.inc(2)
        created.inc()
    assert first.total("run.created") == 1 and second.total("run.created") == 3


def test_a_bound_child_sends_through_configure_and_counts_exactly() -> None:
    sink = UdpSink()
    try:
        configure(host="127.0.0.1", port=sink.port, flush_interval=60)
        created = throughput.RUNS_CREATED.bind(**RUN)
        waits = db.CHECKOUT_WAIT.bind(pool="main")
        for _ in range(1000):
            created.inc()
            waits.observe(0.001)
        configure(host="127.0.0.1", port=sink.port, flush_interval=60)  # closes (and flushes) the first
        created.inc(5)
        set_emitter(None).close()  # type: ignore[union-attr]
        lines = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
    finally:
        sink.close()
    counts = [line.values[0] for line in lines if line.name == "netauto.run.created"]
    assert counts == [1000, 5]
    assert sum(len(line.values) for line in lines if line.name == "netauto.db.pool.checkout_wait") == 1000


def test_a_forked_child_re_resolves_per_process_gauges() -> None:
    sink = UdpSink()
    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, flush_interval=60))
    previous = set_emitter(emitter)
    try:
        sessions = liveview.SESSIONS.bind(view="/v")
        sessions.set(1)
        emitter.flush()
        pid = os.fork()
        if pid == 0:  # child: the same bound object must carry the child's process tag
            code = 0
            try:
                sessions.set(2)
                emitter.flush()
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        lines = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
    finally:
        set_emitter(previous)
        emitter.close()
        sink.close()
    sessions = [line for line in lines if line.name == "netauto.liveview.sessions"]
    processes = {line.values[-1]: line.tag_dict["process"] for line in sessions}
    assert set(processes) == {1.0, 2.0}
    assert processes[1.0].endswith(f"-{os.getpid()}") and processes[2.0].endswith(f"-{pid}")


def test_histogram_time_records_seconds(statsd_recorder: Recorder) -> None:
    @runner.DURATION.time(**RUN)
    def work() -> str:
        return "done"

    assert work() == "done"
    (sample,) = statsd_recorder.find("runner.duration", status="ok")
    assert 0 <= sample.value < 5


def test_repeated_keyword_calls_keep_every_check(statsd_recorder: Recorder) -> None:
    """The generated keyword fast path (emitter.fastcall) treats odd calls exactly like the first one."""
    for _ in range(3):  # first call installs the generated function, later ones use it
        throughput.RUNS_CREATED.inc(**RUN)
        throughput.RUNS_CREATED.inc(2, site="lon2", protocol="ssh")
        throughput.DEVICE_RUNS.inc(device=7)  # not text: resolved every time, rendered as "7"
    assert "inc" in vars(throughput.RUNS_CREATED)
    assert statsd_recorder.total("run.created", site="par1") == 3
    assert statsd_recorder.total("run.created", site="lon2") == 6
    assert statsd_recorder.total("run.device", device="7") == 3
    with pytest.raises(CatalogError, match="needs tag 'protocol'"):
        throughput.RUNS_CREATED.inc(site="par1")
    with pytest.raises(CatalogError, match="is not declared"):
        throughput.RUNS_CREATED.inc(**RUN, region="eu")
    with pytest.raises(CatalogError, match="counters cannot go down"):
        throughput.RUNS_CREATED.inc(-1, **RUN)


def test_a_used_metric_still_pickles_and_compares_by_its_contract() -> None:
    import pickle

    with recording():
        throughput.RUNS_CREATED.inc(**RUN)
        throughput.RUNS_CREATED.inc(**RUN)
    copy = pickle.loads(pickle.dumps(throughput.RUNS_CREATED))
    assert copy == throughput.RUNS_CREATED and hash(copy) == hash(throughput.RUNS_CREATED)
    assert "inc" not in vars(copy)
