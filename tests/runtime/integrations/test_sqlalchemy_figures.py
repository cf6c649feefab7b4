"""The SQLAlchemy integration's figures, value by value: pool gauges on and off, pre-ping, errors, uninstall.

Real SQLite file databases and real pools; values read at the test recorder
(``statsd_recorder``) or at a real statsd_exporter where the background
publication is what is under test.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, TypeDecorator, create_engine, insert, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.engine.default import DefaultExecutionContext

from netauto_statsd.catalog import CatalogError
from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.integrations._process import mark_short_lived
from netauto_statsd.integrations.sqlalchemy import instrument_engine, uninstrument_engine
from netauto_statsd.testing import Recorder, recording
from tests.runtime.integrations.test_sqlalchemy import devices, make_engine, runs
from tests.runtime.integrations.test_supported_versions import wait_for_child
from tests.support import Exporter, free_port, wait_until


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(tmp_path)
    yield made
    uninstrument_engine(made)
    made.dispose()


def pool_gauges(rec: Recorder) -> list[tuple[str, float]]:
    return [(s.tags["state"], s.value) for s in rec.find("db.pool.connections")]


# ------------------------------------------------------------ pool gauges
def test_pool_gauges_false_sends_no_pool_gauge_but_every_other_figure(
    statsd_recorder: Recorder, engine: Engine
) -> None:
    instrument_engine(engine, "quiet", pool_gauges=False)
    with engine.connect() as conn:
        conn.execute(select(runs.c.id)).all()
    assert statsd_recorder.find("db.pool.connections") == []
    assert statsd_recorder.total("db.query", pool="quiet", operation="select", table="runs") == 1
    assert statsd_recorder.count("db.pool.checkout_wait", pool="quiet") == 1


def test_pool_gauges_of_a_queue_pool_at_install_and_after_each_move(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine, "main")
    assert pool_gauges(statsd_recorder) == [("size", 5)]  # the pool's size, at install
    with engine.connect():
        assert pool_gauges(statsd_recorder) == [("size", 5), ("checked_out", 1)]
    assert pool_gauges(statsd_recorder) == [("size", 5), ("checked_out", 1), ("checked_out", 0)]
    tags = {s.tags["pool"] for s in statsd_recorder.find("db.pool.connections")}
    assert tags == {"main"}


def _in_a_child(tmp_path: Path, short_lived: bool, gauges: bool | None) -> dict[str, Any]:
    """Instrument a new engine in a forked child (marked short-lived or not); what it recorded."""
    out = tmp_path / "child.json"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if short_lived:
                mark_short_lived()
            with recording() as rec:
                engine = create_engine(f"sqlite:///{tmp_path / 'netauto.db'}", pool_size=3)
                instrument_engine(engine, "child", pool_gauges=gauges)
                with engine.connect() as conn:
                    conn.execute(select(runs.c.id)).all()
                uninstrument_engine(engine)
                engine.dispose()
            figures = {"gauges": pool_gauges(rec), "queries": rec.total("db.query", pool="child")}
            out.write_text(json.dumps(figures))
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(wait_for_child(pid)) == 0
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@pytest.mark.parametrize(
    ("short_lived", "gauges", "expected"),
    [
        (True, None, []),  # an RQ work horse: no per-process gauges by default
        (True, True, [["size", 3], ["checked_out", 1], ["checked_out", 0]]),  # asked for: sent
        (False, None, [["size", 3], ["checked_out", 1], ["checked_out", 0]]),  # a long-lived child's own engine
        (False, False, []),
    ],
    ids=["short-lived", "short-lived-asked-for", "long-lived", "long-lived-refused"],
)
def test_per_process_pool_gauges_by_process_kind_and_choice(
    tmp_path: Path, short_lived: bool, gauges: bool | None, expected: list[list[object]]
) -> None:
    make_engine(tmp_path).dispose()
    figures = _in_a_child(tmp_path, short_lived, gauges)
    assert figures == {"gauges": expected, "queries": 1}


# -------------------------------------------------------------- errors
def test_a_failed_pre_ping_is_an_invalidation_not_an_error(statsd_recorder: Recorder, tmp_path: Path) -> None:
    make_engine(tmp_path).dispose()
    engine = create_engine(f"sqlite:///{tmp_path / 'netauto.db'}", pool_pre_ping=True, pool_reset_on_return=None)
    instrument_engine(engine, "pinged")
    try:
        raw = engine.raw_connection()
        driver = raw.driver_connection
        raw.close()  # back in the pool, idle
        driver.close()  # ... and dead behind the pool's back, as after a server restart
        with engine.connect() as conn:  # the pre-ping fails; the pool reconnects transparently
            assert conn.execute(select(devices.c.name).where(devices.c.id == 1)).scalar_one() == "edge-1"
        assert statsd_recorder.total("db.pool.invalidated", pool="pinged") == 1
        assert statsd_recorder.find("db.error") == []
        assert statsd_recorder.total("db.query", pool="pinged") == 1  # the ping is not a query
    finally:
        uninstrument_engine(engine)
        engine.dispose()


def test_an_error_is_tagged_with_the_driver_exception_and_the_statement_operation(
    statsd_recorder: Recorder, engine: Engine
) -> None:
    instrument_engine(engine, "errs", tables={"runs"})
    with engine.connect() as conn:
        with pytest.raises(sa_exc.OperationalError):
            conn.exec_driver_sql("DELETE FROM nowhere")
        with pytest.raises(sa_exc.OperationalError):
            conn.execute(text("UPDATE nowhere SET a = 1"))
        with pytest.raises(sa_exc.IntegrityError):
            conn.execute(insert(runs), [{"id": 1, "site": "a"}, {"id": 1, "site": "b"}])
    errors = sorted(
        (s.tags["operation"], s.tags["exception"], s.tags["pool"], s.value) for s in statsd_recorder.find("db.error")
    )
    assert errors == [
        ("delete", "OperationalError", "errs", 1),
        ("insert", "IntegrityError", "errs", 1),
        ("update", "OperationalError", "errs", 1),
    ]


# ------------------------------------------------------------ uninstall
@pytest.mark.exporter
def test_uninstall_publishes_the_figures_still_pending(exporter: Exporter, emitter_for: Any, engine: Engine) -> None:
    emitter = emitter_for(exporter, flush_interval=60)
    instrument_engine(engine, "leaving", tables={"runs"})
    with engine.connect() as conn:
        for _ in range(3):
            conn.execute(select(runs.c.id)).all()
    uninstrument_engine(engine)  # before the background publish (0.25 s): uninstall hands them over
    emitter.flush()
    exporter.wait_value("netauto_db_queries_total", 3, pool="leaving", operation="select", table="runs")
    exporter.wait_value("netauto_db_pool_checkout_wait_seconds_count", 1, pool="leaving")


def test_an_error_before_any_statement_is_counted_as_other(statsd_recorder: Recorder, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")  # cannot be opened
    instrument_engine(engine, "unreachable")
    try:
        with pytest.raises(sa_exc.OperationalError, match="unable to open database file"):
            engine.connect()
        errors = [(s.tags["operation"], s.tags["exception"], s.value) for s in statsd_recorder.find("db.error")]
        assert errors == [("other", "OperationalError", 1)]
    finally:
        uninstrument_engine(engine)
        engine.dispose()


class _Checked(TypeDecorator[str]):
    """A column type that refuses some values before they reach the driver."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value == "refused":
            raise ValueError("not a site")
        return value


