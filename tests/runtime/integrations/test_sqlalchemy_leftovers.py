"""What stays behind after uninstall (an inert wrapper, the hooks another library set before us), and what came before.

A real SQLite file database and pool; figures read at the test recorder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from netauto_statsd.integrations.sqlalchemy import _states, instrument_engine, uninstrument_engine
from netauto_statsd.testing import Recorder


def test_a_wrapper_left_under_another_librarys_keeps_no_figure_after_uninstall(
    statsd_recorder: Recorder, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'left.db'}", pool_size=2)
    instrument_engine(engine, "left")
    state = _states[engine]
    dialect, pool = engine.dialect, engine.pool
    ours_execute, ours_connect = dialect.do_execute, pool.connect

    def theirs_execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        ours_execute(cursor, statement, parameters, context)

    def theirs_connect() -> Any:
        return ours_connect()

    dialect.do_execute = theirs_execute  # type: ignore[method-assign]
    pool.connect = theirs_connect  # type: ignore[method-assign]
    try:
        uninstrument_engine(engine)  # ours stays under theirs
        statsd_recorder.clear()
        for i in range(50):
            with engine.connect() as conn:
                assert conn.execute(text("select :i"), {"i": i}).scalar_one() == i
        # nothing sent, and nothing kept either: an inert wrapper never grows a list
        assert statsd_recorder.samples == []
        assert [len(pending) for _, pending in state.series.values()] == [0] * len(state.series)
        assert (state.waits, state.moves, state.by_text) == ([], [], {})
    finally:
        del dialect.do_execute, pool.connect  # type: ignore[attr-defined]
        engine.dispose()


def test_uninstall_gives_back_a_do_return_conn_another_library_set_on_the_pool_before_us(
    statsd_recorder: Recorder, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'theirs.db'}", pool_size=2)
    pool = engine.pool
    returned: list[Any] = []

    def their_return(record: Any) -> None:
        returned.append(record)
        type(pool)._do_return_conn(pool, record)

    pool._do_return_conn = their_return  # type: ignore[method-assign]
    try:
        instrument_engine(engine, "theirs")
        with engine.connect() as conn:
            assert conn.execute(text("select 2")).scalar_one() == 2
        assert len(returned) == 1  # theirs ran under ours
        uninstrument_engine(engine)
        assert vars(pool)["_do_return_conn"] is their_return
        with engine.connect() as conn:
            assert conn.execute(text("select 3")).scalar_one() == 3
        assert len(returned) == 2
    finally:
        uninstrument_engine(engine)
        vars(pool).pop("_do_return_conn", None)
        engine.dispose()


def test_a_statement_on_a_connection_checked_out_before_instrumenting_sends_no_pool_figure(
    statsd_recorder: Recorder, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'before.db'}", pool_size=2)
    conn = engine.connect()  # out before instrumentation: the pool does not move afterwards
    try:
        instrument_engine(engine, "before")
        assert conn.execute(text("select 4")).scalar_one() == 4
        assert statsd_recorder.total("db.query", pool="before") == 1
        # only the size, sent at install: no checkout or return happened since
        assert [(s.tags["state"], s.value) for s in statsd_recorder.find("db.pool.connections")] == [("size", 2)]
    finally:
        conn.close()
        uninstrument_engine(engine)
        engine.dispose()
