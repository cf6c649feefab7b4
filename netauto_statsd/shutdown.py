"""Process ends without losing the last flush window.

Three ways a process ends lose what the emitter aggregated since its last flush:

* a signal whose default action kills the process (``SIGTERM`` from
  ``docker stop``/Kubernetes/systemd, ``SIGHUP``): no ``atexit`` runs. Opt in with
  :func:`install_shutdown_handlers`: it flushes, then does what the signal did
  before (the previous Python handler, or the default action re-delivered, so the
  exit status still says "killed by SIGTERM");
* a ``multiprocessing`` child started with ``fork`` or ``forkserver`` ends with
  ``os._exit`` after its target returns: no ``atexit`` either. The emitter calls
  :func:`flush_at_child_exit` when it starts in a process, which registers a
  ``multiprocessing.util.Finalize`` (run by the child's exit path) - no user code;
* ``os._exit`` anywhere else (an RQ work horse): call :func:`netauto_statsd.flush`
  first. ``SIGKILL`` cannot be caught.

Nothing here runs at import.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, Protocol

from netauto_statsd._log import log

#: How long a signal handler waits for the flush before doing what the signal did before.
FLUSH_TIMEOUT = 2.0
DEFAULT_SIGNALS = ("SIGTERM", "SIGHUP")


class _Flushable(Protocol):
    def flush(self) -> int: ...


_Handler = Callable[[int, FrameType | None], Any] | int | None
_installed: dict[int, _Handler] = {}
_install_lock = threading.Lock()


#: Emitters whose flush thread has started (the only ones holding anything to flush),
#: registered by the emitter itself: this module never imports the emitter.
_tracked: weakref.WeakSet[Any] = weakref.WeakSet()


def track(target: _Flushable) -> None:
    """Flush ``target`` too when a handled signal arrives (held weakly)."""
    _tracked.add(target)


def _flush_everything() -> None:
    for target in list(_tracked):
        try:
            target.flush()
        except Exception as exc:  # never stand between the process and its signal
            log.debug("netauto_statsd: flush on signal failed: %s", exc)


def flush_with_timeout(timeout: float = FLUSH_TIMEOUT) -> bool:
    """Flush every live emitter from a helper thread, waiting at most ``timeout``; ``True`` if it finished.

    A signal handler runs in the main thread between two bytecodes: if that thread
    was inside the emitter (holding a lock), flushing directly would deadlock.
    """
    worker = threading.Thread(target=_flush_everything, name="netauto-statsd-shutdown", daemon=True)
    worker.start()
    worker.join(timeout)
    return not worker.is_alive()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if not flush_with_timeout():
        log.warning("netauto_statsd: flush on signal %d did not finish in %.1f s", signum, FLUSH_TIMEOUT)
    previous = _installed.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:  # SIG_DFL (or None: set outside Python): let the default action happen, as if we were not here
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def install_shutdown_handlers(signals: Iterable[str | int] = DEFAULT_SIGNALS) -> list[int]:
    """Flush metrics when one of ``signals`` arrives, then do what that signal did before.

    Call it once from the main thread at start-up (after any framework installed its
    own handlers: theirs still run, after the flush). Idempotent. Signals this
    platform lacks are skipped. Returns the signal numbers now handled.

    Example:
        >>> import netauto_statsd
        >>> netauto_statsd.install_shutdown_handlers()  # doctest: +SKIP
        [15, 1]
    """
    handled = []
    with _install_lock:
        for item in signals:
            signum = item if isinstance(item, int) else getattr(signal, item, None)
            if signum is None:
                continue
            current = signal.getsignal(signum)
            if current is not _on_signal:
                _installed[signum] = current
                signal.signal(signum, _on_signal)
            handled.append(int(signum))
    return handled


def uninstall_shutdown_handlers() -> None:
    """Put back the handlers :func:`install_shutdown_handlers` replaced (where ours is still installed)."""
    with _install_lock:
        for signum, previous in list(_installed.items()):
            if signal.getsignal(signum) is _on_signal:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            del _installed[signum]


# ------------------------------------------------------------ multiprocessing
def flush_at_child_exit(target: _Flushable) -> bool:
    """In a ``multiprocessing`` child, flush ``target`` when the child's process ends normally.

    Called by the emitter when its flush thread starts in a process. Does nothing
    (and imports nothing) outside a ``multiprocessing`` child. The finalizer holds
    ``target`` weakly. Returns ``True`` if a finalizer was registered.
    """
    mp = sys.modules.get("multiprocessing")
    if mp is None or mp.parent_process() is None:
        return False
    from multiprocessing import util

    ref = weakref.ref(target)
    # exitpriority: run by the child's exit path (util._exit_function), before os._exit
    util.Finalize(None, _flush_ref, args=(ref,), exitpriority=100)
    return True


def _flush_ref(ref: weakref.ref[_Flushable]) -> None:
    target = ref()
    if target is not None:
        try:
            target.flush()
        except Exception as exc:  # pragma: no cover - flush already guards
            log.debug("netauto_statsd: flush at child exit failed: %s", exc)
