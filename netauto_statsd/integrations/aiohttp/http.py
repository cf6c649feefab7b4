"""aiohttp HTTP middleware: requests counted and timed by method, route template and status class.

The per-request work is a few attribute reads and one list append, keyed by
objects the request already has (the matched route, the status code); turning
them into tags (route template, status class) waits for the publish, at most
every ``PUBLISH_INTERVAL`` seconds, once per distinct key.

Where it runs: installed as the outermost middleware, it works on any app,
sub-applications included. But any middleware makes aiohttp build a handler
chain per request and add its own ``current_app`` middleware (about 1 us per
request, ``Application._handle`` in aiohttp 3.14), so when the app starts as a
root application (``AppRunner.setup()`` runs ``on_startup`` before it freezes
the middlewares) the same function moves out of the chain and wraps the app's
request handling instead (:func:`_leave_the_middleware_chain`): the server
calls it directly, around the router, for every request, matched or not.
"""

from __future__ import annotations

import asyncio
from math import ceil
from time import perf_counter
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_urldispatcher import SystemRoute

from netauto_statsd.emitter import get_emitter
from netauto_statsd.guard import call, failed
from netauto_statsd.integrations.aiohttp._shared import UNMATCHED_ROUTE, _Pending, _request_started, route_template

#: Status recorded for a request whose handler was cancelled (client gone), as nginx does.
CLIENT_CLOSED_STATUS = 499

_STATUS_CLASS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
#: Class of a status outside 100-599 (aiohttp sends any three digits): not HTTP a client can
#: read, so a server error; the catalog declares only the five classes.
_INVALID_STATUS_CLASS = "5xx"
#: Marks our middleware (and holds its tally) so install is idempotent and reversible.
TALLY_ATTRIBUTE = "__netauto_statsd_tally__"

#: (method, matched route or None for "unmatched", status code)
_Key = tuple[str, Any, int]


class _RequestTally(_Pending):
    """Durations of the requests seen since the last publish, and upgrades (counted, never timed)."""

    def __init__(self) -> None:
        super().__init__()
        self.durations: dict[_Key, list[float]] = {}
        self.upgrades: dict[_Key, int] = {}

    def publish(self) -> None:
        """Emit ``http.request`` and ``http.duration`` for every (method, route template, status class)."""
        durations, self.durations = self.durations, {}
        upgrades, self.upgrades = self.upgrades, {}
        merged: dict[tuple[str, str, str], tuple[int, list[float]]] = {}
        for key, values in durations.items():
            combination = _tags_of(key)
            count, samples = merged.get(combination, (0, []))
            samples.extend(values)
            merged[combination] = (count + len(values), samples)
        for key, upgraded in upgrades.items():
            combination = _tags_of(key)
            count, samples = merged.get(combination, (0, []))
            merged[combination] = (count + upgraded, samples)
        emitter = get_emitter()
        for (method, route, status_class), (count, samples) in merged.items():
            tags = {"method": method, "route": route, "status_class": status_class}
            emitter.increment("http.request", count, tags=tags)
            if samples:
                emitter.histogram_many("http.duration", samples, tags=tags)

    async def on_cleanup(self, app: web.Application) -> None:
        """App cleanup (normal shutdown): publish what is left, then flush the emitter."""
        call("aiohttp request tally publish", self.publish_now)
        call("aiohttp cleanup flush", _flush)


