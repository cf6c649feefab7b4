"""A statement that takes a known time is reported in seconds, at least that long, in whole microseconds.

A real SQLite database whose ``pause(ms)`` SQL function holds the statement
for a known time (the workload itself, not a wait in the test).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text

from netauto_statsd.integrations.sqlalchemy import instrument_engine, uninstrument_engine
from netauto_statsd.testing import Recorder


def _pause(ms: int) -> int:
    time.sleep(ms / 1000)
    return ms


def test_a_statement_taking_a_known_time_is_reported_in_seconds_and_never_shorter(
    statsd_recorder: Recorder, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'slow.db'}")

    @event.listens_for(engine, "connect")
    def add_pause(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.create_function("pause", 1, _pause)

    instrument_engine(engine, "slow")
    try:
        with engine.connect() as conn:
            outside = []
            for ms in (20, 60):
                started = time.perf_counter()
                assert conn.execute(text("select pause(:ms)"), {"ms": ms}).scalar_one() == ms
                outside.append(time.perf_counter() - started)
    finally:
        uninstrument_engine(engine)
        engine.dispose()
    reported = statsd_recorder.values("db.query.duration", pool="slow", operation="select")
    assert len(reported) == 2
    for value, ms, bound in zip(reported, (20, 60), outside, strict=True):
        assert ms / 1000 <= value <= bound  # seconds: at least the pause, at most what the caller saw
        assert abs(value * 1e6 - round(value * 1e6)) < 1e-6  # whole microseconds
