"""Failing publishes: every other figure still published, each failure logged by name, strict mode's error raised.

A real emitter (sending to a loopback port nobody reads) with the background
publisher held busy, so ``publish_pending`` runs in the test's thread.
"""

from __future__ import annotations

import logging

import pytest

from netauto_statsd.catalog import CatalogError
from netauto_statsd.emitter import Emitter
from netauto_statsd.integrations._publisher import publish_pending, request_publish
from tests.runtime.integrations.test_background_publish import (
    Figures,
    busy_publisher,  # noqa: F401 - fixture
    emitter,  # noqa: F401 - fixture
)


def test_a_strict_mode_error_among_failing_publishes_is_raised_after_all_were_published(
    emitter: Emitter,  # noqa: F811
    busy_publisher: None,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="netauto_statsd")
    refused = Figures(fail_with=CatalogError("refused by the catalog"))
    broken = [Figures(fail_with=KeyError(f"gone-{i}")) for i in range(10)]
    fine = Figures(3)
    for pending in (refused, *broken, fine):
        request_publish(pending)

    with pytest.raises(CatalogError, match="refused by the catalog"):
        publish_pending()  # whichever order they come in: the strict-mode error is the one raised

    assert all(len(f.published) == 1 for f in (refused, *broken, fine))
    assert emitter.stats()["accepted"] == 1
    assert emitter.stats()["internal_errors"] == 10
    lines = sorted(r.getMessage() for r in caplog.records if r.name == "netauto_statsd")
    assert lines == sorted(f"netauto_statsd: publish failed: 'gone-{i}'" for i in range(10))
    publish_pending()  # nothing pending, nothing raised again
