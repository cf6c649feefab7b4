"""Shared fixtures of the demo's in-process tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import require_module


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh SQLite database for the demo models, and 4 devices."""
    require_module("netauto_demo", "pip install -e ./examples")
    from netauto_demo import automation, models

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/demo.db")
    monkeypatch.setattr(models, "_engine", None)
    automation.seed_devices(4)
    yield
    engine = models._engine
    if engine is not None:
        engine.dispose()
