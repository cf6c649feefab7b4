"""Golden wire tests: the exact bytes each metric type puts on a real loopback UDP socket.

DogStatsD (the default transport) and plain StatsD (``NETAUTO_STATSD_TRANSPORT=statsd``),
constant tags under hostile DD_* environments, connection variables, the kill
switch and the namespace. The last tests replay the same lines into a real
statsd_exporter to prove they mean what we think (negative gauges, |ms x1000).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netauto_statsd.config import from_env
from netauto_statsd.emitter import Emitter, configure
from netauto_statsd.tags import normalise_value
from netauto_statsd.wire.base import format_number, pack_values
from tests.runtime.core.wire import PLAIN_LINE, UdpSink, closed_udp_port, parse_dogstatsd, split_lines
from tests.support import Exporter

MakeEmitter = Callable[..., Emitter]
RUN = {"site": "par1", "protocol": "ssh"}
RUN_OK = {**RUN, "status": "ok"}
VIEW = {"view": "/runs/{run_id}/live"}
QUEUE = {"queue": "default", "state": "queued"}
SUFFIX = "env:dev,service:netauto"


def process_tag() -> str:
    """The per-process tag value the emitter adds to per-process gauges (host-pid, normalised)."""
    return normalise_value(f"{socket.gethostname()}-{os.getpid()}")


# ----------------------------------------------------------------- DogStatsD
def test_counter_lines_sum_per_context_and_are_sent_once(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port)
    emitter.increment("run.created", tags=RUN)
    emitter.increment("run.created", 2, tags=RUN)
    emitter.increment("chunk.bytes", 1.5, tags={"site": "lon2", "protocol": "netconf"})

    assert emitter.flush() == 2
    assert sink.drain() == [
        b"netauto.run.created:3|c|#site:par1,protocol:ssh,env:dev,service:netauto\n"
        b"netauto.chunk.bytes:1.5|c|#site:lon2,protocol:netconf,env:dev,service:netauto\n"
    ]
    # a counter is a delta: once sent, it is gone
    assert emitter.flush() == 0
    assert sink.drain() == []


def test_gauge_lines_negative_values_are_set_to_zero_then_moved(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port)
    emitter.gauge("liveview.sessions", 5, tags=VIEW)
    emitter.gauge("liveview.sessions", 7, tags=VIEW)  # last value wins
    emitter.gauge("rq.queue.jobs", -3, tags=QUEUE)  # absolute -3: '-3' alone would mean 'minus 3'
    emitter.gauge_add("rq.workers", 2, tags={"queue": "default", "state": "busy"})
    emitter.gauge_add("rq.workers", -0.5, tags={"queue": "default", "state": "busy"})

    emitter.flush()
    p = process_tag()
    expected = (
        f"netauto.liveview.sessions:7|g|#view:/runs/_run_id_/live,process:{p},{SUFFIX}\n"
        f"netauto.rq.queue.jobs:0|g|#queue:default,state:queued,process:{p},{SUFFIX}\n"
        f"netauto.rq.queue.jobs:-3|g|#queue:default,state:queued,process:{p},{SUFFIX}\n"
        f"netauto.rq.workers:1.5|g|#queue:default,state:busy,process:{p},{SUFFIX}\n"
    ).encode()
    assert sink.drain() == [expected]
    # per-process gauges are re-sent at every flush while they live (the mapping gives them a ttl)
    emitter.flush()
    assert sink.drain() == [expected]


def test_histogram_values_of_one_context_are_packed_into_one_line(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port)
    for value in (0.5, 1.25, 3, 0.001):
        emitter.histogram("runner.duration", value, tags=RUN_OK)
    emitter.histogram("runner.bytes", 4096, tags=RUN_OK)
    emitter.histogram("runner.duration", 2, tags={**RUN, "status": "error"})

    assert emitter.flush() == 6
    assert sink.drain() == [
        b"netauto.runner.duration:0.5:1.25:3:0.001|h|#site:par1,protocol:ssh,status:ok,env:dev,service:netauto\n"
        b"netauto.runner.bytes:4096|h|#site:par1,protocol:ssh,status:ok,env:dev,service:netauto\n"
        b"netauto.runner.duration:2|h|#site:par1,protocol:ssh,status:error,env:dev,service:netauto\n"
    ]


def test_one_flush_orders_counters_gauges_histograms(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port)
    emitter.histogram("run.output_bytes", 10, tags=RUN)
    emitter.gauge("liveview.sessions", 1, tags=VIEW)
    emitter.increment("run.created", tags=RUN)
    emitter.flush()
    lines = split_lines(sink.drain())
    assert [line.split(":", 1)[0] for line in lines] == [
        "netauto.run.created",
        "netauto.liveview.sessions",
        "netauto.run.output_bytes",
    ]


@pytest.mark.parametrize("max_packet", [300, 512, 1432])
def test_histogram_batches_split_into_datagrams_within_max_packet(
    sink: UdpSink, make_emitter: MakeEmitter, max_packet: int
) -> None:
    # long constant tags eat into the room left for values: they must be accounted for
    emitter = make_emitter(sink.port, max_packet=max_packet, env="e" * 40, service="s" * 40)
    values = [i / 1000 for i in range(600)] + [123456.789, 1e-7, 2**40]
    for value in values:
        emitter.histogram("runner.duration", value, tags={**RUN_OK, "site": "x" * 64})
    for i in range(40):
        emitter.increment("run.created", tags={"site": f"site{i}", "protocol": "ssh"})

    emitter.flush()
    datagrams = sink.drain()
    assert len(datagrams) > 1
    assert max(len(d) for d in datagrams) <= max_packet
    lines = [parse_dogstatsd(line) for line in split_lines(datagrams)]
    histogram_lines = [line for line in lines if line.type == "h"]
    assert len(histogram_lines) > 1, "the batch should need several lines"
    assert [v for line in histogram_lines for v in line.values] == values  # nothing lost, order kept
    assert all(line.tag_dict["env"] == "e" * 40 for line in lines)
    assert sorted(line.tag_dict["site"] for line in lines if line.type == "c") == sorted(f"site{i}" for i in range(40))


@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**20), 10**20), max_size=300),
    st.integers(24, 2000),  # 24: the longest float repr
)
def test_packed_histogram_values_are_exact_and_bounded(values: list[float], room: int) -> None:
    chunks = pack_values(values, room)
    assert all(0 < len(chunk) <= room for chunk in chunks)
    texts = [text for chunk in chunks for text in chunk.split(":")]
    assert [float(text) for text in texts] == [float(v) for v in values]
    # the same shortest exact text as single values get (integral floats without '.0')
    assert [float(text) for text in texts] == [float(format_number(v)) for v in values]
    assert not any(text.endswith(".0") for text in texts)


def test_constant_tags_are_exactly_ours_whatever_the_datadog_environment(
    sink: UdpSink, make_emitter: MakeEmitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = {
        "DATADOG_TAGS": "team:netops,version:9",
        "DD_VERSION": "1.2.3",
        "DD_ENTITY_ID": "entity-42",
        "DD_EXTERNAL_ENV": "it-false,cn-app,pu-1234",
        "DD_ORIGIN_DETECTION_ENABLED": "true",
        "DD_ENV": "prod",
        "DD_SERVICE": "netauto-api",
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_DOGSTATSD_PORT": str(sink.port),
    }
    for key, value in hostile.items():
        monkeypatch.setenv(key, value)

    # control: datadog's own client really picks these variables up in this process
    from datadog.dogstatsd.base import DogStatsd

    raw = DogStatsd(disable_telemetry=True)
    raw.increment("control", tags=["a:b"])
    raw.close_socket()
    (control,) = split_lines(sink.drain())
    assert "team:netops" in control and "version:1.2.3" in control and "|e:it-false" in control

    emitter = make_emitter(settings=from_env(), flush_interval=60)
    emitter.increment("run.created", tags=RUN)
    emitter.histogram("runner.duration", 0.25, tags=RUN_OK)
    emitter.gauge("rq.queue.jobs", 4, tags=QUEUE)
    emitter.flush()
    p = process_tag()
    assert sink.drain() == [
        (
            "netauto.run.created:1|c|#site:par1,protocol:ssh,env:prod,service:netauto-api\n"
            f"netauto.rq.queue.jobs:4|g|#queue:default,state:queued,process:{p},env:prod,service:netauto-api\n"
            "netauto.runner.duration:0.25|h|#site:par1,protocol:ssh,status:ok,env:prod,service:netauto-api\n"
        ).encode()
    ]


def test_our_env_and_service_variables_win_over_datadogs(
    sink: UdpSink, make_emitter: MakeEmitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_ENV", "prod")
    monkeypatch.setenv("DD_SERVICE", "dd-name")
    monkeypatch.setenv("NETAUTO_STATSD_ENV", "staging.eu")  # normalised: '.' would be unsafe elsewhere
    monkeypatch.setenv("NETAUTO_STATSD_SERVICE", "netauto")
    emitter = make_emitter(sink.port, settings=from_env(), flush_interval=60)
    emitter.increment("run.created", tags=RUN)
    emitter.flush()
    assert sink.drain() == [b"netauto.run.created:1|c|#site:par1,protocol:ssh,env:staging_eu,service:netauto\n"]


# -------------------------------------------------------- connection settings
@pytest.mark.parametrize("transport", ["dogstatsd", "statsd"])
def test_dd_dogstatsd_url_wins_over_agent_host_and_port(
    sink: UdpSink, make_emitter: MakeEmitter, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    other = UdpSink()
    try:
        monkeypatch.setenv("NETAUTO_STATSD_TRANSPORT", transport)
        monkeypatch.setenv("DD_AGENT_HOST", "127.0.0.1")
        monkeypatch.setenv("DD_DOGSTATSD_PORT", str(other.port))
        monkeypatch.setenv("DD_DOGSTATSD_URL", f"udp://127.0.0.1:{sink.port}")
        emitter = make_emitter(settings=from_env(), flush_interval=60)
        emitter.increment("run.created", tags=RUN)
        emitter.flush()
        assert len(split_lines(sink.drain())) == 1
        assert other.drain() == []

        monkeypatch.delenv("DD_DOGSTATSD_URL")
        emitter = make_emitter(settings=from_env(), flush_interval=60)
        emitter.increment("run.created", tags=RUN)
        emitter.flush()
        assert len(split_lines(other.drain())) == 1
        assert sink.drain() == []
    finally:
        other.close()


@pytest.mark.parametrize("transport", ["dogstatsd", "statsd"])
@pytest.mark.parametrize(("disable", "sends"), [("true", False), ("1", False), ("false", True), ("", True)])
def test_dd_dogstatsd_disable_sends_nothing(
    sink: UdpSink, monkeypatch: pytest.MonkeyPatch, transport: str, disable: str, sends: bool
) -> None:
    monkeypatch.setenv("DD_AGENT_HOST", "127.0.0.1")
    monkeypatch.setenv("DD_DOGSTATSD_PORT", str(sink.port))
    monkeypatch.setenv("NETAUTO_STATSD_TRANSPORT", transport)
    monkeypatch.setenv("DD_DOGSTATSD_DISABLE", disable)
    # through configure() (explicit destination) and through the implicit environment
    emitters = [configure(flush_interval=60), configure(host="127.0.0.1", port=sink.port, flush_interval=60)]
    try:
        for emitter in emitters:
            emitter.increment("run.created", tags=RUN)
            emitter.histogram("runner.duration", 1, tags=RUN_OK)
            emitter.flush()
            assert emitter.stats()["accepted"] == 2  # still checked and counted, just not sent
            assert bool(sink.drain()) is sends
    finally:
        for emitter in emitters:
            emitter.close()


@pytest.mark.parametrize("transport", ["dogstatsd", "statsd"])
@pytest.mark.parametrize(("namespace", "prefix"), [("netauto", "netauto."), ("acme.netops", "acme.netops."), ("", "")])
def test_namespace_is_honoured(
    sink: UdpSink,
    make_emitter: MakeEmitter,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
    namespace: str,
    prefix: str,
) -> None:
    monkeypatch.setenv("NETAUTO_STATSD_NAMESPACE", namespace)
    monkeypatch.setenv("NETAUTO_STATSD_TRANSPORT", transport)
    emitter = make_emitter(sink.port, settings=from_env(), flush_interval=60)
    emitter.increment("run.created", tags=RUN)
    emitter.flush()
    (line,) = split_lines(sink.drain())
    assert line.startswith(f"{prefix}run.created")


# ---------------------------------------------------------------- plain StatsD
def test_plain_statsd_lines(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port, transport="statsd")
    for _ in range(3):
        emitter.increment("run.created", tags=RUN)
    emitter.gauge("rq.queue.jobs", -3, tags=QUEUE)
    emitter.gauge("liveview.sessions", 2.5, tags=VIEW)
    emitter.histogram("runner.duration", 1.25, tags=RUN_OK)
    emitter.histogram("runner.duration", 0.0005, tags=RUN_OK)
    emitter.histogram("runner.bytes", 4096, tags=RUN_OK)

    emitter.flush()
    p = process_tag()
    assert sink.drain() == [
        (
            "netauto.run.created.par1.ssh.dev.netauto:3|c\n"
            f"netauto.rq.queue.jobs.default.queued.{p}.dev.netauto:0|g\n"
            f"netauto.rq.queue.jobs.default.queued.{p}.dev.netauto:-3|g\n"
            f"netauto.liveview.sessions./runs/_run_id_/live.{p}.dev.netauto:2.5|g\n"
            # no histogram type in plain StatsD: |ms timers with value x1000, divided back by the exporter
            "netauto.runner.duration.par1.ssh.ok.dev.netauto:1250.000000|ms\n"
            "netauto.runner.duration.par1.ssh.ok.dev.netauto:0.500000|ms\n"
            "netauto.runner.bytes.par1.ssh.ok.dev.netauto:4096000.000000|ms"
        ).encode()
    ]


def test_plain_statsd_hostile_values_never_add_segments(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port, transport="statsd", max_packet=256)
    sites = ["a.b.c", "x:y|z", "new\nline", "sp ace", "", "\u00e9t\u00e9", "a" * 300, "#,@!"]
    for site in sites:
        emitter.increment("run.created", tags={"site": site, "protocol": "ssh"})
        emitter.histogram("runner.duration", 0.125, tags={"site": site, "protocol": "ssh", "status": "ok"})
    emitter.flush()
    datagrams = sink.drain()
    assert max(len(d) for d in datagrams) < 256
    lines = split_lines(datagrams)
    assert len(lines) == 2 * len(sites)
    for line in lines:
        match = PLAIN_LINE.fullmatch(line)
        assert match, line
        segments = match["name"].split(".")
        tag_segments = 2 if match["type"] == "c" else 3  # site.protocol / site.protocol.status
        assert len(segments) == 3 + tag_segments + 2  # netauto.<metric name> + tags + env.service
    sent_sites = {line.split(".")[3] for line in lines if "|c" in line}
    assert sent_sites == {"a_b_c", "x_y_z", "new_line", "sp_ace", "none", "_t_", "a" * 64, "____"}


# --------------------------------------------------- the same lines, at the exporter
@pytest.mark.exporter
@pytest.mark.parametrize("transport", ["dogstatsd", "statsd"])
def test_exporter_reads_the_lines_as_meant(exporter: Exporter, emitter_for, transport: str) -> None:  # type: ignore[no-untyped-def]
    emitter = emitter_for(exporter, transport=transport, flush_interval=60)
    emitter.increment("run.created", 3, tags=RUN)
    for value in (0.5, 1.25, 3, 0.001):
        emitter.histogram("runner.duration", value, tags=RUN_OK)
    emitter.histogram("runner.bytes", 4096, tags=RUN_OK)
    emitter.gauge("rq.queue.jobs", -3, tags=QUEUE)
    emitter.flush()

    labels = {"site": "par1", "protocol": "ssh", "env": "dev", "service": "netauto"}
    exporter.wait_value("netauto_runs_created_total", 3, **labels)
    exporter.wait_value("netauto_runner_duration_seconds_count", 4, status="ok", **labels)
    # seconds stay seconds and bytes stay bytes (|h is not divided; plain |ms x1000 is divided back)
    assert exporter.value("netauto_runner_duration_seconds_sum", status="ok", **labels) == pytest.approx(4.751)
    exporter.wait_value("netauto_runner_processed_bytes_sum", 4096, status="ok", **labels)
    exporter.wait_value("netauto_rq_queue_jobs", -3, queue="default", state="queued")
    # a later absolute value is absolute, not a move from -3
    emitter.gauge("rq.queue.jobs", 2, tags=QUEUE)
    emitter.flush()
    exporter.wait_value("netauto_rq_queue_jobs", 2, queue="default", state="queued")


# ------------------------------------------------ send failures, counted exactly
def _many_datagrams(emitter: Emitter, values: int = 2000) -> int:
    """Queue one histogram context whose values need many datagrams; return the samples queued."""
    for i in range(values):
        emitter.histogram("runner.duration", i / 1000, tags=RUN_OK)
    return values


@pytest.mark.parametrize("transport", ["dogstatsd", "statsd"])
def test_every_datagram_to_a_dead_port_is_counted_then_a_recovered_port_gets_everything(
    make_emitter: MakeEmitter, transport: str
) -> None:
    """Issue 13: 22 datagrams to a dead port counted 11 failures, and the first flush after the
    exporter came back was lost to the ICMP error left over from before."""
    port = closed_udp_port()
    emitter = make_emitter(port, transport=transport, max_packet=512)
    queued = _many_datagrams(emitter)
    emitter.flush()
    stats = emitter.stats()
    assert stats["packets_failed"] > 20, stats  # dozens of datagrams...
    assert stats["samples_failed"] == queued, stats  # ...and every sample they carried
    for _ in range(3):  # the dead port stays dead: still every datagram
        _many_datagrams(emitter, 300)
        emitter.flush()
    # plus, in each later flush, the client's own client.send_failures count, lost with them
    assert emitter.stats()["samples_failed"] == queued + 900 + 3

    sink = UdpSink(port)  # the exporter comes back on the same port
    try:
        before = emitter.stats()
        queued = _many_datagrams(emitter)
        emitter.flush()
        after = emitter.stats()
        assert after["packets_failed"] == before["packets_failed"]
        assert after["samples_failed"] == before["samples_failed"]
        lines = split_lines(sink.drain())
        durations = [line for line in lines if ".runner.duration" in line]
        if transport == "dogstatsd":
            got = sum(len(parse_dogstatsd(line).values) for line in durations)
        else:
            got = sum(1 for line in durations if PLAIN_LINE.fullmatch(line))
        assert got == queued
        # the failures counted while it was down arrive now, as the client's own counter
        assert any(".client.send_failures" in line for line in lines), lines[-3:]
    finally:
        sink.close()


def test_a_late_refusal_is_counted_once_and_the_datagram_after_it_is_retried() -> None:
    """A refusal that surfaces on the next send (remote ICMP) costs the earlier datagram, not this one."""
    from netauto_statsd.wire.udp import UdpSender

    port = closed_udp_port()
    sender = UdpSender("127.0.0.1", port)
    # simulate a remote exporter: send on the raw socket without reading SO_ERROR,
    # so the ICMP error is still pending when the exporter comes back
    raw = sender._connect()
    raw.send(b"lost")
    sink = UdpSink(port)
    try:
        assert sender.send(b"after", samples=1)  # retried past the stale error, delivered
        assert sink.drain() == [b"after"]
        assert sender.take_late_refusals() == (1, 0)  # the stale one was counted (its samples unknown here)
        assert sender.take_late_refusals() == (0, 0)
    finally:
        sink.close()
        sender.close()