def test_an_error_raised_before_the_driver_is_tagged_with_its_own_class(
    statsd_recorder: Recorder, engine: Engine
) -> None:
    checked = Table("runs", MetaData(), Column("id", Integer, primary_key=True), Column("site", _Checked(16)))
    instrument_engine(engine, "bind")
    with engine.connect() as conn, pytest.raises(sa_exc.StatementError, match="not a site"):
        conn.execute(insert(checked).values(id=1, site="refused"))
    errors = [(s.tags["operation"], s.tags["exception"]) for s in statsd_recorder.find("db.error")]
    assert errors == [("insert", "ValueError")]  # the original, not SQLAlchemy's StatementError around it
    assert statsd_recorder.find("db.query") == []  # never reached the driver


def test_an_engine_instrumented_again_after_uninstall_is_measured_again(
    statsd_recorder: Recorder, engine: Engine
) -> None:
    instrument_engine(engine, "first")
    uninstrument_engine(engine)
    instrument_engine(engine, "second")
    with engine.connect() as conn:
        conn.execute(select(runs.c.id)).all()
        conn.exec_driver_sql("SELECT 1").scalar()  # no parameters
        conn.execute(insert(runs), [{"id": 1, "site": "a"}, {"id": 2, "site": "b"}])  # executemany
    queries = sorted((s.tags["pool"], s.tags["operation"], s.tags["table"]) for s in statsd_recorder.find("db.query"))
    assert queries == [("second", "insert", "runs"), ("second", "select", "none"), ("second", "select", "runs")]


