"""The SQLAlchemy integration's lock-free hooks: exact under threads, and right through pool changes.

The statement and pool hooks append to pending lists without a lock and the
publisher drains them by index; these tests hammer that with real threads
against a file SQLite database and the real exporter, and walk the pool through
invalidation, ``dispose()``, a pool class with no ``checkedout()`` figure, a
dialect shared with another engine, and an uninstall that cannot unwrap.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from netauto_statsd.integrations.sqlalchemy import instrument_engine, is_instrumented, uninstrument_engine
from netauto_statsd.testing import Recorder
from tests.runtime.integrations.test_sqlalchemy import devices, make_engine, runs
from tests.support import Exporter

THREADS = 8


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Threads trade the GIL every microsecond: a race in the hot paths gets its chance."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(tmp_path)
    yield made
    uninstrument_engine(made)
    made.dispose()


def run_threads(target: Any, count: int = THREADS) -> None:
    """Start ``count`` threads on ``target(index)`` at once; re-raise the first failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            start.wait(30)
            target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    if errors:
        raise errors[0]


class Flusher:
    """Flushes the emitter in a loop while the workload runs: publishes race the hot paths' appends."""

    def __init__(self, emitter: Any) -> None:
        self.emitter = emitter
        self.stop = threading.Event()
        self.flushes = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.emitter.flush()
            self.flushes += 1

    def __enter__(self) -> Flusher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.mark.exporter
