"""The one "never break the app" guard, for every integration and instrument.

Metric code runs inside the application's requests, jobs and statements. A
failure there must never reach the application, with one exception: a
:class:`~netauto_statsd.catalog.CatalogError`, which the emitter raises only in
strict mode, where telling the developer is the point. Everything else is
counted in the emitter's ``internal_errors`` and logged at debug level on the
``netauto_statsd`` logger.

Two shapes, both without a closure per call:

- on hot paths, an inline ``try`` whose handler hands over::

      try:
          emitter.increment("db.query", tags=tags)
      except Exception as exc:
          failed("sqlalchemy query count", exc)

- elsewhere, :func:`call`, which runs ``action(*args)`` under the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from netauto_statsd._log import log
from netauto_statsd.catalog import CatalogError
from netauto_statsd.emitter import get_emitter

__all__ = ["call", "failed"]

T = TypeVar("T")


def failed(what: str, exc: BaseException, *, defer: bool = False) -> CatalogError | None:
    """Handle ``exc`` raised by metric code doing ``what``.

    A :class:`CatalogError` (strict mode) is raised again, or returned when
    ``defer`` is true (a timer callback hands it to a later call in the app's
    own flow). Anything else is counted as an internal error, logged at debug
    level, and swallowed (``None``).
    """
    if isinstance(exc, CatalogError):
        if defer:
            return exc
        raise exc
    try:
        get_emitter().count_internal_error(what, exc)
    except Exception:  # the guard itself never raises
        log.debug("netauto_statsd: %s failed: %s", what, exc)
    return None


def call(what: str, action: Callable[..., T], *args: Any) -> T | None:
    """Run ``action(*args)``; return its result, or ``None`` if it failed (see :func:`failed`)."""
    try:
        return action(*args)
    except Exception as exc:  # metrics never break the app
        failed(what, exc)
        return None