# --------------------------------------------------- strict mode reaches the developer
class _NoText:
    """An engine name the catalog cannot turn into a tag value: strict mode refuses it."""

    def __str__(self) -> str:
        raise RuntimeError("no text")


@pytest.fixture
def strict_emitter() -> Iterator[Emitter]:
    """A real strict emitter sending nowhere (no test recorder: the hooks' own emissions raise)."""
    made = Emitter(Settings(host="127.0.0.1", port=free_port(socket.SOCK_DGRAM), flush_interval=60, strict=True))
    previous = set_emitter(made)
    yield made
    set_emitter(previous)
    made.close()


def _strict_engine(tmp_path: Path, **pool: Any) -> Engine:
    engine = make_engine(tmp_path, **pool)
    instrument_engine(engine, _NoText(), pool_gauges=False)  # type: ignore[arg-type]
    return engine


def test_strict_mode_a_pool_timeout_count_refused_by_the_catalog_is_raised(
    strict_emitter: Emitter, tmp_path: Path
) -> None:
    engine = _strict_engine(tmp_path, pool_size=1, max_overflow=0, pool_timeout=0.05)
    try:
        with engine.connect(), pytest.raises(CatalogError, match="has no text"):
            engine.connect()
    finally:
        uninstrument_engine(engine)
        engine.dispose()
    assert strict_emitter.stats()["internal_errors"] == 0


def test_strict_mode_an_invalidation_count_refused_by_the_catalog_is_raised(
    strict_emitter: Emitter, tmp_path: Path
) -> None:
    engine = _strict_engine(tmp_path)
    try:
        conn = engine.connect()
        with pytest.raises(CatalogError, match="has no text"):
            conn.invalidate()
        conn.close()
    finally:
        uninstrument_engine(engine)
        engine.dispose()
    assert strict_emitter.stats()["internal_errors"] == 0


def test_strict_mode_an_error_count_refused_by_the_catalog_is_raised(strict_emitter: Emitter, tmp_path: Path) -> None:
    engine = _strict_engine(tmp_path)
    try:
        with engine.connect() as conn, pytest.raises(CatalogError, match="has no text"):
            conn.execute(text("SELECT * FROM nowhere"))
    finally:
        uninstrument_engine(engine)
        engine.dispose()
    assert strict_emitter.stats()["internal_errors"] == 0


def test_an_engine_instrumented_without_a_name_reports_the_default_pool(
    statsd_recorder: Recorder, engine: Engine
) -> None:
    instrument_engine(engine)
    with engine.connect() as conn:
        conn.execute(select(runs.c.id)).all()
    assert {s.tags["pool"] for s in statsd_recorder.samples} == {"default"}
    assert statsd_recorder.total("db.query", pool="default", operation="select", table="runs") == 1


def test_anything_but_an_engine_is_refused_by_type(statsd_recorder: Recorder) -> None:
    with pytest.raises(TypeError, match=r"^expected a SQLAlchemy Engine or AsyncEngine, got Connection$"):
        instrument_engine(sqlite3.connect(":memory:"))


