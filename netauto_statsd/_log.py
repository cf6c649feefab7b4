"""The library's one logger: ``netauto_statsd``, with one ``NullHandler``.

Every module that logs imports :data:`log` from here instead of setting up its
own, so the handler is added once and an app that configures logging sees one
named logger.
"""

from __future__ import annotations

import logging

__all__ = ["log"]

#: The ``netauto_statsd`` logger. Silent unless the application configures logging.
log = logging.getLogger("netauto_statsd")
log.addHandler(logging.NullHandler())
