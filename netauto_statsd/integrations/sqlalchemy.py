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

Hooks, all tracked and removable: the dialect's ``do_execute*`` events time
statements (our listener runs the dialect's own method, and steps aside for a
listener added after it). Not ``before/after_cursor_execute``: any Connection
listener moves every statement onto SQLAlchemy's event path, about +15 % per
query on SQLite before our code runs. Pool events give the pool figures; with
no event *before* a checkout, ``engine.pool.connect`` is wrapped on the instance
(and moved to the new pool at its first checkout after ``engine.dispose()``).

Fork: a forked child (an RQ horse) must call ``engine.dispose(close=False)``
before using the engine (docs/integrations-rq-sqlalchemy.md). Our state resets
in the child, which by default sends no pool gauges (one per-process series per
job would pile up until the TTL). Errors inside the instrumentation are logged
at debug level on ``netauto_statsd`` and swallowed, except
:class:`~netauto_statsd.emitter.CatalogError` in strict mode.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from netauto_statsd.catalog import CatalogError
from netauto_statsd.emitter import get_emitter
from netauto_statsd.scopes import Scope

log = logging.getLogger("netauto_statsd")
log.addHandler(logging.NullHandler())

__all__ = ["classify_statement", "instrument_engine", "is_instrumented", "uninstrument_engine"]

#: Tag values for statements that name no table, and for tables outside the declared set.
NO_TABLE, OTHER = "none", "other"
#: Distinct statement strings whose classification is remembered per engine.
_CACHE_SIZE = 2048

_IDENT = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
_NAME = re.compile(rf"{_IDENT}(?:\s*\.\s*{_IDENT})*")
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.S)
_KEYWORD = re.compile(r"[A-Za-z]+")
_DML_AFTER_WITH = re.compile(r"\b(insert|update|delete)\b", re.I)
_TABLE_AFTER = {
    "select": re.compile(rf"\bfrom\s+({_NAME.pattern})", re.I),
    "delete": re.compile(rf"\bfrom\s+({_NAME.pattern})", re.I),
    "insert": re.compile(rf"\binto\s+({_NAME.pattern})", re.I),
    "update": re.compile(rf"\bupdate\s+(?:only\s+)?({_NAME.pattern})", re.I),
}
_OPERATIONS = ("select", "insert", "update", "delete")


def classify_statement(statement: str) -> tuple[str, str]:
    """Return ``(operation, table)`` for SQL text, without keeping any of the text.

    ``operation`` is ``select``, ``insert``, ``update``, ``delete`` or ``other``;
    ``table`` is the unquoted last part of the first table name the statement
    names (``none`` for statements naming none, and for ``other`` operations).
    A heuristic, not a parser: it only has to be right for the statements an
    application sends, and it is bounded either way.

    >>> classify_statement('SELECT runs.id FROM "runs" WHERE runs.id = ?')
    ('select', 'runs')
    >>> classify_statement("WITH x AS (SELECT 1) UPDATE main.devices SET a = 1")
    ('update', 'devices')
    """
    start = _LEADING.match(statement)
    head = _KEYWORD.match(statement, start.end() if start else 0)
    keyword = head.group(0).lower() if head else ""
    body = 0
    if keyword == "with":  # the statement's verb follows its common table expressions
        dml = _DML_AFTER_WITH.search(statement)
        keyword, body = (dml.group(1).lower(), dml.start()) if dml else ("select", 0)
    if keyword not in _OPERATIONS:
        return "other", NO_TABLE
    found = _TABLE_AFTER[keyword].search(statement, body)
    if found is None:
        return keyword, NO_TABLE
    last = re.split(r"\s*\.\s*", found.group(1))[-1]
    return keyword, last.strip('"`[]') or NO_TABLE


