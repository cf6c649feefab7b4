"""aiohttp HTTP middleware: requests counted and timed by method, route template and status class."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from netauto_statsd.emitter import get_emitter
from netauto_statsd.guard import call, failed
from netauto_statsd.integrations.aiohttp._shared import _Pending, _request_scope, route_template
from netauto_statsd.scopes import Scope

#: Status recorded for a request whose handler was cancelled (client gone), as nginx does.
CLIENT_CLOSED_STATUS = 499

_STATUS_CLASS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
#: Marks our middleware (and holds its tally) so install is idempotent and reversible.
TALLY_ATTRIBUTE = "__netauto_statsd_tally__"


class _RequestTally(_Pending):
    """Requests counted, and their durations, per (method, route, status class) since the last publish."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[tuple[str, str, str], int] = {}
        self.durations: dict[tuple[str, str, str], list[float]] = {}

    def publish(self) -> None:
        """Emit ``http.request`` and ``http.duration`` for every tallied combination."""
        counts, self.counts = self.counts, {}
        durations, self.durations = self.durations, {}
        emitter = get_emitter()
        for (method, route, status_class), count in counts.items():
            tags = {"method": method, "route": route, "status_class": status_class}
            emitter.increment("http.request", count, tags=tags)
            emitter.histogram_many("http.duration", durations.get((method, route, status_class), ()), tags=tags)

    async def on_cleanup(self, app: web.Application) -> None:
        """App cleanup (normal shutdown): publish what is left, then flush the emitter."""
        call("aiohttp request tally publish", self.publish_now)
        call("aiohttp cleanup flush", _flush)


def _make_middleware(tally: _RequestTally) -> Middleware:
    @web.middleware
    async def netauto_statsd_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _request_scope.get() is not None:  # an instrumented parent app measures this request
            return await handler(request)
        scope = Scope({})
        token = _request_scope.set(scope)  # a live view times its handshake from here
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # a raised response is an answer, not a failure
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED_STATUS
            raise
        except BaseException as exc:
            call("aiohttp exception count", _count_exception, request, exc)
            raise
        finally:
            _request_scope.reset(token)
            try:
                _record_request(request, scope, status, tally)
            except Exception as exc:  # metrics never break the app
                failed("aiohttp request metrics", exc)

    setattr(netauto_statsd_middleware, TALLY_ATTRIBUTE, tally)
    return netauto_statsd_middleware


def _record_request(request: web.Request, scope: Scope, status: int, tally: _RequestTally) -> None:
    key = (request.method, route_template(request), _STATUS_CLASS.get(status // 100, "other"))
    tally.counts[key] = tally.counts.get(key, 0) + 1
    if status != 101:  # an upgraded connection lasts the whole session
        durations = tally.durations.get(key)
        if durations is None:
            tally.durations[key] = [scope.elapsed()]
        else:
            durations.append(scope.elapsed())
    if tally.timer is None:
        tally.schedule()
    if tally.pending_error is not None:
        tally.publish_now()


def _flush() -> None:
    get_emitter().flush()


def _count_exception(request: web.Request, exc: BaseException) -> None:
    tags = {"method": request.method, "route": route_template(request), "exception": type(exc).__name__}
    get_emitter().increment("http.exception", tags=tags)
