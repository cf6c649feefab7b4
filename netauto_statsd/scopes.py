"""One mechanism for every "measure this block" helper: decorator and context manager, sync and async.

:class:`Instrument` subclasses implement :meth:`Instrument.begin` and
:meth:`Instrument.end`; this module makes them usable as ``@decorator`` on plain
and coroutine functions and as ``with`` / ``async with``. Each call or block gets
its own scope (no state shared between calls), the original exception always
propagates unchanged, and metric code can never raise into the caller (except
:class:`~netauto_statsd.emitter.CatalogError` in strict mode, which is the point
of strict mode).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from netauto_statsd._log import log
from netauto_statsd.guard import failed

F = TypeVar("F", bound=Callable[..., Any])

#: Tags given as a mapping, or as a function of the decorated call's arguments.
TagSource = dict[str, object] | Callable[..., dict[str, object]] | None

STATUS_OK, STATUS_ERROR, STATUS_TIMEOUT, STATUS_CANCELLED = "ok", "error", "timeout", "cancelled"
_MAX_BYTES = 1.7976931348623157e308
_perf_counter_ns = time.perf_counter_ns


def _short(value: object) -> str:
    from netauto_statsd.emitter.values import short

    return short(value)


def _refuse(error: str, strict_only: bool = False) -> None:
    """Raise ``error`` in strict mode; in production count it as a bad value (or only log it)."""
    from netauto_statsd.emitter import get_emitter
    from netauto_statsd.emitter.resolve import Rejected

    emitter = get_emitter()
    if strict_only and not emitter.settings.strict:
        log.debug("netauto_statsd: %s", error)
        return
    emitter.reject(Rejected("bad_value", error))


def status_of(exc: BaseException | None) -> str:
    """Classify how a block ended: ``ok``, ``error``, ``timeout`` or ``cancelled``."""
    if exc is None:
        return STATUS_OK
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit | GeneratorExit):
        return STATUS_CANCELLED
    if isinstance(exc, TimeoutError):
        return STATUS_TIMEOUT
    return STATUS_ERROR


class Scope:
    """The state of one measured call or block."""

    __slots__ = ("bytes", "started_ns", "status", "tags")

    def __init__(self, tags: dict[str, object]) -> None:
        #: ``time.perf_counter_ns()`` when the scope began: durations are whole nanoseconds
        #: (``1.2345e-05``, not ``1.2344999895431101e-05``: a third of the text to format and send)
        self.started_ns = _perf_counter_ns()
        self.tags = tags
        self.bytes = 0
        self.status: str | None = None

    def elapsed(self) -> float:
        """Seconds since the scope began (to the nanosecond), never negative."""
        return max(0, time.perf_counter_ns() - self.started_ns) / 1e9

    def add_bytes(self, count: int) -> None:
        """Add ``count`` output bytes to this scope's total (a bad count is refused and counted, never raised)."""
        cls = count.__class__
        if (cls is int or cls is float) and 0 <= count <= _MAX_BYTES:
            self.bytes += count
        else:
            _refuse(f"add_bytes needs a finite number >= 0, got {_short(count)}")

    def set_status(self, status: str) -> None:
        """Override the status derived from the exception (e.g. a soft timeout)."""
        self.status = status


#: Blocks entered with ``with`` / ``async with`` and not yet exited, innermost last:
#: ``(instrument, scope, hook token)``. A context variable, not instance state, so one
#: instrument object shared by many threads or asyncio tasks gives each its own scope.
_entered: contextvars.ContextVar[tuple[tuple[Instrument, Scope, Any], ...]] = contextvars.ContextVar(
    "netauto_statsd_entered", default=()
)


class Instrument:
    """Base for decorator/context-manager helpers. Subclasses override begin/end."""

    def __init__(self, tags: TagSource = None) -> None:
        self._tags = tags

    # -- what subclasses implement
    def begin(self, scope: Scope) -> None:
        """Called when a call or block starts."""

    def end(self, scope: Scope, exc: BaseException | None) -> None:
        """Called when it ends; ``exc`` is the exception it raised, if any."""

    # -- plumbing
    def _tags_for(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, object]:
        source = self._tags
        if source is None:
            return {}
        try:
            return dict(source(*args, **kwargs) if callable(source) else source)
        except Exception as exc:
            # Production: the body runs, the samples go out with 'other' and are counted as
            # missing tags. Strict mode: the tag source's own error, not "needs tag 'site'".
            if callable(source):
                what = f"tag function {getattr(source, '__qualname__', '?')} raised {type(exc).__name__}: {exc}"
            else:
                what = f"tags must be a mapping (or a function returning one), got {_short(source)}"
            _refuse(what[:240], strict_only=True)
            return {}

    # begin/end are guarded inline through the shared guard (no closure per call: every decorated call's hot path)
    def _start(self, tags: dict[str, object]) -> Scope:
        scope = Scope(tags)
        try:
            self.begin(scope)
        except Exception as exc:  # metrics never break the app
            failed("begin", exc)
        return scope

    def _finish(self, scope: Scope, exc: BaseException | None) -> None:
        try:
            self.end(scope, exc)
        except Exception as error:  # metrics never break the app
            failed("end", error)

    def __call__(self, func: F) -> F:
        """Decorate ``func`` (plain or ``async def``): one scope per call."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                scope = self._start(self._tags_for(args, kwargs))
                token = self._enter_hook(scope)
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    self._exit_hook(token)
                    self._finish(scope, exc)
                    raise
                self._exit_hook(token)
                self._finish(scope, None)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scope = self._start(self._tags_for(args, kwargs))
            token = self._enter_hook(scope)
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self._exit_hook(token)
                self._finish(scope, exc)
                raise
            self._exit_hook(token)
            self._finish(scope, None)
            return result

        return wrapper  # type: ignore[return-value]

    def _enter_hook(self, scope: Scope) -> Any:
        """Subclasses may publish the scope (e.g. in a context variable)."""
        return None

    def _exit_hook(self, token: Any) -> None:
        """Undo :meth:`_enter_hook`."""

    def __enter__(self) -> Scope:
        scope = self._start(self._tags_for((), {}))
        token = self._enter_hook(scope)
        _entered.set((*_entered.get(), (self, scope, token)))
        return scope

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack = _entered.get()
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] is self:
                _, scope, token = stack[index]
                _entered.set(stack[:index] + stack[index + 1 :])
                break
        else:  # exited in another thread/task than entered: nothing to finish here
            log.debug("netauto_statsd: %s exited without a matching enter", type(self).__name__)
            return
        self._exit_hook(token)
        self._finish(scope, exc)

    async def __aenter__(self) -> Scope:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)
