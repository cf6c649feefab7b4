"""``NETAUTO_STATSD_EXPORTER_COMPAT``: the wire dialect for statsd_exporter versions older than v0.27.1.

Those exporters reject DogStatsD multi-value lines (``name:v1:v2|h``), so every
histogram sample must travel on a line of its own. The real exporters are in
tests/tooling/bridge/test_matrix.py; here are the exact bytes and the setting's validation.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netauto_statsd.config import ConfigError, Settings, exporter_version, from_env
from netauto_statsd.emitter import Emitter
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines

MakeEmitter = Callable[..., Emitter]
RUN_OK = {"site": "par1", "protocol": "ssh", "status": "ok"}
TAGS = "site:par1,protocol:ssh,status:ok,env:dev,service:netauto"


def test_compat_0_26_sends_one_histogram_value_per_line(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    emitter = make_emitter(sink.port, exporter_compat="0.26")
    for value in (0.5, 1.25, 3, 0.001):
        emitter.histogram("runner.duration", value, tags=RUN_OK)
    emitter.increment("run.created", tags={"site": "par1", "protocol": "ssh"})
    assert emitter.flush() == 5
    assert sink.drain() == [
        b"netauto.run.created:1|c|#site:par1,protocol:ssh,env:dev,service:netauto\n"
        + b"".join(f"netauto.runner.duration:{v}|h|#{TAGS}\n".encode() for v in ("0.5", "1.25", "3", "0.001"))
    ]


@pytest.mark.parametrize(("compat", "multi"), [("", True), ("0.26", False), ("v0.26.1", False), ("0.27.1", True)])
def test_multi_value_lines_follow_the_setting(
    sink: UdpSink, make_emitter: MakeEmitter, compat: str, multi: bool
) -> None:
    emitter = make_emitter(sink.port, exporter_compat=compat)
    values = [i / 100 for i in range(300)]
    emitter.histogram_many("runner.duration", values, tags=RUN_OK)
    emitter.flush()
    lines = [parse_dogstatsd(line) for line in split_lines(sink.drain())]
    assert [v for line in lines for v in line.values] == values  # nothing lost, order kept
    if multi:
        assert len(lines) < len(values) / 10
    else:
        assert all(len(line.values) == 1 for line in lines)
        assert len(lines) == len(values)


def test_the_variable_is_read_and_named_in_errors() -> None:
    assert from_env({"NETAUTO_STATSD_EXPORTER_COMPAT": " 0.26 "}).exporter_compat == "0.26"
    assert from_env({}).exporter_compat == ""
    with pytest.raises(ConfigError, match=r"NETAUTO_STATSD_EXPORTER_COMPAT='latest'") as info:
        from_env({"NETAUTO_STATSD_EXPORTER_COMPAT": "latest"})
    assert info.value.setting == "NETAUTO_STATSD_EXPORTER_COMPAT"


@pytest.mark.parametrize("bad", ["0", "x.y", "0.26.1.2", "0.-1", "newest"])
def test_settings_refuse_what_is_not_a_version(bad: str) -> None:
    with pytest.raises(ConfigError, match="exporter version"):
        Settings(exporter_compat=bad)


def test_the_boundary_is_v0_27_1() -> None:
    assert exporter_version("0.27") < exporter_version("v0.27.1") <= exporter_version("0.30")
    assert not Settings(exporter_compat="0.27").multi_value
    assert Settings(exporter_compat="0.27.1").multi_value
    assert Settings().multi_value
