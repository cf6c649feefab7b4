"""Instrumentation for application code: runner lifecycle, throughput hooks, ``timed`` / ``counted``.

Runner lifecycle (the seed's ``[:net_auto, :runner, :start | :stop | :error]``)::

    from netauto_statsd import runner_lifecycle, current_run

    @runner_lifecycle(tags=lambda device, cmd: {"site": device.site, "protocol": device.protocol})
    async def execute(device, cmd):
        out = await device.send(cmd)
        current_run().add_bytes(len(out))
        return out

    with runner_lifecycle({"site": "par1", "protocol": "ssh"}) as run:
        run.add_bytes(len(do_it()))

Throughput hooks (the seed's ``create_run/1`` and ``append_chunk/1``)::

    run_created(site="par1", protocol="ssh", device="edge-1")
    chunk_appended(site="par1", protocol="ssh", size=len(chunk))
    run_finished(site="par1", protocol="ssh", total_bytes=run.size)
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

from netauto_statsd.catalog import Metric, throughput
from netauto_statsd.catalog import runner as runner_metrics
from netauto_statsd.emitter import epoch, get_emitter
from netauto_statsd.emitter.bound import BoundOutcome, bind
from netauto_statsd.emitter.bound import count_with as count
from netauto_statsd.emitter.bound import observe_with as observe
from netauto_statsd.emitter.values import MAX_MAGNITUDE
from netauto_statsd.scopes import STATUS_ERROR, Instrument, Scope, TagSource, status_of

F = TypeVar("F", bound=Callable[..., Any])
_perf_counter_ns = time.perf_counter_ns
_MAX = MAX_MAGNITUDE

_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("netauto_statsd_run", default=None)


class _NoRun(Scope):
    """Returned by :func:`current_run` outside a runner: accepts and ignores everything."""

    def __init__(self) -> None:
        super().__init__({})

    def add_bytes(self, count: int) -> None:
        """Ignore ``count``: there is no run to add it to."""


class runner_lifecycle(Instrument):  # noqa: N801 - reads as a decorator
    """Record a runner execution: start, stop, error, duration and bytes.

    Emits ``runner.start`` on entry; on exit ``runner.stop`` and
    ``runner.duration`` and ``runner.bytes`` tagged with ``status`` (``ok``,
    ``error``, ``timeout`` for ``TimeoutError``, ``cancelled`` for asyncio
    cancellation), plus ``runner.error`` tagged with the exception class.

    Args:
        tags: ``{"site": ..., "protocol": ...}`` or a function of the decorated
            call's arguments returning it. Any other tag is undeclared: it raises
            in strict mode and is refused and counted in production.
    """

    def __init__(self, tags: TagSource = None) -> None:
        super().__init__(tags)
        self._run: BoundOutcome | None = None

    def __call__(self, func: F) -> F:
        """Decorate ``func``; with fixed tags, a call that returns costs four appends (no lock).

        The children are bound on the first call (strict mode raises there for a bad
        tag) and follow emitter changes themselves. Failures, cancellations, an
        explicit status and coroutine functions take the ordinary (guarded) path.
        """
        if not isinstance(self._tags, dict) or inspect.iscoroutinefunction(func):
            return super().__call__(func)
        fixed = self._tags

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = self._run or self._bind_children(fixed)
            scope = Scope(fixed)
            token = _current.set(scope)
            # BoundOutcome.begin() and end() inlined: this is every call's cost (no lock: the feeds)
            if run.epoch is epoch.current and len(run.starts) < run.capacity:
                run.starts.append(1)
            else:
                run.begin()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self._exit_hook(token)
                self._finish(scope, exc)
                raise
            _current.reset(token)  # same thread, same context: the token is ours
            if scope.status is None:
                elapsed = (_perf_counter_ns() - scope.started_ns) / 1e9
                size = scope.bytes
                durations = run.durations
                if (
                    run.epoch is epoch.current
                    and size.__class__ is int
                    and 0 <= size <= _MAX
                    and len(durations) < run.capacity
                ):
                    run.stops.append(1)
                    durations.append(elapsed)
                    run.sizes.append(size)
                else:
                    run.end(elapsed, size)
            else:
                self._finish(scope, None)
            return result

        return wrapper  # type: ignore[return-value]

    def _bind_children(self, tags: dict[str, object]) -> BoundOutcome:
        ok = {**tags, "status": "ok"}
        self._run = BoundOutcome(
            bind(runner_metrics.STARTS, tags),  # type: ignore[arg-type]
            bind(runner_metrics.STOPS, ok),  # type: ignore[arg-type]
            bind(runner_metrics.DURATION, ok),  # type: ignore[arg-type]
            bind(runner_metrics.BYTES, ok),  # type: ignore[arg-type]
        )
        return self._run

    def begin(self, scope: Scope) -> None:
        """Count the start."""
        count(runner_metrics.STARTS, 1, scope.tags)

    def end(self, scope: Scope, exc: BaseException | None) -> None:
        """Count the stop, record duration and bytes, count the error if any."""
        status = scope.status or status_of(exc)
        tags = {**scope.tags, "status": status}
        count(runner_metrics.STOPS, 1, tags)
        observe(runner_metrics.DURATION, scope.elapsed(), tags)
        observe(runner_metrics.BYTES, scope.bytes, tags)
        if status == STATUS_ERROR and exc is not None:
            count(runner_metrics.ERRORS, 1, {**scope.tags, "error": type(exc).__name__})

    def _enter_hook(self, scope: Scope) -> Any:
        return _current.set(scope)

    def _exit_hook(self, token: Any) -> None:
        try:
            _current.reset(token)
        except ValueError:  # token from another context: never let it replace the caller's exception
            _current.set(None)


def current_run() -> Scope:
    """The innermost active runner scope (a no-op scope outside any runner)."""
    return _current.get() or _NoRun()


def _declared(metric: Metric | str) -> Metric | str:
    """The declared metric for a name (kept as the name until an app catalog module declares it)."""
    if isinstance(metric, Metric):
        return metric
    from netauto_statsd.catalog import BY_NAME

    return BY_NAME.get(metric, metric)


class timed(Instrument):  # noqa: N801
    """Record the duration of a call or block, in seconds, into a declared histogram.

    ``status``-tagged metrics get the status automatically.

    Example:
        >>> @timed("rq.job.wait", {"queue": "default", "func": "x"})
        ... def f(): ...
    """

    def __init__(self, metric: Metric | str, tags: TagSource = None) -> None:
        super().__init__(tags)
        self.metric = _declared(metric)

    def end(self, scope: Scope, exc: BaseException | None) -> None:
        """Record the elapsed seconds."""
        metric = self.metric
        if not isinstance(metric, Metric):  # a name may be declared after the decorator was made
            metric = self.metric = _declared(metric)
        if isinstance(metric, Metric):
            observe(metric, scope.elapsed(), _with_status(metric, scope, exc))
        else:  # not declared: the emitter refuses it (raises in strict mode, counts in production)
            get_emitter().histogram(metric, scope.elapsed(), tags=scope.tags)


class counted(Instrument):  # noqa: N801
    """Count calls of a function or entries into a block (counted when it ends, success or not).

    ``status``-tagged metrics get the status automatically, as with :class:`timed`.
    """

    def __init__(self, metric: Metric | str, tags: TagSource = None) -> None:
        super().__init__(tags)
        self.metric = _declared(metric)

    def end(self, scope: Scope, exc: BaseException | None) -> None:
        """Add one."""
        metric = self.metric
        if not isinstance(metric, Metric):
            metric = self.metric = _declared(metric)
        if isinstance(metric, Metric):
            count(metric, 1, _with_status(metric, scope, exc))
        else:
            get_emitter().increment(metric, tags=scope.tags)


def _with_status(metric: Metric, scope: Scope, exc: BaseException | None) -> dict[str, object]:
    """``scope.tags`` plus ``status`` when the metric declares one and the caller did not set it."""
    if "status" not in metric.tag_keys or "status" in scope.tags:
        return scope.tags
    return {**scope.tags, "status": scope.status or status_of(exc)}


def run_created(site: object, protocol: object, device: object | None = None) -> None:
    """Hook for "a run was created": counts it per site/protocol (and per device, capped)."""
    count(throughput.RUNS_CREATED, 1, {"site": site, "protocol": protocol})
    if device is not None:
        count(throughput.DEVICE_RUNS, 1, {"device": device})


def chunk_appended(site: object, protocol: object, size: int) -> None:
    """Hook for "an output chunk was appended": counts the chunk and its bytes."""
    tags = {"site": site, "protocol": protocol}
    count(throughput.CHUNKS_APPENDED, 1, tags)
    count(throughput.CHUNK_BYTES, size, tags)


def run_finished(site: object, protocol: object, total_bytes: int) -> None:
    """Hook for "a run ended": records its total output bytes."""
    observe(throughput.RUN_OUTPUT_BYTES, total_bytes, {"site": site, "protocol": protocol})