def _tags_of(key: _Key) -> tuple[str, str, str]:
    method, route, status = key
    resource = route.resource if route is not None else None
    template = resource.canonical if resource is not None else UNMATCHED_ROUTE
    return method, template, _STATUS_CLASS.get(status // 100, _INVALID_STATUS_CLASS)


def _make_middleware(tally: _RequestTally, app_handle: Handler | None = None) -> Middleware:
    """The middleware (``app_handle`` None), or the same code wrapping ``app_handle``, the app's request handling.

    Wrapping, ``handler`` is a default argument: the server calls it with the
    request only, and filling a default costs less than a ``functools.partial``
    (about 0.25 us per request here).
    """

    @web.middleware
    async def netauto_statsd_middleware(request: web.Request, handler: Handler = app_handle) -> web.StreamResponse:  # type: ignore[assignment]
        if _request_started.get() is not None:  # an instrumented parent app measures this request
            return await handler(request)
        started = perf_counter()
        token = _request_started.set(started)  # a live view times its handshake from here
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
            # Whole microseconds, rounded up: half the bytes on the wire of 17 digits, and no
            # sample crosses a bucket bound that is a whole number of microseconds (every
            # bound in bridge/statsd_mapping.yml), as rounding to nearest or down could.
            elapsed = ceil((perf_counter() - started) * 1e6) / 1e6
            _request_started.reset(token)
            # Inline, not a function: this is every request's path.
            try:
                match_info = request._match_info  # None if the router itself failed
                route = match_info.route if match_info is not None else None
                key = (request.method, None if route.__class__ is SystemRoute else route, status)
                if status == 101:  # an upgraded connection lasts the whole session: counted, not timed
                    tally.upgrades[key] = tally.upgrades.get(key, 0) + 1
                else:
                    durations = tally.durations.get(key)
                    if durations is None:
                        tally.durations[key] = [elapsed if elapsed > 0.0 else 0.0]
                    else:
                        durations.append(elapsed if elapsed > 0.0 else 0.0)
                if tally.timer is None:
                    tally.schedule()
                if tally.pending_error is not None:
                    tally.publish_now()
            except Exception as exc:  # metrics never break the app
                failed("aiohttp request metrics", exc)

    setattr(netauto_statsd_middleware, TALLY_ATTRIBUTE, tally)
    return netauto_statsd_middleware


def installed_middleware(app: web.Application) -> Middleware | None:
    """Our middleware on ``app``: in its middleware list, or wrapping its request handling after startup."""
    for middleware in app.middlewares:
        if hasattr(middleware, TALLY_ATTRIBUTE):
            return middleware
    handle = vars(app).get("_handle")
    return handle if hasattr(handle, TALLY_ATTRIBUTE) else None


async def _leave_the_middleware_chain(app: web.Application) -> None:
    """``on_startup``: a root app's middleware becomes a wrapper of its request handling.

    ``AppRunner.setup()`` (``web.run_app``, the test server, gunicorn's worker)
    runs ``on_startup`` before it freezes the app, so the middleware list can
    still change. A sub-application was pre-frozen by ``add_subapp`` (its
    ``pre_frozen`` is already true): its middleware stays where it is, as it
    does on an app frozen by hand before startup.
    """
    try:
        if app.pre_frozen:
            return
        middleware = installed_middleware(app)
        handle = getattr(app, "_handle", None)
        if middleware is None or middleware not in app.middlewares or not callable(handle):
            return  # an aiohttp without ``_handle``: the middleware stays in the chain and still counts
        # The server calls ``app._handle(request)`` for every request (``Application._make_handler``
        # passes it to ``Server``, after startup). Set on the instance, through ``vars`` so aiohttp's
        # debug-mode warning about custom attributes does not fire (uninstall refuses a started app).
        # The wrapper is in place before the middleware leaves the chain: no request goes uncounted.
        vars(app)["_handle"] = _make_middleware(getattr(middleware, TALLY_ATTRIBUTE), handle)
        app.middlewares.remove(middleware)
    except Exception as exc:  # metrics never stop the app from starting
        vars(app).pop("_handle", None)
        failed("aiohttp startup", exc)


def _flush() -> None:
    get_emitter().flush()


def _count_exception(request: web.Request, exc: BaseException) -> None:
    tags = {"method": request.method, "route": route_template(request), "exception": type(exc).__name__}
    get_emitter().increment("http.exception", tags=tags)
