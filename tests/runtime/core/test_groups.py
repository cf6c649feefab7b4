"""Metric groups (issue 15.3): ``NETAUTO_STATSD_DISABLE=db,http`` drops whole families at the emitter, counted."""

from __future__ import annotations

import pytest

from netauto_statsd import catalog
from netauto_statsd.catalog import db, http, runner
from netauto_statsd.config import ConfigError, from_env
from netauto_statsd.emitter import configure, get_emitter, set_emitter
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines

RUN_OK = {"site": "par1", "protocol": "ssh", "status": "ok"}
QUERY = {"pool": "main", "operation": "select", "table": "runs"}


def test_groups_are_the_catalog_families() -> None:
    assert set(catalog.groups()) >= {"runner", "throughput", "liveview", "http", "rq", "db", "app"}
    assert "client" not in catalog.groups()  # loss counters cannot be turned off


def test_disabled_groups_send_nothing_and_are_counted(sink: UdpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETAUTO_STATSD_DISABLE", " db , http")
    emitter = configure(host="127.0.0.1", port=sink.port, flush_interval=60, strict=True)
    queries = db.QUERIES.bind(**QUERY)
    for _ in range(3):
        queries.inc()  # bound child: resolved once as disabled
        get_emitter().histogram("db.query.duration", 0.01, tags=QUERY)  # string layer
        http.REQUESTS.inc(method="GET", route="/x", status_class="2xx")  # unbound object
        runner.DURATION.observe(0.5, **RUN_OK)  # an enabled group
    emitter.flush()
    lines = [parse_dogstatsd(text) for text in split_lines(sink.drain())]
    names = {line.name for line in lines}
    assert names == {"netauto.runner.duration", "netauto.client.dropped"}
    (dropped,) = [line for line in lines if line.name == "netauto.client.dropped"]
    assert dropped.tag_dict["reason"] == "disabled_group" and dropped.values == (9,)
    assert emitter.stats()["dropped_disabled"] == 9 and emitter.stats()["rejected"] == 0


def test_unknown_group_names_are_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETAUTO_STATSD_DISABLE", "db,databse")
    with pytest.raises(ConfigError, match=r"NETAUTO_STATSD_DISABLE='db,databse'.*unknown metric group\(s\) 'databse'"):
        configure()
    with pytest.raises(ConfigError, match="'client'"):
        from_env({"NETAUTO_STATSD_DISABLE": "client"})


def test_unknown_group_names_warn_once_on_implicit_use_and_the_rest_apply(
    sink: UdpSink, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NETAUTO_STATSD_DISABLE", "db,databse")
    monkeypatch.setenv("DD_DOGSTATSD_URL", f"udp://127.0.0.1:{sink.port}")
    set_emitter(None)
    emitter = get_emitter()
    get_emitter()
    assert emitter.settings.disabled_groups == ("db",) and not emitter.settings.disabled
    err = capfd.readouterr().err
    assert err.count("netauto_statsd:") == 1 and "databse" in err and "groups: runner" in err
    db.QUERIES.inc(**QUERY)
    runner.STARTS.inc(site="par1", protocol="ssh")
    emitter.flush()
    names = {parse_dogstatsd(text).name for text in split_lines(sink.drain())}
    assert names == {"netauto.runner.start", "netauto.client.dropped"}
