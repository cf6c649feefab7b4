"""SQLAlchemy engine and pool instrumentation (the seed's PromEx Ecto plugin).

::

    engine = create_engine(os.environ["DATABASE_URL"])      # or create_async_engine(...)
    instrument_engine(engine, "default", tables={"runs", "chunks", "devices"})
    uninstrument_engine(engine)                              # every listener and wrapper removed

Per engine ``name`` (the ``pool`` tag): ``db.query`` and ``db.query.duration``
(seconds) by ``operation`` (select / insert / update / delete / other) and
``table`` (read from the SQL, never sending it; ``none`` if it names none,
``other`` outside ``tables``), failed statements included; ``db.error`` by the
driver's exception class (``TimeoutError`` for an exhausted pool); per-process
gauges ``db.pool.connections`` (``checked_out``, ``overflow`` beyond the pool
size, ``size``); ``db.pool.checkout_wait`` and ``db.pool.invalidated``.

Hooks, all tracked and removable (costs measured in docs/benchmarks.md): the
dialect's ``do_execute``, ``do_executemany`` and ``do_execute_no_params`` are
wrapped on the engine's dialect instance to time statements; ``pool.connect``
and ``pool._do_return_conn`` on the pool instance, for the checkout wait and to
know the pool moved (the gauges read the pool's own ``checkedout()`` when it has
one); the ``handle_error`` dialect event counts errors; the pool's ``invalidate``
and ``soft_invalidate`` events count invalidations, and its ``connect`` event
moves the pool wrappers to the new pool after ``engine.dispose()``. Not
SQLAlchemy's statement events: a ``do_execute`` listener costs SQLAlchemy's
dispatch on every statement, and any Connection listener
(``before/after_cursor_execute``) moves every statement onto SQLAlchemy's event
path, +4 us per ``SELECT :x`` before our code runs; nor the ``checkout`` pool
event, which sends every checkout through SQLAlchemy's slow checkout path.
The statement wrappers run whatever other ``do_execute`` listeners decide: a
statement a listener executes itself (returns True) goes unmeasured.

Fork: a forked child (an RQ horse) must call ``engine.dispose(close=False)``
before using the engine (docs/integrations-rq-sqlalchemy.md). Our state resets
in the child. Per-process pool gauges come only from long-lived processes: not
from a forked child of the process that instrumented the engine, nor from an RQ
work horse, even for an engine created inside the job (one ``process`` series
per job would pile up until the TTL). Errors inside the instrumentation go
through :mod:`netauto_statsd.guard`: swallowed, counted and logged at debug
level, except :class:`~netauto_statsd.catalog.CatalogError` in strict mode.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from netauto_statsd.integrations._base import Instrumentor
from netauto_statsd.integrations.sqlalchemy._engine import _EngineState
from netauto_statsd.integrations.sqlalchemy._statements import NO_TABLE, OTHER, classify_statement

__all__ = [
    "NO_TABLE",
    "OTHER",
    "SQLAlchemyInstrumentor",
    "classify_statement",
    "instrument_engine",
    "is_instrumented",
    "uninstrument_engine",
]

_EVENTS = (
    ("handle_error", "handle_error"),  # the dialect's
    ("invalidate", "invalidate"),  # the pool's, as the next two
    ("soft_invalidate", "invalidate"),
    ("connect", "connected"),
)

_states: weakref.WeakKeyDictionary[Engine, _EngineState] = weakref.WeakKeyDictionary()
_fork_hook_registered = False


def _sync_engine(engine: Any) -> Engine:
    """The :class:`Engine` behind ``engine`` (an ``AsyncEngine`` exposes it as ``sync_engine``)."""
    target = getattr(engine, "sync_engine", engine)
    if not isinstance(target, Engine):
        raise TypeError(f"expected a SQLAlchemy Engine or AsyncEngine, got {type(engine).__name__}")
    return target


class SQLAlchemyInstrumentor(Instrumentor[Engine, _EngineState]):
    """Dialect and pool hooks on one engine (an ``AsyncEngine``'s ``sync_engine``); all removable."""

    integration = "netauto_statsd.integrations.sqlalchemy"

    def _state_of(self, engine: Engine, /) -> _EngineState | None:
        return _states.get(engine)

    def _install(self, engine: Engine, /, **options: Any) -> None:
        state = _EngineState(engine, options["name"], options["tables"], options["pool_gauges"])
        state.checked_out = _initial_checked_out(engine.pool)
        for event_name, method in _EVENTS:
            listener = getattr(state, method)
            event.listen(engine, event_name, listener)
            state.listeners.append((event_name, listener))
        state.patch_dialect(engine.dialect)
        state.patch_pool(engine.pool)
        _states[engine] = state
        _register_fork_hook()

    def _uninstall(self, engine: Engine, state: _EngineState, /) -> None:
        del _states[engine]
        for event_name, listener in state.listeners:
            if event.contains(engine, event_name, listener):
                event.remove(engine, event_name, listener)
        state.unpatch_dialect()
        state.unpatch_pool()
        state.disarm()


_instrumentor = SQLAlchemyInstrumentor()


def instrument_engine(
    engine: Any,
    name: str = "default",
    *,
    tables: Iterable[str] | None = None,
    pool_gauges: bool | None = None,
) -> None:
    """Start measuring the queries and the pool of ``engine``. Idempotent.

    Args:
        engine: an :class:`~sqlalchemy.engine.Engine` or an ``AsyncEngine``
            (its ``sync_engine`` is instrumented).
        name: the ``pool`` tag, to tell engines apart (bounded by you).
        tables: the table names to report; others read ``other``. ``None``
            reports every table, capped by the catalog.
        pool_gauges: send the per-process pool gauges. ``None`` (default): yes,
            except in a short-lived process (an RQ work horse) and in a forked
            child of the process that instrumented the engine.

    Calling it again for an instrumented engine does nothing (call
    :func:`uninstrument_engine` first to change the arguments).

    Raises:
        UnsupportedVersionError: the installed SQLAlchemy is outside the supported range.

    Example:
        >>> from sqlalchemy import create_engine
        >>> engine = create_engine("sqlite://")
        >>> instrument_engine(engine, "default", tables={"runs", "chunks"})
        >>> is_instrumented(engine)
        True
        >>> uninstrument_engine(engine)
    """
    _instrumentor.install(_sync_engine(engine), name=name, tables=tables, pool_gauges=pool_gauges)


def uninstrument_engine(engine: Any) -> None:
    """Remove every listener and the pool wrapper :func:`instrument_engine` added. Idempotent."""
    _instrumentor.uninstall(_sync_engine(engine))


def is_instrumented(engine: Any) -> bool:
    """True while ``engine`` (or the ``AsyncEngine`` around it) is instrumented."""
    return _instrumentor.is_installed(_sync_engine(engine))


def _initial_checked_out(pool: Any) -> int:
    figure = getattr(pool, "checkedout", None)
    try:
        return max(0, int(figure())) if callable(figure) else 0
    except Exception:
        return 0


def _register_fork_hook() -> None:
    global _fork_hook_registered
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_registered = True


def _after_fork_in_child() -> None:
    _instrumentor.after_fork_in_child()
    for state in list(_states.values()):
        state.after_fork_in_child()
