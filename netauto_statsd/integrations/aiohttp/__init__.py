"""aiohttp integration: HTTP request metrics and websocket live-view health.

The seed's PromEx Phoenix and LiveView plugins, for aiohttp. Install once, before
the app starts, and mark the websocket handlers that are live views::

    @live_view
    async def run_live(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)              # handshake ends: the 101 is written
        await ws.send_json(initial_state())    # mount ends: the first message is sent
        async for chunk in run_output(request.match_info["run_id"]):
            await ws.send_str(chunk)
        return ws

    app.router.add_get("/runs/{run_id}/live", run_live)
    instrument_app(app)

``http.*``: requests by method, route template (never the raw path;
:data:`UNMATCHED_ROUTE` when the router matched nothing) and status class, a
duration histogram (not for websocket upgrades: ``liveview.*`` describes those),
and handlers that raised by exception class. ``liveview.*``, tagged with the
route template as ``view``: handshake and mount time, connected sessions (a
per-process gauge, decremented when the handler ends however it ends), messages
sent and received, sends that waited (backpressure), the transport's backlog,
closes by close-code class and streaming errors by kind. The handler is written
as without metrics: ``send_str``, ``send_bytes``, ``send_frame`` and ``receive``
are wrapped on that one socket when it is prepared.

Cost: counts and durations are gathered on the event loop and handed to the
emitter in batches at most every :data:`PUBLISH_INTERVAL` seconds (and at session
end and app cleanup); a send is timed only when it can wait at all (see
``bench/bench_aiohttp.py``). Nothing raises into the app except
:class:`~netauto_statsd.emitter.CatalogError` in strict mode; other failures are
logged at debug level on the ``netauto_statsd`` logger.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from netauto_statsd.annotations import LifecycleAnnotations, lifecycle_annotations
from netauto_statsd.integrations._base import Instrumentor
from netauto_statsd.integrations.aiohttp._shared import PUBLISH_INTERVAL, UNMATCHED_ROUTE, route_template
from netauto_statsd.integrations.aiohttp.http import (
    TALLY_ATTRIBUTE,
    _leave_the_middleware_chain,
    _make_middleware,
    _RequestTally,
    installed_middleware,
)
from netauto_statsd.integrations.aiohttp.liveview import WAIT_THRESHOLD, close_code_class, live_view

__all__ = [
    "PUBLISH_INTERVAL",
    "UNMATCHED_ROUTE",
    "WAIT_THRESHOLD",
    "AiohttpInstrumentor",
    "close_code_class",
    "instrument_app",
    "live_view",
    "route_template",
    "uninstrument_app",
]


#: Attribute of the installed middleware holding the app's lifecycle annotations, if any.
ANNOTATIONS_ATTRIBUTE = "_netauto_annotations"


class AiohttpInstrumentor(Instrumentor[web.Application, Middleware]):
    """Installs the HTTP middleware (outermost) and the cleanup flush on an app.

    Install before the app starts: aiohttp freezes middlewares and signals then.
    On startup a root app's middleware moves out of aiohttp's middleware chain
    and wraps the app's request handling (see ``http.py``). Live views need no
    app-wide hook: each live-view request catches its own websocket handshake.
    The app's ``on_cleanup`` publishes what the middleware gathered and flushes
    the emitter, so a normal shutdown (``AppRunner.cleanup()``, ``web.run_app``
    on SIGTERM / SIGINT) loses nothing.
    """

    integration = "netauto_statsd.integrations.aiohttp"

    def _state_of(self, app: web.Application) -> Middleware | None:
        return installed_middleware(app)

    def _install(self, app: web.Application, /, **options: Any) -> None:
        tally = _RequestTally()
        middleware = _make_middleware(tally)
        app.middlewares.insert(0, middleware)
        app.on_startup.append(_leave_the_middleware_chain)
        app.on_cleanup.append(tally.on_cleanup)
        annotate = lifecycle_annotations(options.get("annotations", False))
        if annotate is not None:
            setattr(middleware, ANNOTATIONS_ATTRIBUTE, annotate)
            app.on_startup.append(annotate.on_startup)
            app.on_cleanup.append(annotate.on_cleanup)

    def _uninstall(self, app: web.Application, middleware: Middleware) -> None:
        if app.pre_frozen:  # refused before anything changes: half an uninstall would still count requests
            raise RuntimeError(
                "uninstrument_app: the app has started or is frozen; aiohttp's middlewares and signals cannot change"
            )
        tally: _RequestTally = getattr(middleware, TALLY_ATTRIBUTE)
        if middleware in app.middlewares:
            app.middlewares.remove(middleware)
        app.on_startup.remove(_leave_the_middleware_chain)
        app.on_cleanup.remove(tally.on_cleanup)
        annotate: LifecycleAnnotations | None = getattr(middleware, ANNOTATIONS_ATTRIBUTE, None)
        if annotate is not None:
            app.on_startup.remove(annotate.on_startup)
            app.on_cleanup.remove(annotate.on_cleanup)


_instrumentor = AiohttpInstrumentor()


def instrument_app(app: web.Application, *, annotations: bool | LifecycleAnnotations = False) -> web.Application:
    """Install the HTTP middleware (outermost) and the cleanup flush on ``app``; idempotent.

    Call it before the app starts: aiohttp freezes middlewares and signals then.
    Sub-applications added with ``add_subapp`` are covered by the root's install.
    The app's cleanup publishes and flushes what is pending.

    Args:
        app: the root application.
        annotations: ``True`` posts Grafana start/stop annotations on startup and
            cleanup, configured from the environment (or pass a
            :class:`~netauto_statsd.annotations.LifecycleAnnotations`); never
            blocks the event loop nor fails the app.

    Returns:
        ``app``, for chaining.

    Raises:
        UnsupportedVersionError: the installed aiohttp is outside the supported range.

    Example:
        >>> app = instrument_app(web.Application())
        >>> app is instrument_app(app)
        True
    """
    return _instrumentor.install(app, annotations=annotations)


def uninstrument_app(app: web.Application) -> web.Application:
    """Undo :func:`instrument_app` (before the app starts); idempotent.

    Raises:
        RuntimeError: the app has started or is frozen (nothing is changed then).
    """
    return _instrumentor.uninstall(app)
