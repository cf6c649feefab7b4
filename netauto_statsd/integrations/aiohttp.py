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

import asyncio
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.typedefs import Handler, Middleware

from netauto_statsd.emitter import CatalogError, get_emitter
from netauto_statsd.scopes import Scope

__all__ = [
    "PUBLISH_INTERVAL",
    "UNMATCHED_ROUTE",
    "WAIT_THRESHOLD",
    "close_code_class",
    "instrument_app",
    "live_view",
    "route_template",
    "uninstrument_app",
]

log = logging.getLogger("netauto_statsd")
log.addHandler(logging.NullHandler())

#: ``route`` of requests the router matched to nothing (its 404 and 405 answers).
UNMATCHED_ROUTE = "unmatched"
#: Longest time, in seconds, a count waits on the event loop before it reaches the emitter.
PUBLISH_INTERVAL = 0.25
#: A send that took at least this long (seconds) waited, for the transport to drain or
#: for compression in an executor, and is observed in ``liveview.send_latency``.
#: It is the histogram's first bucket bound, so no bucket above it loses anything.
WAIT_THRESHOLD = 0.001
#: Status recorded for a request whose handler was cancelled (client gone), as nginx does.
CLIENT_CLOSED_STATUS = 499

H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])
Send = Callable[..., Awaitable[None]]

_STATUS_CLASS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_DATA_FRAMES = (WSMsgType.TEXT, WSMsgType.BINARY)
_ABNORMAL_CODES = frozenset({int(WSCloseCode.ABNORMAL_CLOSURE), 1005})  # 1005: closed without a code
_TALLY_ATTRIBUTE = "__netauto_statsd_tally__"


def _guarded(what: str, action: Callable[..., None], *args: Any) -> None:
    try:
        action(*args)
    except CatalogError:
        raise
    except Exception as exc:  # metrics never break the app
        log.debug("netauto_statsd: aiohttp %s failed: %s", what, exc)


def route_template(request: web.BaseRequest) -> str:
    """Return the route template of ``request`` (``/runs/{run_id}/live``), never its raw path.

    Requests the router could not match (404, 405) get :data:`UNMATCHED_ROUTE`.
    """
    match_info = getattr(request, "match_info", None)
    if match_info is None or match_info.http_exception is not None:
        return UNMATCHED_ROUTE
    resource = match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def close_code_class(code: int | None, failure: BaseException | None = None) -> str:
    """Classify how a websocket session ended: ``normal``, ``going_away``, ``abnormal`` or ``error``.

    ``code`` is the close code the server saw (``None``: the handler ended
    without a close handshake, and aiohttp sends 1000 after it returns);
    ``failure`` is what ended the session, if anything. A lost connection (1005,
    1006, a reset, cancellation) is ``abnormal``; a handler that raised, and any
    other code (1002 protocol error, 1011 internal error...), is ``error``.

    >>> [close_code_class(c) for c in (1000, 1001, 1006, 1011)]
    ['normal', 'going_away', 'abnormal', 'error']
    """
    if code is None:
        if failure is None:
            return "normal"
        return "abnormal" if isinstance(failure, ConnectionError | asyncio.CancelledError) else "error"
    if code == WSCloseCode.OK:
        return "normal"
    if code == WSCloseCode.GOING_AWAY:
        return "going_away"
    return "abnormal" if code in _ABNORMAL_CODES else "error"


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
        except CatalogError as exc:  # a timer cannot raise into the app: re-raised by publish_now
            self.pending_error = exc
        except Exception as exc:
            log.debug("netauto_statsd: aiohttp publish failed: %s", exc)


# ---------------------------------------------------------------------- HTTP
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
            for seconds in durations.get((method, route, status_class), ()):
                emitter.histogram("http.duration", seconds, tags=tags)

    async def on_cleanup(self, app: web.Application) -> None:
        """App cleanup: publish what is left."""
        _guarded("request tally publish", self.publish_now)


# The middleware, the live-view wrapper and the prepare signal all run in the request's
# task: context variables hand the request's scope and live-view session between them.
_request_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("netauto_request", default=None)


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
            _guarded("exception count", _count_exception, request, exc)
            raise
        finally:
            _request_scope.reset(token)
            try:
                _record_request(request, scope, status, tally)
            except CatalogError:
                raise
            except Exception as exc:
                log.debug("netauto_statsd: aiohttp request metrics failed: %s", exc)

    setattr(netauto_statsd_middleware, _TALLY_ATTRIBUTE, tally)
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


