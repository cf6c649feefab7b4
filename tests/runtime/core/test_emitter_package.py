"""The emitter package's own surface: ``emitter._default`` for checks, and flush hooks (``add_flush_hook``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import netauto_statsd.emitter as emitter_package
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

    def hand_over() -> None:
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
