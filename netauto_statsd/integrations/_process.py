"""Which processes may send per-process gauges: long-lived ones only.

A per-process gauge (``db.pool.connections``, ``liveview.sessions``...) carries
the sending process in its ``process`` tag, and statsd_exporter keeps every
series until its TTL: a process that lives for one job (an RQ work horse)
leaves one stale series per job behind, and ``sum`` over processes piles up
(a pool of 5 read as 265 after a minute of jobs). So a process that knows it is
short-lived says so here, and integrations send no per-process gauges from it.
Counters and histograms from it are unaffected: they add up correctly.
"""

from __future__ import annotations

import os

__all__ = ["is_short_lived", "mark_short_lived"]

_short_lived_pid = -1


def mark_short_lived() -> None:
    """Declare this process short-lived (an RQ work horse); a forked child of it is not marked."""
    global _short_lived_pid
    _short_lived_pid = os.getpid()


def is_short_lived() -> bool:
    """True in a process :func:`mark_short_lived` was called in."""
    return _short_lived_pid == os.getpid()
