"""What the aiohttp HTTP middleware and the live views share: batching, route templates, the request scope."""

from __future__ import annotations

import asyncio
import contextvars

from aiohttp import web

from netauto_statsd.catalog import CatalogError
from netauto_statsd.guard import failed

#: ``route`` of requests the router matched to nothing (its 404 and 405 answers).
UNMATCHED_ROUTE = "unmatched"
#: Longest time, in seconds, a count waits on the event loop before it reaches the emitter.
PUBLISH_INTERVAL = 0.25


def route_template(request: web.BaseRequest) -> str:
    """Return the route template of ``request`` (``/runs/{run_id}/live``), never its raw path.

    Requests the router could not match (404, 405), or did not get to, get :data:`UNMATCHED_ROUTE`.
    """
    # ``_match_info``: ``Request.match_info`` asserts the router ran; a ``BaseRequest`` has neither.
    match_info = getattr(request, "_match_info", None)
    if match_info is None or match_info.http_exception is not None:
        return UNMATCHED_ROUTE
    resource = match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


class _Pending:
    """Figures gathered on the event loop, handed to the emitter by a timer at most every PUBLISH_INTERVAL."""

    def __init__(self) -> None:
        self.timer: asyncio.TimerHandle | None = None
        self.pending_error: CatalogError | None = None

    def publish(self) -> None:
        """Hand what was gathered to the emitter (subclasses)."""

    def schedule(self) -> None:
        """Make sure a publish is due within PUBLISH_INTERVAL."""
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(PUBLISH_INTERVAL, self._on_timer)

    def publish_now(self) -> None:
        """Cancel the timer and publish; raise a CatalogError a timer publish met (strict mode)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.publish()
        error, self.pending_error = self.pending_error, None
        if error is not None:
            raise error

    def _on_timer(self) -> None:
        self.timer = None
        try:
            self.publish()
        except Exception as exc:  # a timer cannot raise into the app: a CatalogError is re-raised by publish_now
            self.pending_error = failed("aiohttp publish", exc, defer=True)


# The middleware, the live-view wrapper and the prepare signal all run in the request's
# task: context variables hand the request's start time and live-view session between them.
_request_started: contextvars.ContextVar[float | None] = contextvars.ContextVar("netauto_request", default=None)
