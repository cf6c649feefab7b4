"""aiohttp live views: websocket sessions measured without changing how the handler is written."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from netauto_statsd._log import log
from netauto_statsd.emitter import get_emitter
from netauto_statsd.guard import call, failed
from netauto_statsd.integrations.aiohttp._shared import _Pending, _request_started, route_template
from netauto_statsd.scopes import Scope

#: A send that took at least this long (seconds) waited, for the transport to drain or
#: for compression in an executor, and is observed in ``liveview.send_latency``.
#: It is the histogram's first bucket bound, so no bucket above it loses anything.
WAIT_THRESHOLD = 0.001

H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])
Send = Callable[..., Awaitable[None]]

_DATA_FRAMES = (WSMsgType.TEXT, WSMsgType.BINARY)
_ABNORMAL_CODES = frozenset({int(WSCloseCode.ABNORMAL_CLOSURE), 1005})  # 1005: closed without a code


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


class _Session(_Pending):
    """One live-view connection: its timings, and the figures waiting to be published."""

    def __init__(self, request: web.Request, started: float) -> None:
        super().__init__()
        self.request = request
        self.started = started  # perf_counter() when the request reached the middleware
        self.tags: dict[str, object] = {"view": route_template(request)}
        self.counted = False
        self.mount: Scope | None = None
        self.ws: web.WebSocketResponse | None = None  # set once the handshake is caught: connected
        self.transport: Any = None
        self.quiet_limit = -1
        self.sent = 0
        self.waiting = 0  # timed sends not finished: in ``sent``, published once they complete
        self.received = 0
        self.waits: list[float] = []
        self.failure: BaseException | None = None  # the streaming error counted last

    def connect(self, ws: web.WebSocketResponse) -> None:
        """The 101 is about to be written: wrap the socket, time the handshake, count the session."""
        if self.ws is not None:
            return
        self.ws = ws
        self.mount = Scope(self.tags)
        self.transport = self.request.transport
        try:
            # A UTF-8 str of this many characters fits under the high-water mark.
            self.quiet_limit = self.transport.get_write_buffer_limits()[1] // 4
        except Exception:  # no transport, or one without buffer limits: every send is timed (quiet_limit -1)
            pass
        wrap = {"send_str": self._wrap_send, "send_bytes": self._wrap_send, "send_frame": self._wrap_send_frame}
        wrap["receive"] = self._wrap_receive
        for name, wrapper in wrap.items():  # on this instance only
            setattr(ws, name, wrapper(getattr(ws, name)))
        emitter = get_emitter()
        emitter.histogram("liveview.handshake", max(0.0, perf_counter() - self.started), tags=self.tags)
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
            if not may_wait:
                return sending
            self.waiting += 1
            return self._timed(sending)

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
            self.sent -= 1  # never published: a waiting send is held back until it completes
            if isinstance(exc, Exception):
                call("live-view error count", self._count_error, exc)
            raise
        finally:
            self.waiting -= 1
        waited = perf_counter() - started
        if waited >= WAIT_THRESHOLD:
            self.waits.append(waited)
        if self.timer is None:  # a publish that held this send back is over: the next one counts it
            self._first_pending()

    def _wrap_receive(self, receive: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def receive_counted(*args: Any, **kwargs: Any) -> Any:
            message = await receive(*args, **kwargs)
            kind = getattr(message, "type", None)
            if kind in _DATA_FRAMES:
                self.received += 1
                if self.timer is None:
                    self._first_pending()
            elif kind is WSMsgType.ERROR:
                call("live-view error count", self._count_error, message.data)
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
        except Exception as exc:  # metrics never break the app
            failed("live-view accounting", exc)

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
        # A send still waiting may fail yet, and a counter cannot be taken back: it stays for a later publish.
        sent, self.sent = self.sent - self.waiting, self.waiting
        received, self.received = self.received, 0
        waits, self.waits = self.waits, []
        if sent:
            emitter.increment("liveview.messages", sent, tags={**tags, "direction": "sent"})
        if received:
            emitter.increment("liveview.messages", received, tags={**tags, "direction": "received"})
        if waits:
            emitter.histogram_many("liveview.send_latency", waits, tags=tags)
        transport = self.transport
        if sent and transport is not None and not transport.is_closing():
            emitter.histogram("liveview.backlog", transport.get_write_buffer_size(), tags=tags)

    def end(self, exc: BaseException | None) -> None:
        """The handler ended (returned or raised): count the close, publish, uncount the session."""
        ws = self.ws
        if ws is None:  # the handshake never happened: nothing was counted
            return
        failure = exc or self.failure or ws.exception()
        try:
            if isinstance(exc, Exception):
                self._count_error(exc)
            code_class = close_code_class(ws.close_code, failure)
            get_emitter().increment("liveview.close", tags={**self.tags, "code_class": code_class})
            self.publish_now()
        finally:
            if self.counted:  # the handler ends once: end() runs once per session
                get_emitter().gauge_add("liveview.sessions", -1, tags=self.tags)


def _request_of(args: tuple[Any, ...]) -> web.Request | None:
    for arg in args[:2]:  # handler(request), a web.View's method (view), another class's method (self, request)
        if isinstance(arg, web.View):
            return arg.request
        if isinstance(arg, web.Request):
            return arg
    return None


def _catch_handshake(request: web.Request, session: _Session) -> None:
    """Have ``session`` connect when this request's websocket response is prepared (its 101 written).

    Every response's ``prepare`` awaits ``request._prepare_hook(response)`` just
    before the headers go out (aiohttp 3.x, ``web_response.py``; it is what runs
    the apps' ``on_response_prepare`` signals). Wrapping it on this request only,
    instead of an app-wide ``on_response_prepare`` receiver, leaves every other
    response untouched. Set through ``vars`` so aiohttp's debug-mode warning about
    custom request attributes does not fire; removed when the handler ends.
    """
    app_hook = request._prepare_hook

    async def prepare_hook(response: web.StreamResponse) -> None:
        if isinstance(response, web.WebSocketResponse):
            call("live-view connect", session.connect, response)
        await app_hook(response)

    vars(request)["_prepare_hook"] = prepare_hook


def live_view(handler: H) -> H:
    """Instrument a websocket handler as a live view; the handler is written as without metrics.

    Decorates ``async def handler(request)``, methods of ``web.View`` and handler
    methods of other classes (``async def live(self, request)``). The app
    must be set up with :func:`instrument_app`, which measures the request;
    without it a warning is logged once and nothing is measured.

    Example:
        >>> @live_view
        ... async def run_live(request): ...
    """
    warned = False

    @functools.wraps(handler)
    async def live_view_handler(*args: Any, **kwargs: Any) -> web.StreamResponse:
        nonlocal warned
        session: _Session | None = None
        started = _request_started.get()  # None: instrument_app did not see this request
        request = _request_of(args)
        if request is not None and started is not None:
            try:
                session = _Session(request, started)
                _catch_handshake(request, session)
            except Exception as exc:
                failed("live view setup", exc)
        failure: BaseException | None = None
        try:
            response = await handler(*args, **kwargs)
            if started is None and not warned and request is not None and _prepared_socket(response):
                warned = True
                log.warning(
                    "netauto_statsd: live view %s: call instrument_app(app) to measure it", route_template(request)
                )
            return response
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if session is not None:
                vars(session.request).pop("_prepare_hook", None)
                try:
                    session.end(failure)
                except Exception as error:  # never mask the handler's own exception with ours
                    failed("live view end", error, defer=failure is not None)

    return live_view_handler  # type: ignore[return-value]


def _prepared_socket(response: object) -> bool:
    return isinstance(response, web.WebSocketResponse) and response.prepared
