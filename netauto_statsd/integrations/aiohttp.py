"""aiohttp integration: HTTP request metrics and websocket live-view health.

The seed's PromEx Phoenix and LiveView plugins, for aiohttp. Install it once,
before the app starts, and mark the websocket handlers that are live views::

    from aiohttp import web
    from netauto_statsd.integrations.aiohttp import instrument_app, live_view

    @live_view
    async def run_live(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)              # handshake ends: 101 sent
        await ws.send_json(initial_state())    # mount ends: first message sent
        async for chunk in run_output(request.match_info["run_id"]):
            await ws.send_str(chunk)
        return ws

    app = web.Application()
    app.router.add_get("/runs/{run_id}/live", run_live)
    instrument_app(app)

HTTP (``http.*``): every request is counted and timed by method, route template
(``resource.canonical``, never the raw path; ``unmatched`` when the router found
nothing) and status class; handlers that raise are counted by exception class.
A websocket upgrade (101) is counted but not timed: its duration is the whole
session, which ``liveview.*`` describes better.

Live views (``liveview.*``, all tagged with the view's route template):
handshake and mount time, connected sessions (a per-process gauge, summed
across processes, decremented when the handler ends however it ends),
messages sent and received, send latency, the transport's outbound backlog,
closes by close-code class and streaming errors by kind. The handler is
written exactly as without metrics: the socket's ``send_*`` and ``receive``
methods are wrapped on that one instance when it is prepared.

Per-message figures are aggregated per session and handed to the emitter at
most every :data:`PUBLISH_INTERVAL` seconds (and when the session ends), so the
cost on the send path is a clock read and an addition, not an emission.

Nothing here raises into the app except
:class:`~netauto_statsd.emitter.CatalogError` in strict mode; other failures are
logged at debug level on the ``netauto_statsd`` logger.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.typedefs import Handler

from netauto_statsd.emitter import CatalogError, get_emitter
from netauto_statsd.scopes import Scope

__all__ = [
    "PUBLISH_INTERVAL",
    "UNMATCHED_ROUTE",
    "close_code_class",
    "instrument_app",
    "live_view",
    "route_template",
    "statsd_middleware",
    "uninstrument_app",
]

log = logging.getLogger("netauto_statsd")
log.addHandler(logging.NullHandler())

#: ``route`` value of requests the router did not match (404/405 from the router).
UNMATCHED_ROUTE = "unmatched"
#: Seconds between two hand-overs of a session's per-message figures to the emitter.
PUBLISH_INTERVAL = 0.25
#: A send that took at least this long waited (backpressure, executor compression) and is
#: observed in ``liveview.send_latency``; faster sends are only counted. Equal to the
#: first bucket bound, so the histogram loses nothing above it.
WAIT_THRESHOLD = 0.001
#: Status recorded for a request whose handler was cancelled (client gone), as nginx does.
CLIENT_CLOSED_STATUS = 499

H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])

_STATUS_CLASS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_DATA_FRAMES = (WSMsgType.TEXT, WSMsgType.BINARY)
_ABNORMAL_CODES = frozenset({WSCloseCode.ABNORMAL_CLOSURE, 1005})


def _request_key(name: str, kind: type) -> Any:
    # web.RequestKey (aiohttp >= 3.12) avoids NotAppKeyWarning; older versions take a str.
    factory = getattr(web, "RequestKey", None)
    return factory(name, kind) if factory is not None else name


_SCOPE_KEY = _request_key("netauto_statsd.request", Scope)


def route_template(request: web.BaseRequest) -> str:
    """Return the route template of ``request`` (``/runs/{run_id}/live``), never its raw path.

    Requests the router could not match (404, 405) get :data:`UNMATCHED_ROUTE`.
    """
    match_info = getattr(request, "match_info", None)
    if match_info is None or getattr(match_info, "http_exception", None) is not None:
        return UNMATCHED_ROUTE
    resource = match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def _status_class(status: int) -> str:
    return _STATUS_CLASS.get(status // 100, str(status))


def _guard(action: Callable[[], None], what: str) -> None:
    try:
        action()
    except CatalogError:
        raise
    except Exception as exc:  # metrics never break the app
        log.debug("netauto_statsd: aiohttp %s failed: %s", what, exc)


# ---------------------------------------------------------------------- HTTP
@web.middleware
async def statsd_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request; count handlers that raise. Installed by :func:`instrument_app`."""
    scope = Scope({})
    request[_SCOPE_KEY] = scope
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # raised responses are answers, not failures
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED_STATUS
        raise
    except BaseException as exc:
        _guard(lambda: _record_exception(request, exc), "exception count")
        raise
    finally:
        _guard(lambda: _record_request(request, scope, status), "request metrics")


def _record_request(request: web.Request, scope: Scope, status: int) -> None:
    tags = {"method": request.method, "route": route_template(request), "status_class": _status_class(status)}
    emitter = get_emitter()
    emitter.increment("http.request", tags=tags)
    if status != 101:  # an upgraded connection lasts the whole session
        emitter.histogram("http.duration", scope.elapsed(), tags=tags)


