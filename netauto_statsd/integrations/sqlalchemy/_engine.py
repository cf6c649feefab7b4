"""One instrumented engine: its hooks, its pending figures, and their publication.

The hot paths (:mod:`._hooks`) only append to this engine's pending lists and
ask for a publish; the background publisher
(:mod:`netauto_statsd.integrations._publisher`) calls :meth:`_EngineState.publish`
at most every 0.25 s, which hands the emitter, per ``(operation, table)``
series, one ``db.query`` increment and one ``db.query.duration`` batch (rounded
to microseconds there: half the bytes on the wire), the checkout waits (likewise), and the
pool gauges once, with the pool's own figure (``checkedout()``) read then.

Lock-free, exactly: each pending list is drained by index (read ``n = len``,
copy ``[:n]``, ``del [:n]``) under a publish-only lock, so a figure appended
meanwhile stays at the tail for the next publish. Every list lives as long as
the engine's instrumentation (one per series, bounded by the tags), so a hot
path holding one never appends to a list the publisher dropped.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.engine import Engine

from netauto_statsd.catalog import CatalogError
from netauto_statsd.emitter import get_emitter
from netauto_statsd.guard import failed
from netauto_statsd.integrations._process import is_short_lived
from netauto_statsd.integrations._publisher import request_publish
from netauto_statsd.integrations.sqlalchemy._hooks import (
    OURS,
    counted_return,
    timed_checkout,
    timed_statements,
    timed_statements_no_params,
)
from netauto_statsd.integrations.sqlalchemy._statements import NO_TABLE, OTHER, classify_statement

#: marks "the instance had no attribute of its own" (the class's method showed through)
_ABSENT: Any = object()


def _restore(target: Any, name: str, ours: Callable[..., Any], previous: Any) -> None:
    """Take our wrapper ``ours`` off ``target.name`` if it is still there, giving back what the instance had."""
    if vars(target).get(name) is ours:
        if previous is _ABSENT:
            delattr(target, name)
        else:
            setattr(target, name, previous)


#: Distinct statement strings whose classification is remembered per engine.
_CACHE_SIZE = 2048
_STATEMENT_METHODS = (
    ("do_execute", timed_statements),
    ("do_executemany", timed_statements),
    ("do_execute_no_params", timed_statements_no_params),
)


def _drain(pending: list[Any]) -> list[Any]:
    """Take what ``pending`` holds now; what other threads append meanwhile stays (call under the publish lock)."""
    n = len(pending)
    taken = pending[:n]
    del pending[:n]
    return taken


class _EngineState:
    """What one instrumented engine needs: its hooks, pending figures and caches."""

    def __init__(self, engine: Engine, name: str, tables: Iterable[str] | None, pool_gauges: bool | None) -> None:
        self.engine_ref = weakref.ref(engine)
        self.name = name
        self.tables = frozenset(tables) if tables is not None else None
        self.pool_gauges = pool_gauges
        self.forked = False
        self.armed = True  # False once uninstalled (a wrapper someone wrapped again stays, inert)
        self.listeners: list[tuple[str, Callable[..., Any]]] = []
        self.publish_lock = threading.RLock()  # publishers only; an RLock: a GC'd connection may check in mid-publish
        self.patch_lock = threading.Lock()
        self.kinds: dict[str, dict[str, object]] = {}  # statement text -> tags (bounded)
        self.series: dict[tuple[object, object], tuple[dict[str, object], list[int]]] = {}  # -> (tags, pending ns)
        self.by_text: dict[str, list[int]] = {}  # statement text -> its series' pending list (bounded)
        self.waits: list[int] = []  # pending checkout waits, ns
        self.moves: list[int] = []  # +1 / -1 per checkout / return, for a pool with no checkedout() figure
        self.checked_out = 0  # from the moves (such a pool only)
        self.overflow = 0
        self.size: int | None = None
        self.pool_tags: dict[str, object] = {"pool": name}
        self.pool_moved = False
        self.requested = False
        #: (dialect, method, our wrapper, what the instance had before: :data:`_ABSENT` if nothing)
        self.dialect_patches: list[tuple[Any, str, Callable[..., Any], Any]] = []
        self.patched: tuple[Any, Callable[..., Any], Callable[..., Any]] | None = None  # (pool, connect, return)
        self.pool_previous: tuple[Any, Any] = (_ABSENT, _ABSENT)  # the pool instance's own connect, return
        self.error: CatalogError | None = None  # strict mode: met by a background publish, raised next statement

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

    def durations_for(self, statement: str) -> list[int]:
        """The pending list of ``statement``'s series (a hot path's cache miss)."""
        if not self.armed:
            return []  # uninstalled: discarded
        tags = self.tags_for(statement)
        entry = self.series.get((tags["operation"], tags["table"]))
        if entry is None:  # setdefault: two threads meeting a new series share one list
            entry = self.series.setdefault((tags["operation"], tags["table"]), (tags, []))
        if len(self.by_text) >= _CACHE_SIZE:
            self.by_text.clear()
        self.by_text[statement] = entry[1]
        return entry[1]

    def request(self) -> None:
        """Ask the publisher for a publish (hot paths call it only when none is requested yet)."""
        self.requested = True
        request_publish(self)

    def raise_deferred(self) -> None:
        """Raise the strict-mode error a background publish met (once)."""
        error, self.error = self.error, None
        if error is not None:
            raise error

    def publish(self) -> None:
        """Hand the pending statement figures, checkout waits and pool gauges to the emitter."""
        try:
            with self.publish_lock:
                if not self.armed:
                    return
                self.requested = False  # first: a figure appended from here on asks again
                emitter = get_emitter()
                for tags, pending in tuple(self.series.values()):
                    if pending:
                        durations = _drain(pending)
                        emitter.increment("db.query", len(durations), tags=tags)
                        emitter.histogram_many("db.query.duration", [(d + 500) // 1000 / 1e6 for d in durations], tags)
                if self.waits:
                    waits = _drain(self.waits)
                    waits_s = [(w + 500) // 1000 / 1e6 for w in waits]  # whole microseconds, as durations
                    emitter.histogram_many("db.pool.checkout_wait", waits_s, tags=self.pool_tags)
                if self.moves:
                    self.checked_out = max(0, self.checked_out + sum(_drain(self.moves)))
                if self.pool_moved:
                    self.pool_moved = False  # before reading the pool: a move from here on asks again
                    if self._gauges_on():
                        self._publish_gauges(emitter)
        except Exception as exc:  # from the publisher thread: a CatalogError waits for the next statement
            self.error = failed("sqlalchemy publish", exc, defer=True) or self.error

    def _publish_gauges(self, emitter: Any) -> None:
        checked_out = self._checked_out()
        emitter.gauge("db.pool.connections", checked_out, {"pool": self.name, "state": "checked_out"})
        if self.size is not None:
            overflow = max(0, checked_out - self.size)
            if overflow != self.overflow:
                self.overflow = overflow
                emitter.gauge("db.pool.connections", overflow, {"pool": self.name, "state": "overflow"})

    def _checked_out(self) -> int:
        """The pool's own figure (QueuePool's ``checkedout()``) if it has one, else the count of our moves."""
        engine = self.engine_ref()
        figure = getattr(engine.pool, "checkedout", None) if engine is not None else None
        return max(0, int(figure())) if callable(figure) else self.checked_out

    def handle_error(self, ctx: Any) -> None:
        try:
            if getattr(ctx, "is_pre_ping", False):
                return  # the pool reconnects transparently; counted as an invalidation
            operation = self.tags_for(ctx.statement)["operation"] if ctx.statement else "other"
            error = ctx.original_exception if ctx.original_exception is not None else ctx.sqlalchemy_exception
            tags = {"pool": self.name, "operation": operation, "exception": type(error).__name__}
            get_emitter().increment("db.error", tags=tags)
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy handle_error", exc)

    def patch_dialect(self, dialect: Any) -> None:
        """Wrap the dialect's ``do_execute*`` methods on the instance (once per dialect: see :data:`OURS`)."""
        for method, wrap in _STATEMENT_METHODS:
            current = getattr(dialect, method)
            if getattr(current, OURS, False):
                continue  # an engine sharing this dialect (execution_options()) is instrumented: counted there
            wrapper = wrap(self, current)
            previous = vars(dialect).get(method, _ABSENT)
            setattr(dialect, method, wrapper)
            self.dialect_patches.append((dialect, method, wrapper, previous))

    def unpatch_dialect(self) -> None:
        for dialect, method, wrapper, previous in self.dialect_patches:
            _restore(dialect, method, wrapper, previous)
        self.dialect_patches.clear()

    # ------------------------------------------------------------------- pool
    def _gauges_on(self) -> bool:
        # Per-process gauges only from long-lived processes: not from a forked child
        # of the process that instrumented the engine, nor from an RQ work horse.
        if self.pool_gauges is not None:
            return self.pool_gauges
        return not (self.forked or is_short_lived())

    def count_pool_timeout(self, error: BaseException) -> None:
        try:
            tags = {"pool": self.name, "operation": "other", "exception": type(error).__name__}
            get_emitter().increment("db.error", tags=tags)
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy pool timeout count", exc)

    def connected(self, dbapi_connection: Any, record: Any) -> None:
        """Pool ``connect`` event: after ``engine.dispose()`` swapped a new pool in, move the wrappers there."""
        try:
            engine = self.engine_ref()
            if engine is not None and self.patched is not None and engine.pool is not self.patched[0]:
                with self.patch_lock:
                    if self.armed and self.patched is not None and engine.pool is not self.patched[0]:
                        if self.patch_pool(engine.pool):  # counting: this checkout began before the wrapper
                            self.moves.append(1)
                        self.pool_moved = True  # the pool's figure already counts this checkout
                        if not self.requested:
                            self.request()
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy pool connect", exc)

    def invalidate(self, dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
        try:
            get_emitter().increment("db.pool.invalidated", tags=self.pool_tags)
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy invalidate", exc)

    def patch_pool(self, pool: Any) -> bool:
        """Wrap ``pool.connect`` and ``pool._do_return_conn`` on the instance.

        A previous pool (before ``engine.dispose()``) loses its ``connect`` wrapper
        but keeps the other: its connections still out come back through it.
        Returns whether the checked-out figure is counted from our moves (a pool
        with no ``checkedout()``: NullPool, StaticPool, SingletonThreadPool).
        """
        self.unpatch_pool(returns=False)
        counting = not callable(getattr(pool, "checkedout", None))
        size = getattr(pool, "size", None)
        self.size = size() if callable(size) else None
        if self.size is not None and self._gauges_on():
            get_emitter().gauge("db.pool.connections", self.size, {"pool": self.name, "state": "size"})
        connect = timed_checkout(self, pool.connect, counting)
        do_return_conn = counted_return(self, pool._do_return_conn, counting)
        self.pool_previous = (vars(pool).get("connect", _ABSENT), vars(pool).get("_do_return_conn", _ABSENT))
        pool.connect = connect
        pool._do_return_conn = do_return_conn
        self.patched = (pool, connect, do_return_conn)
        return counting

    def unpatch_pool(self, returns: bool = True) -> None:
        """Unwrap the current pool (``returns=False``: its ``connect`` only)."""
        if self.patched is not None:
            pool, connect, do_return_conn = self.patched
            previous_connect, previous_return = self.pool_previous
            _restore(pool, "connect", connect, previous_connect)
            if returns:
                _restore(pool, "_do_return_conn", do_return_conn, previous_return)
            self.patched = None

    def disarm(self) -> None:
        """Publish what is pending, then make any wrapper left behind inert (uninstall)."""
        self.publish()
        with self.publish_lock:
            self.armed = False
            self.requested = True  # never asks for a publish again
            self.by_text.clear()

    def after_fork_in_child(self) -> None:
        self.publish_lock = threading.RLock()
        self.patch_lock = threading.Lock()
        self.forked = True
        self.checked_out = 0
        self.overflow = 0
        for _, pending in self.series.values():  # the parent's figures, the parent sends them
            del pending[:]
        del self.waits[:], self.moves[:]
        self.pool_moved = self.requested = False
