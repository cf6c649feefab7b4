"""The hot-path wrappers: around the dialect's ``do_execute*`` and the pool's checkout and return.

They are set on the instances (the engine's dialect, its pool), never on the
classes, and take no lock: a statement appends its duration in integer
nanoseconds to the pending list of its ``(operation, table)`` series; a checkout
appends its wait; a checkout or a return marks the pool as moved. A
``list.append`` is atomic under the GIL and the publisher drains each list by
index (:meth:`_EngineState.publish`), so nothing is lost or counted twice.
Anything else (rounding, tags, the emitter) happens at publish time, at most
every 0.25 s, in the background publisher.

Why instance wrappers and not SQLAlchemy's events: measured per ``SELECT :x``
(CPU, in process, SQLAlchemy 2.1.9 and 2.0.58), a no-op ``do_execute`` dialect
listener costs +0.36-0.48 us and a no-op pair of ``before/after_cursor_execute``
listeners +4.0-4.4 us (any Connection listener moves every statement onto the
event path), while a wrapper on the dialect's ``do_execute`` costs nothing
measurable; a ``checkout`` pool listener sends every checkout through
SQLAlchemy's slow checkout path (+1 us), the wrappers of ``pool.connect`` and
``pool._do_return_conn`` do not.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc

from netauto_statsd.guard import failed

if TYPE_CHECKING:
    from netauto_statsd.integrations.sqlalchemy._engine import _EngineState

#: Marks our wrappers (the dialect of an engine derived with ``execution_options()`` is shared).
OURS = "_netauto_statsd_wrapper"


def timed_statements(state: _EngineState, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a dialect's ``do_execute`` or ``do_executemany`` (four arguments)."""
    by_text = state.by_text

    def timed(cursor: Any, statement: str, parameters: Any, context: Any = None) -> Any:
        started = perf_counter_ns()
        try:
            return original(cursor, statement, parameters, context)
        finally:  # a failed statement was sent too: counted and timed, then db.error in handle_error
            elapsed = perf_counter_ns() - started
            try:
                durations = by_text.get(statement)
                if durations is None:
                    durations = state.durations_for(statement)
                durations.append(elapsed)
                if not state.requested:
                    state.request()
                if state.error is not None:
                    state.raise_deferred()
            except Exception as exc:  # metrics never break the app
                failed("sqlalchemy query count", exc)

    setattr(timed, OURS, True)
    return timed


def timed_statements_no_params(state: _EngineState, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a dialect's ``do_execute_no_params`` (three arguments) with :func:`timed_statements`' timing.

    Statements without parameters are the rare path (DDL, ``exec_driver_sql`` without
    arguments): two more calls each, instead of a second copy of the timing.
    """

    def four_arguments(cursor: Any, statement: str, parameters: Any, context: Any = None) -> Any:
        return original(cursor, statement, context)

    timed_with_params = timed_statements(state, four_arguments)

    def timed(cursor: Any, statement: str, context: Any = None) -> Any:
        return timed_with_params(cursor, statement, None, context)

    setattr(timed, OURS, True)
    return timed


def timed_checkout(state: _EngineState, original: Callable[[], Any], counting: bool) -> Callable[[], Any]:
    """Wrap ``pool.connect``: the checkout wait, and the pool moved (``counting``: +1 for a pool with no count)."""
    waits, moves = state.waits, state.moves

    def connect() -> Any:
        started = perf_counter_ns()
        try:
            connection = original()
        except sa_exc.TimeoutError as error:  # pool exhausted: never reaches handle_error
            state.count_pool_timeout(error)
            raise
        try:
            if state.armed:
                waits.append(perf_counter_ns() - started)
                if counting:
                    moves.append(1)
                state.pool_moved = True
                if not state.requested:
                    state.request()
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy checkout wait", exc)
        return connection

    setattr(connect, OURS, True)
    return connect


def counted_return(state: _EngineState, original: Callable[[Any], Any], counting: bool) -> Callable[[Any], Any]:
    """Wrap ``pool._do_return_conn`` (a checkin, and a detach): the pool moved once the record is back."""
    moves = state.moves

    def do_return_conn(record: Any) -> Any:
        returned = original(record)
        try:
            if state.armed:
                if counting:
                    moves.append(-1)
                state.pool_moved = True
                if not state.requested:
                    state.request()
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy checkin", exc)
        return returned

    setattr(do_return_conn, OURS, True)
    return do_return_conn
