"""aiohttp HTTP middleware: requests counted and timed by method, route template and status class.

The per-request work is a few attribute reads and one list append, keyed by
objects the request already has (the matched route, the status code); turning
them into tags (route template, status class) waits for the publish, at most
every ``PUBLISH_INTERVAL`` seconds, once per distinct key.
"""

from __future__ import annotations

import asyncio
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
    return method, template, _STATUS_CLASS.get(status // 100, "other")


def _make_middleware(tally: _RequestTally) -> Middleware:
    @web.middleware
    async def netauto_statsd_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
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
            elapsed = round(perf_counter() - started, 6)  # microseconds: half the bytes on the wire
            _request_started.reset(token)
            # Inline, not a function: this is every request's path.
            try:
                route = request.match_info.route
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


def _flush() -> None:
    get_emitter().flush()


def _count_exception(request: web.Request, exc: BaseException) -> None:
    tags = {"method": request.method, "route": route_template(request), "exception": type(exc).__name__}
    get_emitter().increment("http.exception", tags=tags)
