"""pytest plugin (``pytest11`` entry point): the ``statsd_recorder`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netauto_statsd.testing import Recorder, recording


@pytest.fixture
def statsd_recorder() -> Iterator[Recorder]:
    """Record every metric the code under test emits, in strict mode, without UDP."""
    with recording() as recorder:
        yield recorder
