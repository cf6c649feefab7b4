"""The guard's last line: even when counting the failure fails, nothing reaches the app, and the log says what.

The guard hands a metrics failure to the emitter's ``count_internal_error``. That
never fails with the real emitter; to see the guard's own fallback, the emitter
here is the real one with only that method broken (fault injection at the one
call the fallback exists for).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.guard import call, failed


class _CountingFails(Emitter):
    def count_internal_error(self, what: object, exc: BaseException) -> None:
        raise RuntimeError("counter lock gone")


@pytest.fixture
def broken_counting() -> Iterator[Emitter]:
    emitter = _CountingFails(Settings(disabled=True))
    previous = set_emitter(emitter)
    yield emitter
    set_emitter(previous)
    emitter.close()


def test_a_failure_the_emitter_cannot_count_is_logged_and_swallowed(
    broken_counting: Emitter, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise KeyError("no such context")

    with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        assert call("rq job outcome", broken) is None
        assert failed("aiohttp publish", ValueError("bad frame")) is None
    assert caplog.messages == [
        "netauto_statsd: rq job outcome failed: 'no such context'",
        "netauto_statsd: aiohttp publish failed: bad frame",
    ]