def _record_exception(request: web.Request, exc: BaseException) -> None:
    tags = {"method": request.method, "route": route_template(request), "exception": type(exc).__name__}
    get_emitter().increment("http.exception", tags=tags)


# ----------------------------------------------------------------- live views
def close_code_class(code: int | None, failure: BaseException | None = None) -> str:
    """Classify how a websocket session ended: ``normal``, ``going_away``, ``abnormal`` or ``error``.

    ``code`` is the close code seen by the server (``None`` when the handler
    ended without a close handshake); ``failure`` is what ended it, if anything.
    A lost connection (1005, 1006, a reset, cancellation) is ``abnormal``; a
    handler that raised or any other code (1002 protocol error, 1011 internal
    error, ...) is ``error``.

    >>> close_code_class(1000), close_code_class(1001), close_code_class(1006), close_code_class(1011)
    ('normal', 'going_away', 'abnormal', 'error')
    """
    if code is None:
        if failure is None:
            return "normal"  # aiohttp sends 1000 when the handler returns
        if isinstance(failure, ConnectionError | asyncio.CancelledError):
            return "abnormal"
        return "error"
    if code == WSCloseCode.OK:
        return "normal"
    if code == WSCloseCode.GOING_AWAY:
        return "going_away"
    if code in _ABNORMAL_CODES:
        return "abnormal"
    return "error"


