"""The emitter package's own surface: ``emitter._default``, flush hooks (``add_flush_hook``), ``Emitter()``'s
settings from the environment, and the texts a caller sees."""

from __future__ import annotations

import dataclasses
import logging
import pickle
import threading
from collections.abc import Callable

import pytest

import netauto_statsd.emitter as emitter_package
from netauto_statsd.catalog import CatalogError, throughput
from netauto_statsd.emitter import Emitter, add_flush_hook, core, set_emitter
from tests.runtime.core.wire import UdpSink, split_lines

MakeEmitter = Callable[..., Emitter]
RUN = {"site": "par1", "protocol": "ssh"}


def test_the_package_shows_the_process_wide_emitter_and_nothing_else(make_emitter: MakeEmitter) -> None:
    """``netauto_statsd.emitter._default`` is the process-wide emitter (``None`` until one is made)."""
    assert emitter_package._default is None
    emitter = make_emitter()
    set_emitter(emitter)
    assert emitter_package._default is emitter
    with pytest.raises(AttributeError, match=r"^no_such_name$"):
        emitter_package.no_such_name  # noqa: B018


def test_a_flush_hook_runs_once_per_flush_however_often_it_is_added(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """An integration's hook hands over what it batched at the start of each flush; adding it again changes nothing."""
    emitter = make_emitter(sink.port)
    calls: list[int] = []
    here = threading.current_thread()  # hooks are process-wide: another emitter's flush thread may run it too

    def hand_over() -> None:
        if threading.current_thread() is here:
            calls.append(1)
            emitter.increment("run.created", 3, tags=RUN)

    add_flush_hook(hand_over)
    add_flush_hook(hand_over)
    try:
        emitter.flush()
        emitter.flush()
    finally:
        core._flush_hooks.remove(hand_over)
    assert len(calls) == 2 and emitter.stats()["internal_errors"] == 0
    line = "netauto.run.created:3|c|#site:par1,protocol:ssh,env:dev,service:netauto"
    assert split_lines(sink.drain()) == [line, line]


def test_a_failing_flush_hook_is_counted_and_logged_and_the_flush_goes_on(
    sink: UdpSink, make_emitter: MakeEmitter, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = make_emitter(sink.port)

    def broken() -> None:
        raise RuntimeError("boom")

    add_flush_hook(broken)
    try:
        emitter.increment("run.created", tags=RUN)
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            emitter.flush()
    finally:
        core._flush_hooks.remove(broken)
    assert emitter.stats()["internal_errors"] == 1
    assert [r.getMessage() for r in caplog.records if r.name == "netauto_statsd"] == [
        "netauto_statsd: flush hook failed: boom"
    ]
    assert split_lines(sink.drain()) == ["netauto.run.created:1|c|#site:par1,protocol:ssh,env:dev,service:netauto"]


def test_an_emitter_made_without_settings_reads_the_environment(sink: UdpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_AGENT_HOST", "127.0.0.1")
    monkeypatch.setenv("DD_DOGSTATSD_PORT", str(sink.port))
    monkeypatch.setenv("NETAUTO_STATSD_ENV", "staging")
    emitter = Emitter()
    try:
        emitter.increment("run.created", tags=RUN)
        emitter.flush()
    finally:
        emitter.close()
    assert split_lines(sink.drain()) == ["netauto.run.created:1|c|#site:par1,protocol:ssh,env:staging,service:netauto"]


def test_the_strict_message_for_a_value_outside_the_allowed_set_quotes_it(make_emitter: MakeEmitter) -> None:
    with pytest.raises(CatalogError) as raised:
        make_emitter().increment("run.created", tags={"site": "par1", "protocol": "SSH"})
    assert (
        str(raised.value)
        == "tag 'protocol' of 'run.created' must be one of ssh, telnet, netconf, restconf, grpc, snmp; got 'SSH'"
    )


def test_a_tagless_calls_resolution_is_never_used_for_a_tagged_call(sink: UdpSink, make_emitter: MakeEmitter) -> None:
    """The resolution cache is keyed by the tags too: ``run.created`` without tags (folded to ``other``) first,
    then with its tags, lands in two series."""
    emitter = make_emitter(sink.port, strict=False)
    emitter.increment("run.created")
    emitter.increment("run.created", tags=RUN)
    emitter.increment("run.created", tags=RUN)
    emitter.flush()
    assert sorted(split_lines(sink.drain())) == [
        "netauto.client.unexpected_value:1|c|#metric:run_created,env:dev,service:netauto",
        "netauto.run.created:1|c|#site:other,protocol:other,env:dev,service:netauto",
        "netauto.run.created:2|c|#site:par1,protocol:ssh,env:dev,service:netauto",
    ]


def test_a_doubled_assignment_in_an_env_file_is_an_unknown_group_name_and_ignored(
    sink: UdpSink, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """``NETAUTO_STATSD_DISABLE=NETAUTO_STATSD_DISABLE=db`` (the name written twice): the error text already names
    the variable, and the unknown name is still forgiven - warned about, the known groups kept, metrics sent."""
    monkeypatch.setenv("NETAUTO_STATSD_DISABLE", "NETAUTO_STATSD_DISABLE=db,http")
    monkeypatch.setenv("DD_AGENT_HOST", "127.0.0.1")
    monkeypatch.setenv("DD_DOGSTATSD_PORT", str(sink.port))
    emitter = emitter_package.get_emitter()
    assert emitter.settings.disabled_groups == ("http",) and not emitter.settings.disabled
    assert "ignoring the unknown names" in capfd.readouterr().err
    emitter.increment("run.created", tags=RUN)
    emitter.flush()
    assert split_lines(sink.drain()) == ["netauto.run.created:1|c|#site:par1,protocol:ssh,env:dev,service:netauto"]


def test_an_unpickled_copy_of_a_declared_metric_shares_its_resolution_cache(make_emitter: MakeEmitter) -> None:
    """A metric object unpickled in a worker is the declared one (equal): its calls are kept in the resolution
    cache (one dict lookup next time) like the declared object's; a look-alike's never are."""
    emitter = make_emitter(strict=False)
    copy = pickle.loads(pickle.dumps(throughput.RUNS_CREATED))
    assert copy is not throughput.RUNS_CREATED and copy == throughput.RUNS_CREATED
    key = ("run.created", "counter", tuple(RUN.items()))
    emitter.count("run.created", copy, 1, RUN)
    assert list(emitter._cache) == [key]
    emitter.count("run.created", throughput.RUNS_CREATED, 1, RUN)
    emitter.count("run.created", copy, 1, RUN)
    assert list(emitter._cache) == [key]
    look_alike = dataclasses.replace(throughput.RUNS_CREATED, help="not the declared one")
    emitter.count("run.created", look_alike, 1, {"site": "lon1", "protocol": "ssh"})
    assert list(emitter._cache) == [key]
    assert emitter.stats()["accepted"] == 3 and emitter.stats()["rejected"] == 1