def _count_exception(request: web.Request, exc: BaseException) -> None:
    tags = {"method": request.method, "route": route_template(request), "exception": type(exc).__name__}
    get_emitter().increment("http.exception", tags=tags)


# ----------------------------------------------------------------- live views
class _Session(_Pending):
    """One live-view connection: its timings, and the figures waiting to be published."""

    def __init__(self, request: web.Request, scope: Scope) -> None:
        super().__init__()
        self.request = request
        self.scope = scope
        self.tags: dict[str, object] = {"view": route_template(request)}
        self.connected = False
        self.counted = False
        self.mount: Scope | None = None
        self.ws: web.WebSocketResponse | None = None
        self.transport: Any = None
        self.quiet_limit = -1
        self.sent = 0
        self.received = 0
        self.waits: list[float] = []
        self.failure: BaseException | None = None  # the streaming error counted last

    def connect(self, ws: web.WebSocketResponse) -> None:
        """The 101 is about to be written: wrap the socket, time the handshake, count the session."""
        if self.connected:
            return
        self.connected = True
        self.mount = Scope(self.tags)
        self.ws = ws
        transport = self.transport = self.request.transport
        if transport is not None and hasattr(transport, "get_write_buffer_limits"):
            # A UTF-8 str of this many characters fits under the high-water mark.
            self.quiet_limit = transport.get_write_buffer_limits()[1] // 4
        wrap = {"send_str": self._wrap_send, "send_bytes": self._wrap_send, "send_frame": self._wrap_send_frame}
        wrap["receive"] = self._wrap_receive
        for name, wrapper in wrap.items():  # on this instance only
            setattr(ws, name, wrapper(getattr(ws, name)))
        emitter = get_emitter()
        emitter.histogram("liveview.handshake", self.scope.elapsed(), tags=self.tags)
        emitter.gauge_add("liveview.sessions", 1, tags=self.tags)
        self.counted = True  # only a session counted in is counted out

    # -- hot path: counts only; a send is timed only when it can wait at all
    def _wrap_send(self, send: Send) -> Send:
        # aiohttp waits in a send only while the transport holds more than its
        # high-water mark: impossible when it holds nothing and the message is small.
        # Checking that costs less than timing every send (see bench/bench_aiohttp.py).
        quiet, transport = self.quiet_limit, self.transport
        buffered = transport.get_write_buffer_size if quiet >= 0 else None
        closing = transport.is_closing if quiet >= 0 else None

        def send_counted(data: Any, compress: int | None = None) -> Awaitable[None]:
            self.sent += 1
            if self.timer is None or self.mount is not None:
                self._first_pending()
            try:
                may_wait = len(data) > quiet or buffered() or closing()  # type: ignore[misc]
            except Exception:  # unsized data: let aiohttp raise its own error, timed
                may_wait = True
            sending = send(data, compress)
            return self._timed(sending) if may_wait else sending

        return send_counted

    def _wrap_send_frame(self, send_frame: Send) -> Send:
        send_counted = self._wrap_send(lambda message, opcode_compress: send_frame(message, *opcode_compress))

        def send_frame_counted(message: Any, opcode: Any, compress: int | None = None) -> Awaitable[None]:
            if opcode in _DATA_FRAMES:
                return send_counted(message, (opcode, compress))
            return send_frame(message, opcode, compress)  # ping, pong, close: not messages

        return send_frame_counted

    async def _timed(self, sending: Awaitable[None]) -> None:
        started = perf_counter()
        try:
            await sending
        except BaseException as exc:
            self.sent -= 1
            if isinstance(exc, Exception):
                _guarded("live-view error count", self._count_error, exc)
            raise
        waited = perf_counter() - started
        if waited >= WAIT_THRESHOLD:
            self.waits.append(waited)

    def _wrap_receive(self, receive: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def receive_counted(*args: Any, **kwargs: Any) -> Any:
            message = await receive(*args, **kwargs)
            kind = getattr(message, "type", None)
            if kind in _DATA_FRAMES:
                self.received += 1
                if self.timer is None:
                    self._first_pending()
            elif kind is WSMsgType.ERROR:
                _guarded("live-view error count", self._count_error, message.data)
            return message

        return receive_counted

    def _first_pending(self) -> None:
        # The first message sent ends the mount (initial state rendered); the first
        # figure since the last publish schedules the next one.
        try:
            mount = self.mount
            if mount is not None and self.sent:
                self.mount = None
                get_emitter().histogram("liveview.mount", mount.elapsed(), tags=self.tags)
            self.schedule()
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
    def publish(self) -> None:
        """Emit the counts and waits gathered since the last publish; sample the backlog."""
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
            emitter.histogram("liveview.backlog", transport.get_write_buffer_size(), tags=tags)

    def end(self, exc: BaseException | None) -> None:
        """The handler ended (returned or raised): count the close, publish, uncount the session."""
        if not self.connected:
            return
        self.connected = False
        ws = self.ws
        failure = exc or self.failure or (ws.exception() if ws is not None else None)
        try:
            if isinstance(exc, Exception):
                self._count_error(exc)
            code_class = close_code_class(ws.close_code if ws is not None else None, failure)
            get_emitter().increment("liveview.close", tags={**self.tags, "code_class": code_class})
            self.publish_now()
        finally:
            if self.counted:
                self.counted = False
                get_emitter().gauge_add("liveview.sessions", -1, tags=self.tags)


_live_session: contextvars.ContextVar[_Session | None] = contextvars.ContextVar("netauto_live_view", default=None)


def _request_of(args: tuple[Any, ...]) -> web.Request | None:
    first = args[0] if args else None
    if isinstance(first, web.View):
        return first.request
    return first if isinstance(first, web.Request) else None


def live_view(handler: H) -> H:
    """Instrument a websocket handler as a live view; the handler is written as without metrics.

    Decorates ``async def handler(request)`` and methods of ``web.View``. The app
    must be set up with :func:`instrument_app`, which sees the socket prepared;
    without it a warning is logged once and nothing is measured.

    Example:
        >>> @live_view  # doctest: +SKIP
        ... async def run_live(request): ...
    """
    warned = False

    @functools.wraps(handler)
    async def live_view_handler(*args: Any, **kwargs: Any) -> web.StreamResponse:
        nonlocal warned
        session: _Session | None = None
        request = _request_of(args)
        if request is not None:
            try:
                session = _Session(request, _request_scope.get() or Scope({}))
            except Exception as exc:
                log.debug("netauto_statsd: live view setup failed: %s", exc)
        token = _live_session.set(session)
        failure: BaseException | None = None
        try:
            response = await handler(*args, **kwargs)
            if session is not None and not (session.connected or warned) and _prepared_socket(response):
                warned = True
                log.warning(
                    "netauto_statsd: live view %s: call instrument_app(app) to measure it", session.tags["view"]
                )
            return response
        except BaseException as exc:
            failure = exc
            raise
        finally:
            _live_session.reset(token)
            if session is not None:
                try:
                    session.end(failure)
                except CatalogError:
                    if failure is None:  # never mask the handler's own exception
                        raise
                except Exception as error:
                    log.debug("netauto_statsd: live view end failed: %s", error)

    return live_view_handler  # type: ignore[return-value]


def _prepared_socket(response: object) -> bool:
    return isinstance(response, web.WebSocketResponse) and response.prepared


async def _on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    session = _live_session.get()
    if session is not None and session.request is request and isinstance(response, web.WebSocketResponse):
        _guarded("live-view connect", session.connect, response)


# ------------------------------------------------------------------ install
def _installed(app: web.Application) -> Middleware | None:
    for middleware in app.middlewares:
        if hasattr(middleware, _TALLY_ATTRIBUTE):
            return middleware
    return None


def instrument_app(app: web.Application) -> web.Application:
    """Install the HTTP middleware (outermost) and the live-view hook on ``app``; idempotent.

    Call it before the app starts: aiohttp freezes middlewares and signals then.
    Sub-applications added with ``add_subapp`` are covered by the root's install.

    Returns:
        ``app``, for chaining.

    Example:
        >>> app = instrument_app(web.Application())
        >>> app is instrument_app(app)
        True
    """
    if _installed(app) is None:
        tally = _RequestTally()
        app.middlewares.insert(0, _make_middleware(tally))
        app.on_response_prepare.append(_on_response_prepare)
        app.on_cleanup.append(tally.on_cleanup)
    return app


def uninstrument_app(app: web.Application) -> web.Application:
    """Undo :func:`instrument_app` (before the app starts); idempotent."""
    middleware = _installed(app)
    if middleware is not None:
        tally: _RequestTally = getattr(middleware, _TALLY_ATTRIBUTE)
        app.middlewares.remove(middleware)
        app.on_response_prepare.remove(_on_response_prepare)
        app.on_cleanup.remove(tally.on_cleanup)
    return app
