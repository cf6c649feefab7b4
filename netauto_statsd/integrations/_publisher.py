"""Figures gathered on a hot path, handed to the emitter in batches by one background thread.

An integration whose hot path runs in the application's threads (a SQL
statement, a pool checkout) appends to its own pending figures and asks for a
publish; this module's daemon thread publishes everything pending at most
:data:`PUBLISH_INTERVAL` seconds later, in one emitter call per tag combination
instead of one or two per operation. The thread sleeps while nothing is pending.

Every emitter flush publishes what is pending first (a flush hook), so
``netauto_statsd.flush()`` before ``os._exit`` and the exit flush lose nothing.
With a test recorder installed (``netauto_statsd.testing``), every request
publishes at once, so a test sees its figures immediately.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol

from netauto_statsd.catalog import CatalogError
from netauto_statsd.emitter import add_flush_hook, get_emitter
from netauto_statsd.guard import failed

__all__ = ["PUBLISH_INTERVAL", "Pending", "publish_pending", "request_publish"]

#: Longest time, in seconds, a figure waits before it reaches the emitter.
PUBLISH_INTERVAL = 0.25


class Pending(Protocol):
    """Something with figures to hand to the emitter."""

    def publish(self) -> None:
        """Hand everything gathered so far to the emitter (and forget it)."""


_lock = threading.Lock()
_due: weakref.WeakSet[Pending] = weakref.WeakSet()
_wake = threading.Event()
_thread: threading.Thread | None = None
_hooks_registered = False


def request_publish(pending: Pending) -> None:
    """Publish ``pending`` within :data:`PUBLISH_INTERVAL` (at once while a test recorder is installed).

    Raises:
        CatalogError: strict mode, from an immediate publish.
    """
    if get_emitter().listener is not None:
        pending.publish()
        return
    global _thread
    with _lock:
        _due.add(pending)
        if _thread is None:
            _register_hooks()
            _thread = threading.Thread(target=_run, name="netauto-publish", daemon=True)
            _thread.start()
    _wake.set()


def publish_pending() -> None:
    """Publish everything pending now, in this thread.

    Raises:
        CatalogError: strict mode, the first one a publish met, once every pending one was published.
    """
    with _lock:
        due = list(_due)
        _due.clear()
    error: CatalogError | None = None
    for pending in due:  # one failing publish never loses the figures of the others
        try:
            pending.publish()
        except Exception as exc:
            caught = failed("publish", exc, defer=True)  # anything but a CatalogError: counted, None
            error = error if error is not None else caught
    if error is not None:
        raise error


def _run() -> None:
    while True:
        _wake.wait()
        _wake.clear()
        threading.Event().wait(PUBLISH_INTERVAL)  # let figures gather
        try:
            publish_pending()
        except Exception as exc:  # the thread never dies of a metrics error
            failed("background publish", exc, defer=True)


def _register_hooks() -> None:
    global _hooks_registered
    if not _hooks_registered:
        _hooks_registered = True
        add_flush_hook(publish_pending)  # the flush thread, flush() and the emitter's exit flush
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    # The thread did not survive the fork; the figures pending in the parent are the parent's.
    global _lock, _thread, _due, _wake
    _lock = threading.Lock()
    _thread = None
    _due = weakref.WeakSet()
    _wake = threading.Event()