class _EngineState:
    """What one instrumented engine needs: its listeners, pool figures and caches."""

    def __init__(self, engine: Engine, name: str, tables: Iterable[str] | None, pool_gauges: bool | None) -> None:
        self.engine_ref = weakref.ref(engine)
        self.dialect = engine.dialect
        self.name = name
        self.tables = frozenset(tables) if tables is not None else None
        self.pool_gauges = pool_gauges
        self.forked = False
        self.listeners: list[tuple[str, Callable[..., Any]]] = []
        self.lock = threading.Lock()
        self.patch_lock = threading.Lock()
        self.checked_out = 0
        self.overflow = 0
        self.size: int | None = None
        self.patched: tuple[Any, Any] | None = None  # (pool, our wrapper)
        self.kinds: dict[str, dict[str, object]] = {}
        self.pool_tags: dict[str, object] = {"pool": name}

    # ---------------------------------------------------------------- queries
    def tags_for(self, statement: str) -> dict[str, object]:
        tags = self.kinds.get(statement)
        if tags is None:
            operation, table = classify_statement(statement)
            if self.tables is not None and table != NO_TABLE and table not in self.tables:
                table = OTHER
            tags = {"pool": self.name, "operation": operation, "table": table}
            if len(self.kinds) >= _CACHE_SIZE:
                self.kinds.clear()
            self.kinds[statement] = tags
        return tags

    def _begin(self, listeners: Any, ours: Callable[..., Any], statement: str) -> Scope | None:
        """A scope for this statement, or ``None`` to let SQLAlchemy run it unmeasured.

        Our listener performs the call itself and tells SQLAlchemy so; it only
        does when it is the last ``do_execute*`` listener, so a listener added
        after ours still runs (and the statement then goes unmeasured).
        """
        try:
            if len(listeners) != 1 and list(listeners)[-1] != ours:
                return None
            return Scope(self.tags_for(statement))
        except Exception as exc:
            log.debug("netauto_statsd: sqlalchemy statement setup failed: %s", exc)
            return None

    def _end(self, scope: Scope) -> None:
        try:
            emitter = get_emitter()
            emitter.increment("db.query", tags=scope.tags)
            emitter.histogram("db.query.duration", scope.elapsed(), tags=scope.tags)
        except CatalogError:
            raise
        except Exception as exc:
            log.debug("netauto_statsd: sqlalchemy query count failed: %s", exc)

    def do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        scope = self._begin(self.dialect.dispatch.do_execute, self.do_execute, statement)
        if scope is None:
            return False
        try:
            self.dialect.do_execute(cursor, statement, parameters, context)
        finally:  # a failed statement was sent too: counted and timed, then db.error in handle_error
            self._end(scope)
        return True

    def do_executemany(self, cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        scope = self._begin(self.dialect.dispatch.do_executemany, self.do_executemany, statement)
        if scope is None:
            return False
        try:
            self.dialect.do_executemany(cursor, statement, parameters, context)
        finally:
            self._end(scope)
        return True

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any) -> bool:
        scope = self._begin(self.dialect.dispatch.do_execute_no_params, self.do_execute_no_params, statement)
        if scope is None:
            return False
        try:
            self.dialect.do_execute_no_params(cursor, statement, context)
        finally:
            self._end(scope)
        return True

    def handle_error(self, ctx: Any) -> None:
        try:
            if getattr(ctx, "is_pre_ping", False):
                return  # the pool reconnects transparently; counted as an invalidation
            operation = self.tags_for(ctx.statement)["operation"] if ctx.statement else "other"
            error = ctx.original_exception if ctx.original_exception is not None else ctx.sqlalchemy_exception
            tags = {"pool": self.name, "operation": operation, "exception": type(error).__name__}
            get_emitter().increment("db.error", tags=tags)
        except CatalogError:
            raise
        except Exception as exc:
            log.debug("netauto_statsd: sqlalchemy handle_error failed: %s", exc)

    # ------------------------------------------------------------------- pool
    def _gauges_on(self) -> bool:
        return self.pool_gauges if self.pool_gauges is not None else not self.forked

    def _move(self, delta: int) -> None:
        # Under the lock so that concurrent checkouts reach the emitter in the
        # order they changed the figure: the last value sent is the true one.
        with self.lock:
            self.checked_out = max(0, self.checked_out + delta)
            if not self._gauges_on():
                return
            emitter = get_emitter()
            emitter.gauge("db.pool.connections", self.checked_out, {"pool": self.name, "state": "checked_out"})
            if self.size is not None:
                overflow = max(0, self.checked_out - self.size)
                if overflow != self.overflow:
                    self.overflow = overflow
                    emitter.gauge("db.pool.connections", overflow, {"pool": self.name, "state": "overflow"})

    def checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        try:
            engine = self.engine_ref()
            if engine is not None and self.patched is not None and engine.pool is not self.patched[0]:
                with self.patch_lock:  # engine.dispose() swapped a new pool in: move the wrapper there
                    if self.patched is not None and engine.pool is not self.patched[0]:
                        self.patch_pool(engine.pool)
            self._move(1)
        except CatalogError:
            raise
        except Exception as exc:
            log.debug("netauto_statsd: sqlalchemy checkout failed: %s", exc)

    def checkin(self, dbapi_connection: Any, record: Any) -> None:
        self._pool_event(-1)

    def detach(self, dbapi_connection: Any, record: Any) -> None:
        self._pool_event(-1)  # a detached connection is never checked in

    def _pool_event(self, delta: int) -> None:
        try:
            self._move(delta)
        except CatalogError:
            raise
        except Exception as exc:
            log.debug("netauto_statsd: sqlalchemy pool event failed: %s", exc)

    def invalidate(self, dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
        try:
            get_emitter().increment("db.pool.invalidated", tags=self.pool_tags)
        except CatalogError:
            raise
        except Exception as exc:
            log.debug("netauto_statsd: sqlalchemy invalidate failed: %s", exc)

    def patch_pool(self, pool: Any) -> None:
        """Wrap ``pool.connect`` (on the instance) to time checkouts; unwrap the previous pool."""
        self.unpatch_pool()
        original = pool.connect
        name_tags = self.pool_tags
        size = getattr(pool, "size", None)
        self.size = size() if callable(size) else None
        if self.size is not None and self._gauges_on():
            get_emitter().gauge("db.pool.connections", self.size, {"pool": self.name, "state": "size"})

        def connect() -> Any:
            scope = Scope(name_tags)
            try:
                connection = original()
            except sa_exc.TimeoutError as error:  # pool exhausted: never reaches handle_error
                _count_pool_timeout(self.name, error)
                raise
            try:
                get_emitter().histogram("db.pool.checkout_wait", scope.elapsed(), tags=name_tags)
            except CatalogError:
                raise
            except Exception as exc:
                log.debug("netauto_statsd: sqlalchemy checkout wait failed: %s", exc)
            return connection

        pool.connect = connect
        self.patched = (pool, connect)

    def unpatch_pool(self) -> None:
        if self.patched is not None:
            pool, wrapper = self.patched
            if pool.__dict__.get("connect") is wrapper:
                del pool.__dict__["connect"]
            self.patched = None

    def after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        self.patch_lock = threading.Lock()
        self.forked = True
        self.checked_out = 0
        self.overflow = 0


def _count_pool_timeout(name: str, error: BaseException) -> None:
    try:
        tags = {"pool": name, "operation": "other", "exception": type(error).__name__}
        get_emitter().increment("db.error", tags=tags)
    except CatalogError:
        raise
    except Exception as exc:
        log.debug("netauto_statsd: sqlalchemy pool timeout count failed: %s", exc)


_DIALECT_EVENTS = ("do_execute", "do_executemany", "do_execute_no_params", "handle_error")
_POOL_EVENTS = ("checkout", "checkin", "detach", "invalidate", "soft_invalidate")

_states: weakref.WeakKeyDictionary[Engine, _EngineState] = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()
_fork_hook_registered = False


def _sync_engine(engine: Any) -> Engine:
    """The :class:`Engine` behind ``engine`` (an ``AsyncEngine`` exposes it as ``sync_engine``)."""
    target = getattr(engine, "sync_engine", engine)
    if not isinstance(target, Engine):
        raise TypeError(f"expected a SQLAlchemy Engine or AsyncEngine, got {type(engine).__name__}")
    return target


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
            except in a forked child of the process that instrumented the engine.

    Calling it again for an instrumented engine does nothing (call
    :func:`uninstrument_engine` first to change the arguments).

    Example:
        >>> from sqlalchemy import create_engine
        >>> engine = create_engine("sqlite://")
        >>> instrument_engine(engine, "default", tables={"runs", "chunks"})
        >>> is_instrumented(engine)
        True
        >>> uninstrument_engine(engine)
    """
    target = _sync_engine(engine)
    with _states_lock:
        if target in _states:
            return
        state = _EngineState(target, name, tables, pool_gauges)
        state.checked_out = _initial_checked_out(target.pool)
        for event_name in (*_DIALECT_EVENTS, *_POOL_EVENTS):
            listener = getattr(state, "invalidate" if event_name == "soft_invalidate" else event_name)
            event.listen(target, event_name, listener)
            state.listeners.append((event_name, listener))
        state.patch_pool(target.pool)
        _states[target] = state
        _register_fork_hook()


def uninstrument_engine(engine: Any) -> None:
    """Remove every listener and the pool wrapper :func:`instrument_engine` added. Idempotent."""
    target = _sync_engine(engine)
    with _states_lock:
        state = _states.pop(target, None)
    if state is None:
        return
    for event_name, listener in state.listeners:
        if event.contains(target, event_name, listener):
            event.remove(target, event_name, listener)
    state.unpatch_pool()


def is_instrumented(engine: Any) -> bool:
    """True while ``engine`` (or the ``AsyncEngine`` around it) is instrumented."""
    return _sync_engine(engine) in _states


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
    global _states_lock
    _states_lock = threading.Lock()
    for state in list(_states.values()):
        state.after_fork_in_child()
