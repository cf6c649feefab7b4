"""One instrumented engine: its dialect and pool listeners, pool figures and statement cache.

Hot paths (each statement, each checkout and checkin) only append to, or count
in, this engine's pending figures under its lock; the background publisher
(:mod:`netauto_statsd.integrations._publisher`) hands them to the emitter at
most every 0.25 s: per statement text, one ``db.query`` increment and one
``db.query.duration`` batch; the pool gauges once, with their latest values.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from netauto_statsd.catalog import CatalogError
from netauto_statsd.emitter import get_emitter
from netauto_statsd.guard import failed
from netauto_statsd.integrations._process import is_short_lived
from netauto_statsd.integrations._publisher import request_publish
from netauto_statsd.integrations.sqlalchemy._statements import NO_TABLE, OTHER, classify_statement

#: Distinct statement strings whose classification is remembered per engine.
_CACHE_SIZE = 2048


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
        # Pending figures, under self.lock: statement text -> durations; checkout waits; pool figure changed.
        self.statements: dict[str, list[float]] = {}
        self.waits: list[float] = []
        self.pool_moved = False
        self.requested = False
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

    def _begin(self, listeners: Any, ours: Callable[..., Any]) -> bool:
        """Whether to measure this statement (else SQLAlchemy runs it unmeasured).

        Our listener performs the call itself and tells SQLAlchemy so; it only
        does when it is the last ``do_execute*`` listener, so a listener added
        after ours still runs (and the statement then goes unmeasured).
        """
        try:
            # The instance's own listeners run after the class-level ones: ours must be the last of them.
            return bool(listeners.listeners[-1] == ours)
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy statement setup", exc)
            return False

    def _end(self, statement: str, started: float) -> None:
        elapsed = round(perf_counter() - started, 6)  # microseconds: half the bytes on the wire
        try:
            with self.lock:
                durations = self.statements.get(statement)
                if durations is None:
                    self.statements[statement] = [elapsed if elapsed > 0.0 else 0.0]
                else:
                    durations.append(elapsed if elapsed > 0.0 else 0.0)
                requested, self.requested = self.requested, True
            if not requested:
                request_publish(self)
            if self.error is not None:
                error, self.error = self.error, None
                raise error
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy query count", exc)

    def publish(self) -> None:
        """Hand the pending statement figures, checkout waits and pool gauges to the emitter."""
        try:
            with self.lock:
                self.requested = False
                statements, self.statements = self.statements, {}
                waits, self.waits = self.waits, []
                moved, self.pool_moved = self.pool_moved, False
                checked_out = self.checked_out
            emitter = get_emitter()
            for statement, durations in statements.items():
                tags = self.kinds.get(statement) or self.tags_for(statement)
                emitter.increment("db.query", len(durations), tags=tags)
                emitter.histogram_many("db.query.duration", durations, tags=tags)
            if waits:
                emitter.histogram_many("db.pool.checkout_wait", waits, tags=self.pool_tags)
            if moved and self._gauges_on():
                emitter.gauge("db.pool.connections", checked_out, {"pool": self.name, "state": "checked_out"})
                if self.size is not None:
                    overflow = max(0, checked_out - self.size)
                    if overflow != self.overflow:
                        self.overflow = overflow
                        emitter.gauge("db.pool.connections", overflow, {"pool": self.name, "state": "overflow"})
        except Exception as exc:  # from the publisher thread: a CatalogError waits for the next statement
            self.error = failed("sqlalchemy publish", exc, defer=True) or self.error

    def do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        if not self._begin(self.dialect.dispatch.do_execute, self.do_execute):
            return False
        started = perf_counter()
        try:
            self.dialect.do_execute(cursor, statement, parameters, context)
        finally:  # a failed statement was sent too: counted and timed, then db.error in handle_error
            self._end(statement, started)
        return True

    def do_executemany(self, cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        if not self._begin(self.dialect.dispatch.do_executemany, self.do_executemany):
            return False
        started = perf_counter()
        try:
            self.dialect.do_executemany(cursor, statement, parameters, context)
        finally:  # a failed statement was sent too: counted and timed, then db.error in handle_error
            self._end(statement, started)
        return True

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any) -> bool:
        if not self._begin(self.dialect.dispatch.do_execute_no_params, self.do_execute_no_params):
            return False
        started = perf_counter()
        try:
            self.dialect.do_execute_no_params(cursor, statement, context)
        finally:  # a failed statement was sent too: counted and timed, then db.error in handle_error
            self._end(statement, started)
        return True

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

    # ------------------------------------------------------------------- pool
    def _gauges_on(self) -> bool:
        # Per-process gauges only from long-lived processes: not from a forked child
        # of the process that instrumented the engine, nor from an RQ work horse.
        if self.pool_gauges is not None:
            return self.pool_gauges
        return not (self.forked or is_short_lived())

    def _move(self, delta: int) -> None:
        with self.lock:
            self.checked_out = max(0, self.checked_out + delta)
            self.pool_moved = True
            requested, self.requested = self.requested, True
        if not requested:
            request_publish(self)

    def checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        try:
            engine = self.engine_ref()
            if engine is not None and self.patched is not None and engine.pool is not self.patched[0]:
                with self.patch_lock:  # engine.dispose() swapped a new pool in: move the wrapper there
                    if self.patched is not None and engine.pool is not self.patched[0]:
                        self.patch_pool(engine.pool)
            self._move(1)
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy checkout", exc)

    def checkin(self, dbapi_connection: Any, record: Any) -> None:
        self._pool_event(-1)

    def detach(self, dbapi_connection: Any, record: Any) -> None:
        self._pool_event(-1)  # a detached connection is never checked in

    def _pool_event(self, delta: int) -> None:
        try:
            self._move(delta)
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy pool event", exc)

    def invalidate(self, dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
        try:
            get_emitter().increment("db.pool.invalidated", tags=self.pool_tags)
        except Exception as exc:  # metrics never break the app
            failed("sqlalchemy invalidate", exc)

    def patch_pool(self, pool: Any) -> None:
        """Wrap ``pool.connect`` (on the instance) to time checkouts; unwrap the previous pool."""
        self.unpatch_pool()
        original = pool.connect
        size = getattr(pool, "size", None)
        self.size = size() if callable(size) else None
        if self.size is not None and self._gauges_on():
            get_emitter().gauge("db.pool.connections", self.size, {"pool": self.name, "state": "size"})

        def connect() -> Any:
            started = perf_counter()
            try:
                connection = original()
            except sa_exc.TimeoutError as error:  # pool exhausted: never reaches handle_error
                _count_pool_timeout(self.name, error)
                raise
            waited = perf_counter() - started
            try:
                with self.lock:
                    self.waits.append(waited if waited > 0.0 else 0.0)
                    requested, self.requested = self.requested, True
                if not requested:
                    request_publish(self)
            except Exception as exc:  # metrics never break the app
                failed("sqlalchemy checkout wait", exc)
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
        self.statements, self.waits, self.pool_moved, self.requested = {}, [], False, False  # the parent's


def _count_pool_timeout(name: str, error: BaseException) -> None:
    try:
        tags = {"pool": name, "operation": "other", "exception": type(error).__name__}
        get_emitter().increment("db.error", tags=tags)
    except Exception as exc:  # metrics never break the app
        failed("sqlalchemy pool timeout count", exc)
