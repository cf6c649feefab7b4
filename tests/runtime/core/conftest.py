"""Fixtures for the core tests: a real loopback UDP sink and emitters that are always closed."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netauto_statsd import catalog
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.wire.udp import UdpSender
from tests.runtime.core.wire import UdpSink

#: Long enough that the background thread never flushes during a test: tests flush explicitly.
NO_AUTO_FLUSH = 60.0


def _forget_metric_runtime_state() -> None:
    """Every test starts as a fresh process would: no bound child kept and no generated keyword
    function on the catalog's metric objects (left by earlier tests, they would hide what a first call does)."""
    for metric in catalog.BY_NAME.values():
        metric._kids.clear()
        for method in ("inc", "observe"):
            metric.__dict__.pop(method, None)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No DD_* / NETAUTO_STATSD_* variable leaks in from the shell; the process-wide emitter is reset."""
    for key in list(os.environ):
        if key.startswith(("DD_", "NETAUTO_STATSD_")) or key == "DATADOG_TAGS":
            monkeypatch.delenv(key)
    previous = set_emitter(None)
    _forget_metric_runtime_state()
    yield
    current = set_emitter(previous)
    if current is not None and current is not previous:
        current.close()


@pytest.fixture
def sink() -> Iterator[UdpSink]:
    """A real UDP socket on 127.0.0.1 that collects datagrams."""
    receiver = UdpSink()
    yield receiver
    receiver.close()


@pytest.fixture
def make_emitter() -> Iterator[Callable[..., Emitter]]:
    """Factory for emitters closed after the test.

    ``make_emitter(port, **overrides)`` sends to 127.0.0.1:port (strict, no automatic
    flush); ``make_emitter(settings=from_env())`` uses the given settings as they are.
    """
    made: list[Emitter] = []

    def make(port: int | None = None, settings: Settings | None = None, **overrides: Any) -> Emitter:
        if port is not None:
            overrides = {"host": "127.0.0.1", "port": port, **overrides}
        if settings is None:
            settings = Settings(**{"strict": True, "flush_interval": NO_AUTO_FLUSH, **overrides})
        elif overrides:
            settings = dataclasses.replace(settings, **overrides)
        emitter = Emitter(settings)
        made.append(emitter)
        return emitter

    yield make
    for emitter in made:
        emitter.close()


@pytest.fixture
def senders() -> Iterator[list[UdpSender]]:
    """UDP senders a test makes (append them): closed after the test."""
    made: list[UdpSender] = []
    yield made
    for sender in made:
        sender.close()
