"""The flush thread and the process hooks: ``atexit`` closes, a forked child starts clean.

One :class:`Lifecycle` per emitter. The thread starts on the first accepted
emission (never at import or construction) and wakes every ``interval`` seconds;
``close()`` wakes it for the last flush. Hooks hold weak references only, so a
replaced emitter can be collected.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

from netauto_statsd import shutdown
from netauto_statsd._log import log
from netauto_statsd.emitter import epoch


class Owner(Protocol):
    """What the hooks call on the emitter."""

    def flush(self) -> int:
        """Send what is aggregated (signal handlers, a ``multiprocessing`` child's exit)."""

    def close(self) -> None:
        """Flush and release (``atexit``)."""

    def after_fork_in_child(self) -> None:
        """Start clean in a forked child."""


class Lifecycle:
    """Runs ``flush`` every ``interval`` seconds in a daemon thread of the owning process."""

    def __init__(self, flush: Callable[[], object], interval: float) -> None:
        self._flush = flush
        self._interval = interval
        #: pid that runs the flush thread; -1 = never started, -2 = forked child not started yet
        self.pid = -1
        self.closed = False
        self.flush_lock = threading.Lock()
        self._wake = threading.Event()

    def start(self, owner: Owner) -> None:
        """Start the flush thread in this process (idempotent, cheap to call again)."""
        with self.flush_lock:
            if self.pid == os.getpid() or self.closed:
                return
            if self.pid == -1:  # first start: hooks before pid, so a fork in between still resets us
                _register_process_hooks(owner)
            self.pid = os.getpid()
            shutdown.flush_at_child_exit(owner)  # multiprocessing children end with os._exit: flush there
        threading.Thread(target=self._run, name="netauto-statsd-flush", daemon=True).start()

    def _run(self) -> None:
        pid = os.getpid()
        while not self.closed and self.pid == pid:
            self._wake.wait(self._interval)
            if self.pid != pid or self.closed:  # close() does the last flush itself
                return
            try:
                self._flush()
            except Exception as exc:  # pragma: no cover - flush already guards
                log.debug("netauto_statsd: flush thread error: %s", exc)

    def stop(self) -> bool:
        """Mark closed and wake the thread; False if it was already closed."""
        if self.closed:
            return False
        self.closed = True
        self._wake.set()
        return True

    def after_fork_in_child(self) -> None:
        """Fresh lock and event (another thread may have held them); the thread restarts on next use."""
        self.flush_lock = threading.Lock()
        self._wake = threading.Event()
        self.pid = -2


_hooked: weakref.WeakSet[Owner] = weakref.WeakSet()


def _register_process_hooks(owner: Owner) -> None:
    _hooked.add(owner)
    shutdown.track(owner)  # flushed by the opt-in signal handlers
    ref = weakref.ref(owner)
    atexit.register(_call, ref, "close")
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=lambda: _call(ref, "after_fork_in_child"))


def _call(ref: weakref.ref[Owner], method: str) -> None:
    target = ref()
    if method == "after_fork_in_child":
        epoch.bump()  # bound children re-resolve: new process tag, fresh stores
    if target is not None:
        try:
            getattr(target, method)()
        except Exception as exc:  # pragma: no cover
            log.debug("netauto_statsd: %s failed: %s", method, exc)
