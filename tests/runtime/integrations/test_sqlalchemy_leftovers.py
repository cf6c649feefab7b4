"""What stays behind after uninstall: a wrapper left under another library's is inert and keeps nothing.

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
