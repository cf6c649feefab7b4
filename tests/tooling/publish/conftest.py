"""Fixtures for publishing tests: a local fake Grafana on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.grafana_server import FakeGrafana

TOKEN = "glsa_s3cr3t-token-never-printed"
PASSWORD = "s3cr3t-password-never-printed"


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    """A fake Grafana accepting the service account token ``TOKEN`` and admin / ``PASSWORD``."""
    server = FakeGrafana(token=TOKEN, user="admin", password=PASSWORD)
    try:
        yield server
        assert not server.violations, server.violations
    finally:
        server.close()
