"""The emitter's promises: never raise into the app, count every drop, strict vs production, fork.

Everything is sent to real loopback UDP sockets (or to a port / host / unix path
where nothing listens); what the app would see is asserted on the caller's side,
what was lost on ``stats()`` and on the ``netauto_statsd`` logger.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from netauto_statsd.catalog import CatalogError
from netauto_statsd.config import ConfigError, Settings, from_env
from netauto_statsd.emitter import Emitter, configure, get_emitter
from netauto_statsd.tags import normalise_value
from netauto_statsd.wire.base import Batch
from tests.runtime.core.wire import UdpSink, closed_udp_port, parse_dogstatsd, split_lines
from tests.support import Exporter, wait_until

MakeEmitter = Callable[..., Emitter]
RUN = {"site": "par1", "protocol": "ssh"}
RUN_OK = {**RUN, "status": "ok"}
ROOT = Path(__file__).resolve().parents[3]


def drop_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return any(r.name == "netauto_statsd" and "could not be sent" in r.getMessage() for r in caplog.records)


def emit_some(emitter: Emitter) -> None:
    emitter.increment("run.created", tags=RUN)
    emitter.histogram("runner.duration", 0.5, tags=RUN_OK)


# ------------------------------------------------------- unreachable destinations
def test_exporter_down_drops_are_counted_and_logged(
    make_emitter: MakeEmitter, caplog: pytest.LogCaptureFixture
) -> None:
    # DogStatsD only: its socket is connected, so the kernel reports the closed port.
    # pystatsd sends on an unconnected socket, where a closed port is invisible.
    caplog.set_level(logging.DEBUG, logger="netauto_statsd")
    emitter = make_emitter(closed_udp_port())

    def failed_once() -> bool:
        emit_some(emitter)  # never raises
        emitter.flush()  # UDP learns of the closed port from the ICMP error of an earlier send
        return emitter.stats()["packets_failed"] > 0

    wait_until(failed_once, 5, "a counted drop")
    assert drop_logged(caplog)


@pytest.mark.parametrize("transport", ["dogstatsd", "statsd"])
def test_unresolvable_host_drops_are_counted_and_logged(
    make_emitter: MakeEmitter, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="netauto_statsd")
    emitter = make_emitter(host="nonexistent.invalid", port=8125, transport=transport)
    emit_some(emitter)
    assert emitter.flush() == 2
    emit_some(emitter)
    emitter.flush()
    stats = emitter.stats()
    assert stats["packets_failed"] >= 2 and stats["accepted"] == 4
    assert drop_logged(caplog)


def test_socket_errors_on_a_missing_unix_socket_are_counted(
    make_emitter: MakeEmitter, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG, logger="netauto_statsd")
    monkeypatch.setenv("DD_DOGSTATSD_URL", f"unix://{tmp_path}/no/such/dsd.socket")
    emitter = make_emitter(settings=from_env(), flush_interval=60)
    emit_some(emitter)
    emitter.flush()
    assert emitter.stats()["packets_failed"] == 1
    assert drop_logged(caplog)


def test_a_transport_that_raises_is_counted_not_propagated(caplog: pytest.LogCaptureFixture) -> None:
    class Exploding:
        def send(self, batch: Batch) -> int:
            raise OSError("disk on fire")

        def close(self) -> None:
            pass

    caplog.set_level(logging.DEBUG, logger="netauto_statsd")
    emitter = Emitter(Settings(flush_interval=60), transport=Exploding())
    try:
        emit_some(emitter)
        assert emitter.flush() == 2
        assert emitter.stats()["packets_failed"] == 1
        assert any("disk on fire" in r.getMessage() for r in caplog.records)
    finally:
        emitter.close()


# --------------------------------------------------------------- oversized
def test_lines_that_cannot_fit_max_packet_are_sent_alone_not_lost(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port, max_packet=64)  # smaller than any of our lines
    values = [i / 8 for i in range(50)]
    for value in values:
        emitter.histogram("runner.duration", value, tags=RUN_OK)
    emitter.increment("run.created", tags=RUN)
    emitter.flush()
    datagrams = sink.drain()
    lines = [parse_dogstatsd(line) for line in split_lines(datagrams)]
    assert all(d.count(b"\n") == 1 for d in datagrams), "an oversized line travels alone"
    assert [v for line in lines if line.type == "h" for v in line.values] == values
    assert emitter.stats()["packets_failed"] == 0


def test_a_context_past_its_flush_capacity_is_sampled_with_exact_counts(
    sink: UdpSink, make_emitter: MakeEmitter
) -> None:
    from netauto_statsd.emitter.aggregate import SAMPLES_PER_CONTEXT

    emitter = make_emitter(sink.port)
    offered = SAMPLES_PER_CONTEXT * 3 + 7  # 3.x samples per kept value: two exact rates, 1/3 and 1/4
    for i in range(offered):
        emitter.histogram("runner.duration", i % 7, tags=RUN_OK)
    sent = emitter.flush()
    lines = [parse_dogstatsd(line) for line in split_lines(sink.drain())]
    durations = [line for line in lines if line.name == "netauto.runner.duration"]
    assert {line.rate for line in durations} == {1 / 3, 0.25}
    assert sum(len(line.values) for line in durations) == SAMPLES_PER_CONTEXT == sent - 1  # + client.sampled
    assert sum(len(line.values) * line.repeat for line in durations) == offered  # what the exporter counts
    (sampled,) = [line for line in lines if line.name == "netauto.client.sampled"]
    assert sampled.tag_dict["metric"] == "runner_duration" and sampled.values == (offered - SAMPLES_PER_CONTEXT,)
    assert emitter.stats()["dropped_pending"] == 0 and emitter.stats()["packets_failed"] == 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 10**400, True, "1", None, -1], ids=repr)
def test_unusable_values_are_rejected_and_counted(sink: UdpSink, make_emitter: MakeEmitter, value: object) -> None:
    emitter = make_emitter(sink.port, strict=False)
    emitter.increment("run.created", value, tags=RUN)  # type: ignore[arg-type]
    emitter.histogram("runner.duration", 0.5, tags=RUN_OK)  # a good neighbour, unaffected
    emitter.flush()
    assert emitter.stats()["rejected"] == 1
    lines = {parse_dogstatsd(line).name: parse_dogstatsd(line) for line in split_lines(sink.drain())}
    assert lines["netauto.client.rejected"].tag_dict["reason"] == "bad_value"
    assert lines["netauto.runner.duration"].values == (0.5,)
    assert "netauto.run.created" not in lines


# ------------------------------------------------------------- bad configuration
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("NETAUTO_STATSD_FLUSH_INTERVAL", "soon"),
        ("NETAUTO_STATSD_FLUSH_INTERVAL", "0"),
        ("NETAUTO_STATSD_MAX_PACKET", "10"),
        ("NETAUTO_STATSD_MAX_PACKET", "big"),
        ("NETAUTO_STATSD_TRANSPORT", "carrier-pigeon"),
        ("NETAUTO_STATSD_NAMESPACE", "net auto!"),
    ],
)
def test_bad_environment_never_breaks_the_app(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)
    caplog.set_level(logging.DEBUG, logger="netauto_statsd")
    emitter = get_emitter()  # implicit first use: logs and disables
    emitter.increment("run.created", tags=RUN)
    assert emitter.flush() == 1
    assert emitter.settings.disabled
    assert any(r.name == "netauto_statsd" and key in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match=key):  # explicit configure() says what is wrong
        configure()


# ------------------------------------------------------- strict vs production
FORBIDDEN = ["le", "quantile", "job", "instance", "__x", "run_id", "device_id"]


@pytest.mark.parametrize("key", FORBIDDEN)
def test_strict_mode_raises_on_forbidden_tag_keys(make_emitter: MakeEmitter, key: str) -> None:
    emitter = make_emitter()
    with pytest.raises(CatalogError, match="forbidden"):
        emitter.histogram("runner.duration", 1, tags={**RUN_OK, key: "x"})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.increment("runner.started", tags=RUN), "not in the catalog"),
        (lambda e: e.increment("runner.duration", tags=RUN_OK), "is a histogram, not a counter"),
        (lambda e: e.increment("run.created", tags={**RUN, "device": "edge-1"}), "not declared"),
        (lambda e: e.increment("run.created", tags={"site": "par1"}), "needs tag 'protocol'"),
    ],
    ids=["undeclared metric", "wrong type", "undeclared tag", "missing tag"],
)
def test_strict_mode_raises_catalog_error(
    make_emitter: MakeEmitter, call: Callable[[Emitter], None], message: str
) -> None:
    emitter = make_emitter()
    with pytest.raises(CatalogError, match=message):
        call(emitter)
    assert emitter.stats()["accepted"] == 0


def test_production_mode_drops_counts_and_never_raises(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port, strict=False)
    emitter.increment("runner.started", tags=RUN)  # undeclared metric
    emitter.increment("runner.started")  # ... without tags
    emitter.increment("runner.duration", tags=RUN_OK)  # wrong type
    for key in FORBIDDEN:
        emitter.histogram("runner.duration", 1, tags={**RUN_OK, key: "x"})  # forbidden key
    emitter.increment("run.created", tags={**RUN, "device": "edge-1"})  # undeclared key
    emitter.increment("run.created", -1, tags=RUN)  # counters only go up
    emitter.increment("run.created", tags={"site": "par1"})  # missing tag: sent as 'other'
    emitter.increment("run.created", tags={"site": "par1", "protocol": "SSH"})  # not allowed: sent as 'other'
    emitter.flush()

    assert emitter.stats()["rejected"] == 3 + len(FORBIDDEN) + 2
    assert emitter.stats()["unexpected_values"] == 2
    assert emitter.stats()["internal_errors"] == 0
    lines = [parse_dogstatsd(line) for line in split_lines(sink.drain())]
    rejected = {line.tag_dict["reason"]: line.values[0] for line in lines if line.name == "netauto.client.rejected"}
    assert rejected == {"unknown_metric": 3, "unknown_tag": len(FORBIDDEN) + 1, "bad_value": 1}
    unexpected = {x.tag_dict["metric"]: x.values[0] for x in lines if x.name == "netauto.client.unexpected_value"}
    assert unexpected == {"run_created": 2}  # the missing tag and the value outside the set
    sent = [line for line in lines if not line.name.startswith("netauto.client.")]
    assert [(line.name, line.tag_dict["protocol"], line.values) for line in sent] == [
        ("netauto.run.created", "other", (2.0,))
    ]
    assert not any(key in line.tag_dict for line in lines for key in FORBIDDEN)


# ----------------------------------------------------------------- cardinality
def test_cardinality_cap_folds_into_other_and_counts(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port, strict=False)
    for i in range(150):  # run.device is capped at 100 combinations per process
        emitter.increment("run.device", tags={"device": f"edge-{i}"})
    for i in range(250):  # runner.error: 200; the enumerated protocol survives the fold
        emitter.increment("runner.error", tags={"site": "par1", "protocol": "netconf", "error": f"E{i}"})
    emitter.flush()

    assert emitter.stats()["overflowed"] == 50 + 50
    lines = [parse_dogstatsd(line) for line in split_lines(sink.drain())]
    devices = {line.tag_dict["device"]: line.values[0] for line in lines if line.name == "netauto.run.device"}
    assert len(devices) == 101 and devices["other"] == 50
    assert set(devices) - {"other"} == {f"edge-{i}" for i in range(100)}
    errors = [line.tag_dict for line in lines if line.name == "netauto.runner.error"]
    assert {"site": "other", "protocol": "netconf", "error": "other", "env": "dev", "service": "netauto"} in errors
    overflow = {line.tag_dict["metric"]: line.values[0] for line in lines if line.name == "netauto.client.overflow"}
    assert overflow == {"run_device": 50, "runner_error": 50}  # normalised like any value: no '.'


def test_cardinality_cap_is_the_same_in_strict_mode(make_emitter: MakeEmitter) -> None:
    emitter = make_emitter()  # strict: folding is not an error, it is the design
    for i in range(101):
        emitter.increment("run.device", tags={"device": f"edge-{i}"})
    assert emitter.stats()["overflowed"] == 1


# ------------------------------------------------------------ threads and exit
def test_background_thread_flushes_without_being_asked(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port, flush_interval=0.05)
    emitter.increment("run.created", tags=RUN)
    lines = sink.wait_lines(1)
    assert lines == ["netauto.run.created:1|c|#site:par1,protocol:ssh,env:dev,service:netauto"]


def test_concurrent_emitters_threads_add_up_exactly(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port, flush_interval=0.01)  # flushes race with the increments
    barrier = threading.Barrier(8, timeout=10)

    def work() -> None:
        barrier.wait()
        for _ in range(2000):
            emitter.increment("run.created", tags=RUN)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    emitter.flush()
    total = 0.0

    def all_arrived() -> bool:
        nonlocal total
        total = sum(parse_dogstatsd(line).values[0] for line in split_lines(sink.datagrams))
        return total >= 16000

    sink.wait_for(lambda _: all_arrived(), what="16000 increments")
    assert total == 16000


def test_close_is_idempotent_and_does_not_resend(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port)
    emitter.gauge("liveview.sessions", 3, tags={"view": "/x"})
    emitter.close()
    assert set(split_lines(sink.drain())) == {
        f"netauto.liveview.sessions:3|g|#view:/x,process:{normalise_value(f'{socket.gethostname()}-{os.getpid()}')},"
        "env:dev,service:netauto"
    }
    emitter.close()  # e.g. atexit after configure() replaced it
    assert sink.drain() == []


def test_atexit_flushes_what_a_normal_exit_left(sink: UdpSink) -> None:
    script = (
        "from netauto_statsd import get_emitter\n"
        "get_emitter().increment('run.created', tags={'site': 'par1', 'protocol': 'ssh'})\n"
    )
    env = {**os.environ, "DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(sink.port)}
    env["NETAUTO_STATSD_FLUSH_INTERVAL"] = "60"
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=30)
    assert split_lines(sink.drain()) == ["netauto.run.created:1|c|#site:par1,protocol:ssh,env:dev,service:netauto"]


# ------------------------------------------------------------------------ fork
def _wait_child(pid: int) -> int:
    status: list[int] = []

    def exited() -> bool:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status.append(os.waitstatus_to_exitcode(code))
        return bool(done)

    try:
        wait_until(exited, 10, "the forked child to exit")
    except AssertionError:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise
    return status[0]


def _fork(child: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            child()
            code = 0
        finally:
            os._exit(code)
    return pid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_resend_parent_pending_data(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port)
    emitter.increment("run.created", tags={"site": "parent", "protocol": "ssh"})
    emitter.gauge("liveview.sessions", 7, tags={"view": "/parent"})
    emitter.histogram("runner.duration", 1.5, tags={"site": "parent", "protocol": "ssh", "status": "ok"})

    def child() -> None:
        emitter.increment("run.created", tags={"site": "child", "protocol": "ssh"})
        emitter.gauge("liveview.sessions", 1, tags={"view": "/child"})
        assert emitter.flush() == 2

    assert _wait_child(_fork(child)) == 0
    from_child = [parse_dogstatsd(line) for line in split_lines(sink.drain())]
    child_process = normalise_value(f"{socket.gethostname()}-")
    assert [(line.name, line.tag_dict.get("site") or line.tag_dict["view"]) for line in from_child] == [
        ("netauto.run.created", "child"),
        ("netauto.liveview.sessions", "/child"),
    ]
    gauge_process = from_child[1].tag_dict["process"]
    assert gauge_process.startswith(child_process) and gauge_process != child_process + str(os.getpid())

    emitter.flush()  # the parent still sends what it had pending, exactly once
    from_parent = [parse_dogstatsd(line) for line in split_lines(sink.drain())]
    assert [(line.name, line.values) for line in from_parent] == [
        ("netauto.run.created", (1.0,)),
        ("netauto.liveview.sessions", (7.0,)),
        ("netauto.runner.duration", (1.5,)),
    ]
    assert all("child" not in str(line.tags) for line in from_parent)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("transport", ["dogstatsd", "statsd"])
def test_fork_while_the_parent_is_mid_send_does_not_deadlock_the_child(
    sink: UdpSink, make_emitter: MakeEmitter, transport: str
) -> None:
    emitter = make_emitter(sink.port, transport=transport)
    emitter.increment("run.created", tags={"site": "parent", "protocol": "ssh"})
    emitter.flush()
    sink.drain()
    # What the flush thread holds while it sends, held here at the moment of the fork.
    with emitter._transport._lock:  # type: ignore[attr-defined]
        pid = _fork(
            lambda: (emitter.increment("run.created", tags={"site": "child", "protocol": "ssh"}), emitter.flush())
        )
    assert _wait_child(pid) == 0
    assert len(split_lines(sink.drain())) == 1


@pytest.mark.exporter
@pytest.mark.parametrize("transport", ["dogstatsd", "statsd"])
def test_client_counters_reach_the_exporter_in_both_formats(
    exporter: Exporter, make_emitter: MakeEmitter, transport: str
) -> None:
    """client.overflow / client.rejected are mapped, not dropped (the fixture asserts no drop at teardown)."""
    emitter = make_emitter(exporter.udp_port, transport=transport, strict=False)
    for i in range(101):
        emitter.increment("run.device", tags={"device": f"edge-{i}"})
    emitter.increment("not.declared")
    emitter.flush()
    exporter.wait_value("netauto_client_cardinality_overflow_total", 1, metric="run_device")
    exporter.wait_value("netauto_client_rejected_total", 1, reason="unknown_metric")
