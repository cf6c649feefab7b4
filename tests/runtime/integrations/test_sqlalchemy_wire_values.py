"""What the SQLAlchemy integration puts on the wire, read from a real UDP socket: every statement's
duration and every checkout's wait, counted exactly, in whole microseconds (the texts the wire keeps
for values sent again, ``wire/texts._ReprCache``, are only ever the texts ``repr`` writes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.integrations.sqlalchemy import instrument_engine, uninstrument_engine
from tests.runtime.core.wire import UdpSink, parse_dogstatsd, split_lines, values_of
from tests.runtime.integrations.test_sqlalchemy import devices, make_engine

ROUNDS = 3
CHECKOUTS = 40


@pytest.fixture
def sent(tmp_path: Path) -> Iterator[tuple[Engine, Emitter, UdpSink]]:
    sink = UdpSink()
    emitter = Emitter(Settings(host="127.0.0.1", port=sink.port, strict=True, flush_interval=60))
    previous = set_emitter(emitter)
    engine = make_engine(tmp_path)
    instrument_engine(engine, "wire")
    try:
        yield engine, emitter, sink
    finally:
        uninstrument_engine(engine)
        engine.dispose()
        set_emitter(previous)
        emitter.close()
        sink.close()


def whole_microseconds(text: str) -> bool:
    value = float(text)
    return value >= 0 and round(value * 1e6) / 1e6 == value and len(text) <= 12


def values_sent(texts: list[str], name: str, **tags: str) -> list[str]:
    """The value texts of every line of ``name`` with these tags, as they travelled."""
    wanted = [f"{k}:{v}" for k, v in tags.items()]
    return [
        value
        for t in texts
        if t.startswith(f"netauto.{name}:") and all(tag in t.split("|#", 1)[1].split(",") for tag in wanted)
        for value in t.split("|", 1)[0].split(":")[1:]
    ]


def test_durations_and_waits_arrive_counted_exactly_in_whole_microseconds_flush_after_flush(
    sent: tuple[Engine, Emitter, UdpSink],
) -> None:
    engine, emitter, sink = sent
    for _ in range(ROUNDS):  # the same values again and again: from the second flush on, kept texts
        for i in range(CHECKOUTS):
            with engine.connect() as conn:
                conn.execute(select(devices.c.name).where(devices.c.id == i % 5)).all()
                conn.execute(text("SELECT 1")).all()
        emitter.flush()
        texts = split_lines(sink.drain())
        lines = [parse_dogstatsd(t) for t in texts]
        assert sum(values_of(lines, "db.query", pool="wire")) == 2 * CHECKOUTS
        for name, tags in (
            ("db.query.duration", {"operation": "select", "table": "devices"}),
            ("db.query.duration", {"operation": "select", "table": "none"}),
            ("db.pool.checkout_wait", {}),
        ):
            assert len(values_of(lines, name, pool="wire", **tags)) == CHECKOUTS, (name, tags)
            raw = values_sent(texts, name, pool="wire", **tags)
            assert len(raw) == CHECKOUTS and all(whole_microseconds(v) for v in raw), (name, raw[:5])
