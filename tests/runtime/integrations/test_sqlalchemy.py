"""SQLAlchemy integration on SQLite (file databases, real pools, real threads, the real exporter)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.integrations.sqlalchemy import (
    classify_statement,
    instrument_engine,
    is_instrumented,
    uninstrument_engine,
)
from netauto_statsd.testing import Recorder
from tests.support import Exporter, free_port, require_module, wait_until

metadata = MetaData()
runs = Table("runs", metadata, Column("id", Integer, primary_key=True), Column("site", String(16)))
devices = Table("devices", metadata, Column("id", Integer, primary_key=True), Column("name", String(32)))


def make_engine(tmp_path: Path, **pool: Any) -> Engine:
    """A file SQLite engine (QueuePool) with the schema created and a first connection made, uninstrumented."""
    engine = create_engine(f"sqlite:///{tmp_path / 'netauto.db'}", **pool)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(devices), [{"id": i, "name": f"edge-{i}"} for i in range(5)])
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(tmp_path)
    yield made
    uninstrument_engine(made)
    made.dispose()


def workload(engine: Engine) -> list[Any]:
    """A fixed mix of statements; returns what they returned."""
    out: list[Any] = []
    with engine.begin() as conn:
        for i in range(7):
            conn.execute(insert(runs).values(id=i, site="par1"))
        for i in range(5):
            out.append(conn.execute(select(runs.c.id).where(runs.c.id == i)).scalar_one())
        out.append(conn.execute(select(devices.c.name).order_by(devices.c.id)).scalars().all())
        out.append(conn.execute(update(runs).where(runs.c.id < 3).values(site="fra1")).rowcount)
        out.append(conn.execute(delete(runs).where(runs.c.id == 6)).rowcount)
        out.append(conn.execute(text("SELECT count(*) FROM runs")).scalar_one())
        out.append(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
    return out


# ------------------------------------------------------------- classification
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('SELECT runs.id FROM "runs" WHERE runs.id = ?', ("select", "runs")),
        ("  select count(*) from main.devices", ("select", "devices")),
        ("/* hint */ -- note\n(SELECT 1)", ("select", "none")),
        ("SELECT * FROM (SELECT id FROM runs) AS sub", ("select", "runs")),
        ("INSERT INTO `chunks` (a) VALUES (?)", ("insert", "chunks")),
        ("UPDATE ONLY [runs] SET a = 1", ("update", "runs")),
        ("DELETE FROM runs WHERE id = 1", ("delete", "runs")),
        ("WITH r AS (SELECT id FROM runs) DELETE FROM chunks WHERE run_id IN (SELECT id FROM r)", ("delete", "chunks")),
        ("WITH r AS (SELECT 1) SELECT * FROM r", ("select", "r")),
        ("PRAGMA user_version", ("other", "none")),
        ('SELECT * FROM "XrayX"', ("select", "XrayX")),  # only the quotes are taken off
        ("INSERT INTO [Xs]", ("insert", "Xs")),
        ("CREATE TABLE runs (id INTEGER)", ("other", "none")),
        ("", ("other", "none")),
    ],
)
def test_classify_statement(sql: str, expected: tuple[str, str]) -> None:
    assert classify_statement(sql) == expected


@given(st.text(max_size=300))
def test_classify_never_raises_and_stays_bounded(sql: str) -> None:
    operation, table = classify_statement(sql)
    assert operation in {"select", "insert", "update", "delete", "other"}
    assert isinstance(table, str) and table
    if operation == "other":
        assert table == "none"


# ------------------------------------------------------------ through the exporter
@pytest.mark.exporter
def test_counts_and_durations_by_operation_reach_the_exporter(
    exporter: Exporter, emitter_for: Any, engine: Engine
) -> None:
    emitter_for(exporter)
    instrument_engine(engine, "main", tables={"runs"})
    started = time.perf_counter()
    workload(engine)
    elapsed = time.perf_counter() - started

    expected = {
        ("insert", "runs"): 7,
        ("select", "runs"): 6,
        ("select", "other"): 1,  # devices: not declared
        ("update", "runs"): 1,
        ("delete", "runs"): 1,
        ("other", "none"): 1,
    }
    for (operation, table), count in expected.items():
        labels = {"pool": "main", "operation": operation, "table": table}
        exporter.wait_value("netauto_db_queries_total", count, **labels)
        exporter.wait_value("netauto_db_query_duration_seconds_count", count, **labels)
    total = exporter.value("netauto_db_query_duration_seconds_sum", pool="main")
    assert 0 < total < elapsed
    exporter.wait_value("netauto_db_pool_checkout_wait_seconds_count", 1, pool="main")
    exporter.wait_value("netauto_db_pool_connections", 5, pool="main", state="size")
    exporter.wait_value("netauto_db_pool_connections", 0, pool="main", state="checked_out")


def test_errors_are_counted_by_class_and_raised_unchanged(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine)
    with engine.connect() as conn:
        conn.execute(insert(runs).values(id=1, site="par1"))
        with pytest.raises(sa_exc.IntegrityError):
            conn.execute(insert(runs).values(id=1, site="par1"))
        with pytest.raises(sa_exc.OperationalError, match="no such table"):
            conn.execute(text("SELECT * FROM nowhere"))
    rec = statsd_recorder
    assert rec.total("db.error", operation="insert", exception="IntegrityError") == 1
    assert rec.total("db.error", operation="select", exception="OperationalError") == 1
    assert rec.total("db.error") == 2
    # Failed statements were sent to the driver: they are queries too, and timed.
    assert rec.total("db.query", operation="insert", table="runs") == 2
    assert rec.total("db.query", operation="select", table="nowhere") == 1
    assert rec.count("db.query.duration") == 3


# ------------------------------------------------------------------- the pool
@pytest.mark.exporter
def test_pool_under_contention(exporter: Exporter, emitter_for: Any, tmp_path: Path) -> None:
    emitter = emitter_for(exporter)
    emitter.recorder = recorder = Recorder()
    engine = make_engine(tmp_path, pool_size=2, max_overflow=1, pool_timeout=30)
    instrument_engine(engine, "busy")
    threads_n, holders = 8, 3  # more threads than the pool can serve at once
    release = threading.Event()
    started: list[float] = []
    measured: list[float] = []
    lock = threading.Lock()

    def use_connection() -> None:
        begin = time.perf_counter()
        with lock:
            started.append(begin)
        with engine.connect() as conn:
            got = time.perf_counter()
            with lock:
                measured.append(got - begin)
            conn.execute(select(runs.c.id)).all()
            release.wait(30)

    threads = [threading.Thread(target=use_connection) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    try:
        # Size 2 + overflow 1 are all checked out and the exporter says so; five threads wait.
        exporter.wait_value("netauto_db_pool_connections", holders, pool="busy", state="checked_out")
        exporter.wait_value("netauto_db_pool_connections", 1, pool="busy", state="overflow")
        exporter.wait_value("netauto_db_pool_connections", 2, pool="busy", state="size")
        wait_until(lambda: len(started) == threads_n, 10, "every thread to ask for a connection")
        assert len(measured) == holders
        released_at = time.perf_counter()
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    exporter.wait_value("netauto_db_pool_connections", 0, pool="busy", state="checked_out")
    exporter.wait_value("netauto_db_pool_connections", 0, pool="busy", state="overflow")
    exporter.wait_value("netauto_db_pool_checkout_wait_seconds_count", threads_n, pool="busy")

    # Each emitted wait is bracketed by the wait the thread itself measured around engine.connect().
    waits = sorted(recorder.values("db.pool.checkout_wait", pool="busy"))
    assert len(waits) == threads_n
    for emitted, outer in zip(waits, sorted(measured), strict=True):
        assert emitted <= outer
    # The five that queued waited until the release (give or take the few microseconds
    # between a thread's own clock reading and its call into the pool).
    queued_for = released_at - max(started)
    assert sum(w >= 0.5 * queued_for for w in waits) >= threads_n - holders
    assert max(recorder.values("db.pool.connections", pool="busy", state="checked_out")) == holders
    uninstrument_engine(engine)
    engine.dispose()


def test_pool_timeout_and_invalidation_are_counted(statsd_recorder: Recorder, tmp_path: Path) -> None:
    engine = make_engine(tmp_path, pool_size=1, max_overflow=0, pool_timeout=0.05)
    instrument_engine(engine)
    with engine.connect() as held:
        with pytest.raises(sa_exc.TimeoutError):
            engine.connect()
        held.invalidate()
    assert statsd_recorder.total("db.error", operation="other", exception="TimeoutError") == 1
    assert statsd_recorder.total("db.pool.invalidated") == 1
    assert statsd_recorder.gauge("db.pool.connections", state="checked_out") == 0
    uninstrument_engine(engine)
    engine.dispose()


def test_detached_connections_leave_the_checked_out_figure(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine)
    raw = engine.raw_connection()
    assert statsd_recorder.gauge("db.pool.connections", state="checked_out") == 1
    raw.detach()  # no longer the pool's: it is never checked in
    raw.close()
    assert statsd_recorder.gauge("db.pool.connections", state="checked_out") == 0


def test_other_do_execute_listeners_still_run(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine)
    seen: list[str] = []

    def theirs(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        seen.append(statement)
        return False  # let SQLAlchemy execute it: through the dialect's do_execute, which we time

    event.listen(engine, "do_execute", theirs)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(devices.c.name).where(devices.c.id == 1)).scalar_one() == "edge-1"
    finally:
        event.remove(engine, "do_execute", theirs)
    assert len(seen) == 1
    assert statsd_recorder.total("db.query", operation="select", table="devices") == 1  # measured once

    def executes_itself(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        seen.append(statement)
        cursor.execute(statement, parameters)
        return True  # SQLAlchemy skips the dialect's do_execute: the statement goes unmeasured

    event.listen(engine, "do_execute", executes_itself)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(devices.c.name).where(devices.c.id == 2)).scalar_one() == "edge-2"
    finally:
        event.remove(engine, "do_execute", executes_itself)
    assert len(seen) == 2
    assert statsd_recorder.total("db.query") == 1
    with engine.connect() as conn:
        conn.execute(select(devices.c.name)).all()
    assert statsd_recorder.total("db.query", operation="select", table="devices") == 2


# ---------------------------------------------------------- install / remove
def listener_counts(engine: Engine) -> dict[str, int]:
    """Every listener on the engine, its dialect and its pool, per event name."""
    counts = {}
    for prefix, dispatch in (("engine", engine.dispatch), ("dialect", engine.dialect.dispatch)):
        for name in dir(dispatch):
            if not name.startswith("_") and hasattr(getattr(dispatch, name), "__len__"):
                counts[f"{prefix}.{name}"] = len(getattr(dispatch, name))
    for name in dir(engine.pool.dispatch):
        if not name.startswith("_") and hasattr(getattr(engine.pool.dispatch, name), "__len__"):
            counts[f"pool.{name}"] = len(getattr(engine.pool.dispatch, name))
    return counts


def test_instrument_is_idempotent_and_uninstrument_removes_everything(
    statsd_recorder: Recorder, engine: Engine
) -> None:
    before = listener_counts(engine)
    instrument_engine(engine)
    once = listener_counts(engine)
    instrument_engine(engine, "ignored: already instrumented")
    assert listener_counts(engine) == once != before
    assert is_instrumented(engine)
    workload(engine)
    assert statsd_recorder.total("db.query", operation="insert") == 7  # counted once, not twice

    engine.dispose()  # a new pool: the listeners follow it, the checkout wrapper from its first checkout on
    for _ in range(2):
        with engine.connect() as conn:
            conn.execute(select(runs.c.id)).all()
    assert statsd_recorder.total("db.query", operation="select", table="runs") == 5 + 1 + 2
    assert statsd_recorder.count("db.pool.checkout_wait") == 1 + 1
    assert "connect" in vars(engine.pool)

    uninstrument_engine(engine)
    uninstrument_engine(engine)  # idempotent
    assert not is_instrumented(engine)
    assert listener_counts(engine) == before
    assert "connect" not in vars(engine.pool)
    statsd_recorder.clear()
    workload_on_fresh_rows(engine)
    assert statsd_recorder.samples == []


def workload_on_fresh_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(runs))
    workload(engine)


def test_async_engine_through_sync_engine(statsd_recorder: Recorder, tmp_path: Path) -> None:
    require_module("greenlet", "SQLAlchemy's asyncio layer needs it: pip install 'SQLAlchemy[asyncio]'")
    from sqlalchemy.ext.asyncio import create_async_engine

    make_engine(tmp_path).dispose()
    async_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'netauto.db'}")

    async def run() -> list[str]:
        instrument_engine(async_engine, "async")
        try:
            async with async_engine.begin() as conn:
                await conn.execute(insert(runs).values(id=1, site="par1"))
                names = (await conn.execute(select(devices.c.name))).scalars().all()
            with pytest.raises(sa_exc.IntegrityError):
                async with async_engine.begin() as conn:
                    await conn.execute(insert(runs).values(id=1, site="par1"))
            return list(names)
        finally:
            uninstrument_engine(async_engine)
            await async_engine.dispose()

    assert len(asyncio.run(run())) == 5
    assert is_instrumented(async_engine) is False
    rec = statsd_recorder
    assert rec.total("db.query", pool="async", operation="insert", table="runs") == 2
    assert rec.total("db.query", pool="async", operation="select", table="devices") == 1
    assert rec.total("db.error", pool="async", exception="IntegrityError") == 1
    assert rec.count("db.pool.checkout_wait", pool="async") == 2


# ------------------------------------------------------------------- fork
@pytest.mark.exporter
def test_an_explicit_flush_sends_the_statements_still_pending(
    exporter: Exporter, emitter_for: Any, engine: Engine
) -> None:
    # The longest flush interval, and flush() at once: only the flush hook can hand over
    # what the engine batched (the background publish waits up to 0.25 s).
    emitter = emitter_for(exporter, flush_interval=60)
    instrument_engine(engine, "pending", tables={"runs"})
    with engine.connect() as conn:
        conn.execute(select(runs.c.id)).all()
    emitter.flush()
    exporter.wait_value("netauto_db_queries_total", 1, pool="pending", operation="select", table="runs")
    exporter.wait_value("netauto_db_query_duration_seconds_count", 1, pool="pending", operation="select")


@pytest.mark.exporter
def test_forked_child_uses_its_own_connections_and_sends_no_pool_gauges(
    exporter: Exporter, emitter_for: Any, engine: Engine
) -> None:
    emitter = emitter_for(exporter)
    instrument_engine(engine, "forked")
    with engine.connect() as conn:
        conn.execute(select(runs.c.id)).all()  # the pool now holds one idle connection
    emitter.flush()
    pid = os.fork()
    if pid == 0:  # the documented pattern for an RQ horse: never reuse the parent's pooled connection
        code = 1
        try:
            engine.dispose(close=False)
            with engine.begin() as conn:
                conn.execute(insert(runs).values(id=42, site="child"))
            emitter.flush()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with engine.connect() as conn:  # the parent's pooled connection still works
        assert conn.execute(select(runs.c.site).where(runs.c.id == 42)).scalar_one() == "child"
    exporter.wait_value("netauto_db_queries_total", 1, pool="forked", operation="insert")
    exporter.wait_value("netauto_db_queries_total", 2, pool="forked", operation="select")
    processes = {labels["process"] for _, labels, _ in exporter.samples("netauto_db_pool_connections")}
    assert len(processes) == 1, f"only the parent reports pool gauges, got {processes}"


# ---------------------------------------------------- metrics backend down
def test_queries_behave_the_same_when_the_metrics_backend_is_down(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "measured").mkdir()
    plain, measured = make_engine(tmp_path / "plain"), make_engine(tmp_path / "measured")
    nobody = free_port(socket.SOCK_DGRAM)  # nothing listens: every datagram bounces
    emitter = Emitter(Settings(host="127.0.0.1", port=nobody, flush_interval=0.05))
    previous = set_emitter(emitter)
    try:
        instrument_engine(measured)
        results = []
        for engine in (plain, measured):
            outcome = workload(engine)
            with pytest.raises(sa_exc.IntegrityError) as error, engine.begin() as conn:
                conn.execute(insert(runs).values(id=1, site="par1"))
            results.append((outcome, str(error.value.orig)))
        emitter.flush()
        assert results[0] == results[1]
        assert emitter.stats()["accepted"] > 0 and emitter.stats()["internal_errors"] == 0
    finally:
        set_emitter(previous)
        emitter.close()
        uninstrument_engine(measured)
        plain.dispose()
        measured.dispose()