# ------------------------------------------------------------ statements
def test_with_a_test_recorder_each_statement_is_seen_at_once(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine, "now")
    with engine.connect() as conn:  # no checkin yet: only the statement itself can publish
        conn.execute(select(runs.c.id)).all()
        assert statsd_recorder.total("db.query", pool="now", operation="select", table="runs") == 1
        conn.execute(select(devices.c.id)).all()
        assert statsd_recorder.total("db.query", pool="now", operation="select", table="devices") == 1
        assert statsd_recorder.count("db.query.duration", pool="now") == 2


def test_statements_sent_without_parameters_are_counted_and_answered(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine, "bare")
    with engine.connect() as conn:
        bare = conn.execution_options(no_parameters=True)  # the dialect's do_execute_no_params
        assert bare.exec_driver_sql("SELECT count(*) FROM devices").scalar_one() == 5
        with pytest.raises(sa_exc.OperationalError):
            bare.exec_driver_sql("SELECT * FROM nowhere")
    rec = statsd_recorder
    assert rec.total("db.query", pool="bare", operation="select", table="devices") == 1
    assert rec.total("db.query", pool="bare", operation="select", table="nowhere") == 1
    assert rec.total("db.error", pool="bare", operation="select", exception="OperationalError") == 1


def test_a_do_execute_set_on_the_dialect_before_us_gets_every_argument(
    statsd_recorder: Recorder, engine: Engine
) -> None:
    dialect = engine.dialect
    seen: list[tuple[str, object, object]] = []

    def theirs(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        seen.append((statement, parameters, context))
        type(dialect).do_execute(dialect, cursor, statement, parameters, context)

    dialect.do_execute = theirs  # type: ignore[method-assign]
    try:
        instrument_engine(engine, "under")  # ours wraps theirs
        with engine.connect() as conn:
            assert conn.execute(select(devices.c.name).where(devices.c.id == 3)).scalar_one() == "edge-3"
        ((statement, parameters, context),) = seen
        assert "FROM devices" in statement and parameters == (3,)
        assert isinstance(context, DefaultExecutionContext) and context.statement == statement
        assert statsd_recorder.total("db.query", pool="under", table="devices") == 1
    finally:
        uninstrument_engine(engine)
        vars(dialect).pop("do_execute", None)


def test_a_do_execute_no_params_set_on_the_dialect_before_us_gets_the_execution_context(
    statsd_recorder: Recorder, engine: Engine
) -> None:
    dialect = engine.dialect
    seen: list[tuple[object, str, object]] = []

    def theirs(cursor: Any, statement: str, context: Any = None) -> None:
        seen.append((cursor, statement, context))
        type(dialect).do_execute_no_params(dialect, cursor, statement, context)

    dialect.do_execute_no_params = theirs  # type: ignore[method-assign]
    try:
        instrument_engine(engine, "bare-under")  # ours wraps theirs
        with engine.connect() as conn:
            bare = conn.execution_options(no_parameters=True)
            assert bare.exec_driver_sql("SELECT count(*) FROM devices").scalar_one() == 5
        ((cursor, statement, context),) = seen
        assert statement == "SELECT count(*) FROM devices" and cursor is not None
        assert isinstance(context, DefaultExecutionContext) and context.statement == statement
        assert statsd_recorder.total("db.query", pool="bare-under", table="devices") == 1
    finally:
        uninstrument_engine(engine)
        vars(dialect).pop("do_execute_no_params", None)


def test_uninstrument_gives_back_the_wrappers_another_library_set_on_the_instances_before_us(
    statsd_recorder: Recorder, engine: Engine
) -> None:
    """Uninstall takes only our wrappers off: a ``do_execute`` or ``pool.connect`` someone else set on the
    dialect or pool instance before ``instrument_engine`` is theirs again, and still runs (it was deleted)."""
    dialect, pool = engine.dialect, engine.pool
    executed: list[str] = []
    connects: list[int] = []

    def their_execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        executed.append(statement)
        type(dialect).do_execute(dialect, cursor, statement, parameters, context)

    def their_connect() -> Any:
        connects.append(1)
        return type(pool).connect(pool)

    dialect.do_execute = their_execute  # type: ignore[method-assign]
    pool.connect = their_connect  # type: ignore[method-assign]
    try:
        instrument_engine(engine, "restored")
        with engine.connect() as conn:
            assert conn.execute(select(devices.c.name).where(devices.c.id == 2)).scalar_one() == "edge-2"
        assert (len(executed), len(connects)) == (1, 1)
        assert statsd_recorder.total("db.query", pool="restored", table="devices") == 1
        uninstrument_engine(engine)
        assert vars(dialect)["do_execute"] is their_execute
        assert vars(pool)["connect"] is their_connect
        with engine.connect() as conn:  # theirs still run, ours no more
            assert conn.execute(select(devices.c.name).where(devices.c.id == 2)).scalar_one() == "edge-2"
        assert (len(executed), len(connects)) == (2, 2)
        assert statsd_recorder.total("db.query", pool="restored", table="devices") == 1
    finally:
        uninstrument_engine(engine)
        vars(dialect).pop("do_execute", None)
        vars(pool).pop("connect", None)


def test_overflow_is_sent_when_it_changes_and_only_then(statsd_recorder: Recorder, tmp_path: Path) -> None:
    engine = make_engine(tmp_path, pool_size=1, max_overflow=1)
    instrument_engine(engine, "spill")
    try:
        first = engine.connect()  # 1 out: no overflow, as at install
        second = engine.connect()  # 2 out: 1 beyond the pool's size
        second.execute(select(runs.c.id)).all()  # a statement moves no pool figure
        second.close()
        first.close()
        overflow = statsd_recorder.values("db.pool.connections", pool="spill", state="overflow")
        checked_out = statsd_recorder.values("db.pool.connections", pool="spill", state="checked_out")
        assert (overflow, checked_out) == ([1, 0], [1, 2, 1, 0])
    finally:
        uninstrument_engine(engine)
        engine.dispose()


def test_strict_mode_a_refusal_met_by_a_background_publish_is_raised_by_the_next_statement(
    strict_emitter: Emitter, tmp_path: Path, only_the_publisher_thread_publishes: None
) -> None:
    engine = _strict_engine(tmp_path)
    try:
        with engine.connect() as conn:

            def refused() -> bool:
                try:
                    conn.execute(select(runs.c.id)).all()  # the background publish meets the refusal
                except CatalogError as error:
                    return "has no text" in str(error)
                return False

            wait_until(refused, 10, "the next statement to raise the publish's CatalogError")
            conn.rollback()
            conn.execute(select(runs.c.id)).all()  # raised once: the statements after it run
    finally:
        uninstrument_engine(engine)
        engine.dispose()


def test_an_engine_sharing_the_dialect_counts_a_statement_without_parameters_once(
    statsd_recorder: Recorder, engine: Engine
) -> None:
    derived = engine.execution_options(logging_token="derived")  # shares the dialect and the pool
    instrument_engine(engine, "main")
    instrument_engine(derived, "derived")
    try:
        with derived.connect() as conn:
            conn.execution_options(no_parameters=True).exec_driver_sql("SELECT 1").scalar()
        assert statsd_recorder.total("db.query") == 1
    finally:
        uninstrument_engine(derived)


def test_statement_durations_are_whole_microseconds_in_seconds(statsd_recorder: Recorder, engine: Engine) -> None:
    instrument_engine(engine, "units")
    with engine.connect() as conn:
        for _ in range(20):
            conn.execute(select(runs.c.id)).all()
    durations = statsd_recorder.values("db.query.duration", pool="units")
    assert len(durations) == 20
    assert all(0 <= d < 5 for d in durations), durations  # seconds
    assert all(d == round(d, 6) for d in durations), durations  # rounded to the microsecond