class _Session:
    """One live-view connection: its timings, and the figures waiting to be published."""

    __slots__ = (
        "connected",
        "failure",
        "loop",
        "mount",
        "pending_error",
        "received",
        "request",
        "scope",
        "sent",
        "tags",
        "timer",
        "transport",
        "waits",
        "ws",
    )

    def __init__(self, request: web.Request, scope: Scope) -> None:
        self.request = request
        self.scope = scope
        self.tags: dict[str, object] = {"view": route_template(request)}
        self.connected = False
        self.mount: Scope | None = None
        self.ws: web.WebSocketResponse | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.sent = 0
        self.received = 0
        self.waits: list[float] = []
        self.failure: BaseException | None = None  # the streaming error already counted
        self.pending_error: CatalogError | None = None

    # -- connection
    def connect(self, ws: web.WebSocketResponse) -> None:
        """The 101 response is being written: time the handshake, count the session, wrap the socket."""
        if self.connected:
            return
        emitter = get_emitter()
        emitter.histogram("liveview.handshake", self.scope.elapsed(), tags=self.tags)
        emitter.gauge_add("liveview.sessions", 1, tags=self.tags)
        self.connected = True
        self.mount = Scope(self.tags)
        self.ws = ws
        self.transport = self.request.transport
        self.loop = asyncio.get_running_loop()
        for name in ("send_str", "send_bytes"):
            setattr(ws, name, self._wrap_send(getattr(ws, name)))
        ws.send_frame = self._wrap_send_frame(ws.send_frame)  # type: ignore[method-assign]
        ws.receive = self._wrap_receive(ws.receive)  # type: ignore[method-assign]

    # -- hot path: a clock read and an addition per message; emission happens in publish()
    def _wrap_send(self, send: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def send_measured(*args: Any, **kwargs: Any) -> None:
            started = perf_counter()
            try:
                await send(*args, **kwargs)
            except BaseException as exc:
                self._send_failed(exc)
                raise
            waited = perf_counter() - started
            self.sent += 1
            if waited >= WAIT_THRESHOLD:
                self.waits.append(waited)
            if self.timer is None or self.mount is not None:
                self._first_pending()

        return send_measured

    def _wrap_send_frame(self, send_frame: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        send_measured = self._wrap_send(send_frame)

        async def send_frame_measured(message: bytes, opcode: WSMsgType, *args: Any, **kwargs: Any) -> None:
            if opcode in _DATA_FRAMES:
                await send_measured(message, opcode, *args, **kwargs)
            else:  # ping, pong, close: not messages
                await send_frame(message, opcode, *args, **kwargs)

        return send_frame_measured

    def _wrap_receive(self, receive: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def receive_counted(*args: Any, **kwargs: Any) -> Any:
            message = await receive(*args, **kwargs)
            kind = getattr(message, "type", None)
            if kind in _DATA_FRAMES:
                self.received += 1
                if self.timer is None:
                    self._first_pending()
            elif kind is WSMsgType.ERROR:
                _guard(lambda: self._count_error(message.data), "live-view error count")
            return message

        return receive_counted

    def _send_failed(self, exc: BaseException) -> None:
        if isinstance(exc, Exception):
            _guard(lambda: self._count_error(exc), "live-view error count")

    def _first_pending(self) -> None:
        # First figure since the last publish: schedule the next one. The first
        # message sent also ends the mount (initial state rendered).
        try:
            mount = self.mount
            if mount is not None and self.sent:
                self.mount = None
                get_emitter().histogram("liveview.mount", mount.elapsed(), tags=self.tags)
            if self.timer is None and self.loop is not None:
                self.timer = self.loop.call_later(PUBLISH_INTERVAL, self._publish_from_timer)
        except CatalogError:
            raise
        except Exception as exc:
            log.debug("netauto_statsd: live-view accounting failed: %s", exc)

    def _count_error(self, exc: object) -> None:
        if exc is self.failure or not isinstance(exc, BaseException):
            return
        self.failure = exc
        get_emitter().increment("liveview.error", tags={**self.tags, "kind": type(exc).__name__})

    # -- publishing
    def _publish_from_timer(self) -> None:
        self.timer = None
        try:
            self.publish()
        except CatalogError as exc:  # re-raised when the handler ends (strict mode)
            self.pending_error = exc
        except Exception as exc:
            log.debug("netauto_statsd: live-view publish failed: %s", exc)

    def publish(self) -> None:
        """Hand the figures gathered since the last publish to the emitter; sample the backlog."""
        emitter = get_emitter()
        tags = self.tags
        sent, self.sent = self.sent, 0
        received, self.received = self.received, 0
        waits, self.waits = self.waits, []
        if sent:
            emitter.increment("liveview.messages", sent, tags={**tags, "direction": "sent"})
        if received:
            emitter.increment("liveview.messages", received, tags={**tags, "direction": "received"})
        for seconds in waits:
            emitter.histogram("liveview.send_latency", seconds, tags=tags)
        transport = self.transport
        if sent and transport is not None and not transport.is_closing():
            backlog = transport.get_write_buffer_size()  # type: ignore[attr-defined]
            emitter.histogram("liveview.backlog", backlog, tags=tags)

    def end(self, exc: BaseException | None, response: object) -> None:
        """The handler ended (returned or raised): publish, uncount the session, count the close."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.connected:
            if isinstance(response, web.WebSocketResponse) and response.prepared:
                _warn_not_instrumented()
            return
        self.connected = False
        ws = self.ws
        failure = exc or self.failure or (ws.exception() if ws is not None else None)
        emitter = get_emitter()
        try:
            self.publish()
            if isinstance(exc, Exception):
                self._count_error(exc)
            code_class = close_code_class(ws.close_code if ws is not None else None, failure)
            emitter.increment("liveview.close", tags={**self.tags, "code_class": code_class})
        finally:
            emitter.gauge_add("liveview.sessions", -1, tags=self.tags)
        if self.pending_error is not None:
            raise self.pending_error


_SESSION_KEY = _request_key("netauto_statsd.live_view", _Session)
_warned = False


def _warn_not_instrumented() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("netauto_statsd: @live_view handler on an app without instrument_app(app): no live-view metrics")


def _request_of(args: tuple[Any, ...]) -> web.Request | None:
    first = args[0] if args else None
    if isinstance(first, web.View):
        return first.request
    return first if isinstance(first, web.Request) else None


def live_view(handler: H) -> H:
    """Instrument a websocket handler as a live view; the handler is written as without metrics.

    Works on ``async def handler(request)`` and on methods of ``web.View``. The
    app must be instrumented with :func:`instrument_app` (which sees the socket
    being prepared). Emits the ``liveview.*`` metrics, tagged with the route
    template as ``view``.
    """

    @functools.wraps(handler)
    async def live_view_handler(*args: Any, **kwargs: Any) -> web.StreamResponse:
        session: _Session | None = None
        request = _request_of(args)
        if request is not None:
            try:
                scope = request.get(_SCOPE_KEY) or Scope({})
                session = _Session(request, scope)
                request[_SESSION_KEY] = session
            except Exception as exc:
                log.debug("netauto_statsd: live view setup failed: %s", exc)
        try:
            response = await handler(*args, **kwargs)
        except BaseException as exc:
            if session is not None:
                _end_guarded(session, exc, None)
            raise
        if session is not None:
            _end_guarded(session, None, response)
        return response

    return live_view_handler  # type: ignore[return-value]


def _end_guarded(session: _Session, exc: BaseException | None, response: object) -> None:
    try:
        session.end(exc, response)
    except CatalogError:
        if exc is None:  # never mask the handler's own exception
            raise
    except Exception as error:
        log.debug("netauto_statsd: live view end failed: %s", error)


async def _on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    session = request.get(_SESSION_KEY)
    if session is not None and isinstance(response, web.WebSocketResponse):
        _guard(lambda: session.connect(response), "live-view connect")


# ------------------------------------------------------------------ install
def instrument_app(app: web.Application) -> web.Application:
    """Install the HTTP middleware (outermost) and the live-view hook on ``app``; idempotent.

    Call it before the app starts (aiohttp freezes middlewares and signals then).
    Sub-applications added with ``add_subapp`` are covered by the root's install.

    Returns:
        ``app``, for chaining.
    """
    if statsd_middleware not in app.middlewares:
        app.middlewares.insert(0, statsd_middleware)
    if _on_response_prepare not in app.on_response_prepare:
        app.on_response_prepare.append(_on_response_prepare)
    return app


def uninstrument_app(app: web.Application) -> web.Application:
    """Undo :func:`instrument_app` (before the app starts); idempotent."""
    while statsd_middleware in app.middlewares:
        app.middlewares.remove(statsd_middleware)
    while _on_response_prepare in app.on_response_prepare:
        app.on_response_prepare.remove(_on_response_prepare)
    return app
