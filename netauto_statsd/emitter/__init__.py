"""The emitter: resolve (:mod:`.resolve`), aggregate (:mod:`.aggregate`), flush and process
lifecycle (:mod:`.lifecycle`) behind a short :class:`Emitter` (:mod:`.core`), the
process-wide instance (:mod:`.process`) and the metric objects' way in (:mod:`.bound`).

Importing it is inert: the emitter is created on first use or by :func:`configure`.
"""

from __future__ import annotations

from typing import Any

from netauto_statsd.catalog import model
from netauto_statsd.emitter import bound, process
from netauto_statsd.emitter.core import Emitter, Tags, add_flush_hook
from netauto_statsd.emitter.listener import Listener
from netauto_statsd.emitter.process import configure, flush, get_emitter, set_emitter, stats

# Metric objects (declared in the catalog, below us) emit through these entry points:
# hand them over here, so the catalog never imports the emitter (no import circle).
# No socket, thread or I/O: it only fills in a few function references.
bound.install(model.runtime)

__all__ = ["Emitter", "Listener", "Tags", "add_flush_hook", "configure", "flush", "get_emitter", "set_emitter", "stats"]


def __getattr__(name: str) -> Any:
    if name == "_default":  # the process-wide emitter, for tests that check it was never created
        return process._default
    raise AttributeError(name)