def test_counts_are_exact_under_eight_threads_while_publishes_race(
    exporter: Exporter, emitter_for: Any, tmp_path: Path, tiny_switch_interval: None
) -> None:
    emitter = emitter_for(exporter)
    engine = make_engine(tmp_path, pool_size=THREADS, max_overflow=0)
    instrument_engine(engine, "threads", tables={"runs", "devices"})
    rounds = 1000  # cheap statements, densely: appends land while a publish drains

    def work(index: int) -> None:
        with engine.connect() as conn:
            for i in range(rounds):
                conn.exec_driver_sql("SELECT 1").scalar()
                conn.execute(select(devices.c.name).where(devices.c.id == i % 5)).all()
                if i % 50 == 0:
                    conn.execute(select(runs.c.id).where(runs.c.id == index)).all()
                    with pytest.raises(sa_exc.OperationalError):
                        conn.execute(text("SELECT * FROM nowhere"))
        for _ in range(20):  # checkouts too, each with a statement
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1").scalar()

    try:
        with Flusher(emitter) as flusher:
            run_threads(work)
        assert flusher.flushes > 10
        emitter.flush()
        q, n = "netauto_db_queries_total", THREADS * rounds
        exporter.wait_value(q, n + THREADS * 20, pool="threads", operation="select", table="none")
        exporter.wait_value(q, n, pool="threads", operation="select", table="devices")
        exporter.wait_value(q, n // 50, pool="threads", operation="select", table="runs")
        exporter.wait_value(q, n // 50, pool="threads", operation="select", table="other")
        statements = 2 * n + 2 * n // 50 + THREADS * 20
        exporter.wait_value("netauto_db_query_duration_seconds_count", statements, pool="threads")
        exporter.wait_value("netauto_db_errors_total", n // 50, pool="threads", exception="OperationalError")
        exporter.wait_value("netauto_db_pool_checkout_wait_seconds_count", THREADS * 21, pool="threads")
        exporter.wait_value("netauto_db_pool_connections", 0, pool="threads", state="checked_out")
    finally:
        uninstrument_engine(engine)
        engine.dispose()


@pytest.mark.exporter
def test_pool_gauges_are_right_after_many_checkouts_from_many_threads(
    exporter: Exporter, emitter_for: Any, tmp_path: Path, tiny_switch_interval: None
) -> None:
    emitter = emitter_for(exporter)
    engine = make_engine(tmp_path, pool_size=3, max_overflow=2, pool_timeout=60)
    instrument_engine(engine, "churn")
    held: list[Any] = []
    hold, release = threading.Barrier(5), threading.Event()

    def churn(index: int) -> None:
        for _ in range(100):
            with engine.connect() as conn:
                conn.execute(select(runs.c.id)).all()
        if index < 4:  # then four threads keep one connection each: 3 from the pool, 1 overflow
            with engine.connect() as conn:
                held.append(conn)
                hold.wait(60)
                release.wait(60)

    try:
        with Flusher(emitter):
            churner = threading.Thread(target=run_threads, args=(churn,))
            churner.start()
            hold.wait(60)  # four connections are out, every other checkout is back
            exporter.wait_value("netauto_db_pool_connections", 4, pool="churn", state="checked_out")
            exporter.wait_value("netauto_db_pool_connections", 1, pool="churn", state="overflow")
            release.set()
            churner.join(60)
        exporter.wait_value("netauto_db_pool_connections", 0, pool="churn", state="checked_out")
        exporter.wait_value("netauto_db_pool_connections", 0, pool="churn", state="overflow")
        exporter.wait_value("netauto_db_pool_checkout_wait_seconds_count", THREADS * 100 + 4, pool="churn")
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        release.set()
        uninstrument_engine(engine)
        engine.dispose()


def test_an_invalidated_connection_leaves_the_figures_right(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine)
    gauge = statsd_recorder.gauge
    first, second = engine.connect(), engine.connect()
    assert gauge("db.pool.connections", state="checked_out") == 2
    first.invalidate()  # the DBAPI connection is closed; the pool will open a new one
    first.close()
    assert gauge("db.pool.connections", state="checked_out") == 1
    assert statsd_recorder.total("db.pool.invalidated") == 1
    with engine.connect() as again:  # reconnects
        assert again.execute(select(devices.c.name).where(devices.c.id == 3)).scalar_one() == "edge-3"
        assert gauge("db.pool.connections", state="checked_out") == 2
    second.close()
    assert gauge("db.pool.connections", state="checked_out") == 0
    assert statsd_recorder.count("db.pool.checkout_wait") == 3
    assert statsd_recorder.total("db.query", operation="select", table="devices") == 1


def test_dispose_with_a_connection_out_then_the_new_pool(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine)
    gauge = statsd_recorder.gauge
    old = engine.connect()
    assert gauge("db.pool.connections", state="checked_out") == 1
    engine.dispose()  # a new, empty pool; `old` still belongs to the previous one
    fresh = engine.connect()  # the new pool's first connection: the wrappers move there
    assert gauge("db.pool.connections", state="checked_out") == 1  # the engine's pool: the new one
    old.close()
    assert gauge("db.pool.connections", state="checked_out") == 1
    fresh.execute(select(runs.c.id)).all()
    fresh.close()
    assert gauge("db.pool.connections", state="checked_out") == 0
    with engine.connect() as conn:
        assert gauge("db.pool.connections", state="checked_out") == 1
        conn.execute(select(runs.c.id)).all()
    assert gauge("db.pool.connections", state="checked_out") == 0
    assert statsd_recorder.total("db.query", operation="select", table="runs") == 2
    assert statsd_recorder.count("db.pool.checkout_wait") == 2  # the new pool's first checkout began unwrapped


def test_a_pool_without_a_checked_out_figure_is_counted(statsd_recorder: Recorder, tmp_path: Path) -> None:
    make_engine(tmp_path).dispose()
    engine = create_engine(f"sqlite:///{tmp_path / 'netauto.db'}", poolclass=NullPool)
    assert not hasattr(engine.pool, "checkedout")
    instrument_engine(engine, "null")
    gauge = statsd_recorder.gauge
    try:
        first, second = engine.connect(), engine.connect()
        assert gauge("db.pool.connections", pool="null", state="checked_out") == 2
        first.close()
        assert gauge("db.pool.connections", pool="null", state="checked_out") == 1
        engine.dispose()
        third = engine.connect()  # the new pool's first checkout, counted though it began unwrapped
        assert gauge("db.pool.connections", pool="null", state="checked_out") == 2
        second.close()
        third.close()
        assert gauge("db.pool.connections", pool="null", state="checked_out") == 0
        for _ in range(50):
            with engine.connect() as conn:
                conn.execute(select(runs.c.id)).all()
        assert gauge("db.pool.connections", pool="null", state="checked_out") == 0
        assert statsd_recorder.total("db.query", pool="null", operation="select", table="runs") == 50
    finally:
        uninstrument_engine(engine)
        engine.dispose()


def test_executemany_and_statements_without_parameters_are_counted(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine)
    with engine.begin() as conn:
        conn.execute(insert(runs), [{"id": i, "site": "par1"} for i in range(3)])  # one executemany
        assert conn.exec_driver_sql("SELECT count(*) FROM runs").scalar_one() == 3  # no parameters
        with pytest.raises(sa_exc.IntegrityError):
            conn.execute(insert(runs), [{"id": 7, "site": "par1"}, {"id": 7, "site": "fra1"}])
    rec = statsd_recorder
    assert rec.total("db.query", operation="insert", table="runs") == 2
    assert rec.total("db.query", operation="select", table="runs") == 1
    assert rec.total("db.error", operation="insert", exception="IntegrityError") == 1
    assert rec.count("db.query.duration") == 3


def test_an_engine_sharing_the_dialect_counts_each_statement_once(statsd_recorder: Recorder, engine: Engine) -> None:
    derived = engine.execution_options(logging_token="derived")  # shares the dialect and the pool
    instrument_engine(engine, "main")
    instrument_engine(derived, "derived")
    try:
        with derived.connect() as conn:
            conn.execute(select(runs.c.id)).all()
        with engine.connect() as conn:
            conn.execute(select(runs.c.id)).all()
        assert statsd_recorder.total("db.query") == 2  # once each, under the engine that owns the dialect's hook
        assert statsd_recorder.total("db.query", pool="main") == 2
    finally:
        uninstrument_engine(derived)
        uninstrument_engine(engine)


def test_a_wrapper_someone_wrapped_again_goes_inert_after_uninstall(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine)
    dialect, pool = engine.dialect, engine.pool
    ours_execute, ours_connect = dialect.do_execute, pool.connect
    calls: list[str] = []

    def theirs_execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        calls.append(statement)
        ours_execute(cursor, statement, parameters, context)

    def theirs_connect() -> Any:
        calls.append("connect")
        return ours_connect()

    dialect.do_execute = theirs_execute  # type: ignore[method-assign]
    pool.connect = theirs_connect  # type: ignore[method-assign]
    try:
        with engine.connect() as conn:
            assert conn.execute(select(devices.c.name).where(devices.c.id == 2)).scalar_one() == "edge-2"
        assert statsd_recorder.total("db.query") == 1
        uninstrument_engine(engine)  # ours is under theirs: it stays, and does nothing
        assert not is_instrumented(engine)
        statsd_recorder.clear()
        for _ in range(3):
            with engine.connect() as conn:
                assert conn.execute(select(devices.c.name).where(devices.c.id == 4)).scalar_one() == "edge-4"
        assert len(calls) == 2 + 3 * 2  # theirs ran every time
        assert statsd_recorder.samples == []
    finally:
        del dialect.do_execute, pool.connect  # type: ignore[attr-defined]
