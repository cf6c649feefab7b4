"""aiohttp integration: real servers (pytest-aiohttp), real websocket clients, the real exporter.

Counts are asserted after the server has shut down (app cleanup publishes what
is pending) or by polling with a deadline; nothing sleeps to wait.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import multiprocessing
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import require_module

aiohttp = require_module("aiohttp", "pip install -e '.[test]'")
from aiohttp import WSMsgType, web  # noqa: E402

from netauto_statsd.config import Settings  # noqa: E402
from netauto_statsd.emitter import Emitter, set_emitter  # noqa: E402
from netauto_statsd.integrations.aiohttp import (  # noqa: E402
    UNMATCHED_ROUTE,
    WAIT_THRESHOLD,
    AiohttpInstrumentor,
    close_code_class,
    instrument_app,
    live_view,
    route_template,
    uninstrument_app,
)
from netauto_statsd.integrations.aiohttp.http import TALLY_ATTRIBUTE  # noqa: E402
from netauto_statsd.tags import normalise_value  # noqa: E402
from netauto_statsd.testing import Recorder  # noqa: E402
from tests.runtime.integrations.aiohttp_support import eventually  # noqa: E402
from tests.support import ROOT, Exporter, free_port, wait_until  # noqa: E402

DEVICE_ROUTE = normalise_value("/api/devices/{device_id}")
LIVE = "/runs/{run_id}/live"
VIEW = normalise_value(LIVE)
BOOM_VIEW = normalise_value("/runs/{run_id}/boom")
FLOOD_VIEW = normalise_value("/runs/{run_id}/flood")
CHUNKS = 25
BIG_CHUNK = "x" * 65536
FLOOD_CHUNKS = 512  # 32 MiB: more than loopback socket buffers can hide
#: What the flood handler shares with its test: chunks it started to send, its protocol and transport.
FLOOD = web.AppKey("flood", dict)


# ------------------------------------------------------------------ the app
class RunLive(web.View):
    """A class-based live view, to show the decorator works on methods too."""

    @live_view
    async def get(self) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(self.request)
        await ws.send_json({"type": "mount"})
        async for _ in ws:
            pass
        return ws


def build_app(instrumented: bool = True) -> web.Application:
    """A small NetAuto-like app: JSON API, a failing route, and live views of a run's output."""

    async def device(request: web.Request) -> web.Response:
        return web.json_response({"device": request.match_info["device_id"], "status": "up"})

    async def config(request: web.Request) -> web.Response:
        raise ValueError("device did not answer")

    async def gone(request: web.Request) -> web.Response:
        raise web.HTTPGone(text="decommissioned")

    async def run_live(request: web.Request) -> web.WebSocketResponse:
        """Mount, stream CHUNKS chunks, then echo what the browser sends until it leaves."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "mount", "run_id": request.match_info["run_id"]})
        for seq in range(CHUNKS):
            await ws.send_str(f"chunk {seq}")
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_bytes(message.data.encode())
        return ws

    async def boom(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "mount"})
        raise RuntimeError("renderer crashed")

    async def stream(request: web.Request) -> web.WebSocketResponse:
        """Stream forever, yielding between chunks, until the viewer goes away."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "mount"})
        seq = 0
        while True:
            await ws.send_str(f"chunk {seq}")
            seq += 1
            await asyncio.sleep(0)  # a real run yields between chunks

    async def flood(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        await ws.send_json({"type": "mount"})
        state = request.app[FLOOD]
        state.update(protocol=request.protocol, transport=request.transport)
        for _ in range(FLOOD_CHUNKS):
            state["started"] += 1
            await ws.send_str(BIG_CHUNK)
        await ws.close()
        return ws

    wrap: Callable[[Any], Any] = live_view if instrumented else (lambda handler: handler)
    app = web.Application()
    app[FLOOD] = {"started": 0, "protocol": None, "transport": None}
    app.router.add_get("/api/devices/{device_id}", device)
    app.router.add_get("/api/devices/{device_id}/config", config)
    app.router.add_get("/api/legacy", gone)
    app.router.add_get(LIVE, wrap(run_live))
    app.router.add_get("/runs/{run_id}/boom", wrap(boom))
    app.router.add_get("/runs/{run_id}/stream", wrap(stream))
    app.router.add_get("/runs/{run_id}/flood", wrap(flood))
    if instrumented:
        app.router.add_view("/runs/{run_id}/view", RunLive)
    return instrument_app(app) if instrumented else app


# ----------------------------------------------------------------- helpers
def sessions(rec: Recorder, view: str = VIEW) -> float:
    return rec.gauge("liveview.sessions", view=view) or 0.0


class RawWebSocket:
    """A websocket client on a bare socket, so a test can vanish without a close frame."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    async def connect(cls, port: int, path: str) -> RawWebSocket:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += await loop.sock_recv(sock, 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(sock)

    async def read_some(self) -> bytes:
        return await asyncio.get_running_loop().sock_recv(self.sock, 65536)

    def vanish(self) -> None:
        """Reset the connection (SO_LINGER 0): no close frame, no FIN handshake."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


# -------------------------------------------------------------------- HTTP
#: How an instrumented app's requests are measured: a root app started by a runner leaves
#: aiohttp's middleware chain at startup; an app frozen before startup (or a sub-application
#: instrumented alone) keeps the middleware. Both must count the same.
PATHS = ["wrapped", "middleware-chain"]


def build_for(path: str) -> web.Application:
    app = build_app()
    if path == "middleware-chain":
        app.freeze()
    return app


def in_the_chain(app: web.Application) -> bool:
    return any(hasattr(m, TALLY_ATTRIBUTE) for m in app.middlewares)


@pytest.mark.parametrize("path", PATHS)
async def test_http_requests_by_route_template_status_class_and_exception(
    aiohttp_client: Any, statsd_recorder: Recorder, path: str
) -> None:
    app = build_for(path)
    client = await aiohttp_client(app)
    assert in_the_chain(app) == (path == "middleware-chain")
    for device_id in ("edge-1", "edge-2", "core-9"):
        assert (await client.get(f"/api/devices/{device_id}")).status == 200
    assert (await client.get("/api/devices/edge-1/config")).status == 500
    assert (await client.get("/api/legacy")).status == 410
    assert (await client.get("/no/such/page")).status == 404
    assert (await client.post("/api/devices/edge-1")).status == 405
    await client.close()  # app cleanup publishes the tallied counts

    rec = statsd_recorder
    assert rec.total("http.request", method="GET", route=DEVICE_ROUTE, status_class="2xx") == 3
    assert rec.count("http.duration", method="GET", route=DEVICE_ROUTE, status_class="2xx") == 3
    assert all(0 < v < 5 for v in rec.values("http.duration"))
    # whole microseconds (rounded up, so no sample crosses a bucket bound of the mapping)
    assert all(v == round(v, 6) for v in rec.values("http.duration")), rec.values("http.duration")
    config_route = normalise_value("/api/devices/{device_id}/config")
    assert rec.total("http.request", route=config_route, status_class="5xx") == 1
    assert rec.total("http.exception", route=config_route, exception="ValueError") == 1
    assert rec.total("http.request", route="/api/legacy", status_class="4xx") == 1  # raised HTTPGone
    assert rec.total("http.exception") == 1, "a raised HTTP response is an answer, not an exception"
    assert rec.total("http.request", route=UNMATCHED_ROUTE, status_class="4xx") == 2  # 404 and 405
    routes = {s.tags["route"] for s in rec.find("http.request")}
    assert not any("edge" in route or "no" in route.split("/") for route in routes), routes


async def test_route_template_of_a_sub_application(aiohttp_client: Any, statsd_recorder: Recorder) -> None:
    api = web.Application()

    async def show(request: web.Request) -> web.Response:
        return web.Response(text=route_template(request))

    api.router.add_get("/runs/{run_id}", show)
    app = web.Application()
    app.add_subapp("/api/v2", instrument_app(api))  # instrumented twice over: counted once
    client = await aiohttp_client(instrument_app(app))
    assert await (await client.get("/api/v2/runs/77")).text() == "/api/v2/runs/{run_id}"
    await client.close()
    assert statsd_recorder.total("http.request", route=normalise_value("/api/v2/runs/{run_id}")) == 1


async def test_sub_application_instrumented_alone(aiohttp_client: Any, statsd_recorder: Recorder) -> None:
    """Pre-frozen by add_subapp, the sub-app keeps its middleware: its requests and live views count."""
    rec = statsd_recorder
    api = build_app()  # instrumented
    root = web.Application()  # not instrumented
    root.add_subapp("/v2", api)
    client = await aiohttp_client(root)
    assert in_the_chain(api)
    assert (await client.get("/v2/api/devices/edge-1")).status == 200
    assert (await client.get("/v2/api/devices/edge-1/config")).status == 500
    async with client.ws_connect("/v2/runs/42/live") as ws:
        assert sessions(rec, normalise_value("/v2" + LIVE)) == 1
        assert (await ws.receive_json())["type"] == "mount"
        for _ in range(CHUNKS):
            await ws.receive_str()
    await client.close()
    assert rec.total("http.request", route=normalise_value("/v2/api/devices/{device_id}"), status_class="2xx") == 1
    config_route = normalise_value("/v2/api/devices/{device_id}/config")
    assert rec.total("http.exception", route=config_route, exception="ValueError") == 1
    view = normalise_value("/v2" + LIVE)
    assert rec.count("liveview.handshake", view=view) == 1
    assert rec.total("liveview.messages", view=view, direction="sent") == 1 + CHUNKS
    assert rec.total("liveview.close", view=view, code_class="normal") == 1
    assert sessions(rec, view) == 0


async def test_route_added_by_a_later_startup_hook_and_an_error_middleware(
    aiohttp_client: Any, statsd_recorder: Recorder
) -> None:
    """What other startup hooks and middlewares do is seen as before: routes added late, answers they make."""
    app = build_app()

    async def add_late_route(app: web.Application) -> None:  # runs after instrument_app's own hook
        app.router.add_get("/late/{item}", _ping)

    @web.middleware
    async def unavailable_on_value_error(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except ValueError:
            return web.Response(status=503)

    app.on_startup.append(add_late_route)
    app.middlewares.append(unavailable_on_value_error)
    client = await aiohttp_client(app)
    assert not in_the_chain(app) and list(app.middlewares) == [unavailable_on_value_error]
    assert (await client.get("/late/1")).status == 200
    assert (await client.get("/api/devices/edge-1/config")).status == 503
    await client.close()
    rec = statsd_recorder
    assert rec.total("http.request", route=normalise_value("/late/{item}"), status_class="2xx") == 1
    config_route = normalise_value("/api/devices/{device_id}/config")
    assert rec.total("http.request", route=config_route, status_class="5xx") == 1
    assert rec.total("http.exception") == 0, "the app's middleware answered: no exception left it"


async def test_instrumented_after_startup_is_still_installed_and_idempotent(aiohttp_client: Any) -> None:
    app = build_app()
    client = await aiohttp_client(app)
    assert not in_the_chain(app)
    assert AiohttpInstrumentor().is_installed(app)
    assert instrument_app(app) is app  # idempotent: nothing added to the frozen app
    assert (await client.get("/api/devices/edge-1")).status == 200
    await client.close()


def test_instrument_app_is_idempotent_and_reversible() -> None:
    app = web.Application()

    def hooks() -> tuple[int, int, int, int]:
        return len(app.middlewares), len(app.on_startup), len(app.on_response_prepare), len(app.on_cleanup)

    bare = hooks()
    assert instrument_app(app) is app
    once = hooks()
    instrument_app(app)
    # No app-wide on_response_prepare receiver: live views catch their own handshake.
    assert hooks() == once == (bare[0] + 1, bare[1] + 1, bare[2], bare[3] + 1)
    uninstrument_app(app)
    uninstrument_app(app)
    assert hooks() == bare


def test_close_code_classes() -> None:
    assert close_code_class(1000) == "normal"
    assert close_code_class(1001) == "going_away"
    assert close_code_class(1006) == "abnormal"
    assert close_code_class(1005) == "abnormal"
    assert close_code_class(1011) == "error"
    assert close_code_class(4404) == "error"
    assert close_code_class(None) == "normal"
    assert close_code_class(None, ConnectionResetError()) == "abnormal"
    assert close_code_class(None, asyncio.CancelledError()) == "abnormal"
    assert close_code_class(None, RuntimeError()) == "error"


# -------------------------------------------------------------- live views
@pytest.mark.parametrize("path", PATHS)
async def test_normal_session(aiohttp_client: Any, statsd_recorder: Recorder, path: str) -> None:
    rec = statsd_recorder
    client = await aiohttp_client(build_for(path))
    async with client.ws_connect("/runs/42/live") as ws:
        assert sessions(rec) == 1, "counted as soon as the 101 is on its way"
        assert (await ws.receive_json())["type"] == "mount"
        assert [(await ws.receive_str()) for _ in range(CHUNKS)][-1] == f"chunk {CHUNKS - 1}"
        for text in ("hello", "ping"):
            await ws.send_str(text)
            assert await ws.receive_bytes() == text.encode()
    await eventually(lambda: rec.find("liveview.close"), "the session to end")

    assert sessions(rec) == 0
    assert rec.count("liveview.handshake", view=VIEW) == 1
    assert rec.count("liveview.mount", view=VIEW) == 1
    handshake, mount = rec.values("liveview.handshake")[0], rec.values("liveview.mount")[0]
    assert 0 < handshake < 5 and 0 < mount < 5
    assert rec.total("liveview.messages", view=VIEW, direction="sent") == 1 + CHUNKS + 2
    assert rec.total("liveview.messages", view=VIEW, direction="received") == 2
    assert rec.total("liveview.close", view=VIEW, code_class="normal") == 1
    assert rec.total("liveview.error") == 0
    assert {s.tags["view"] for s in rec.samples if s.name.startswith("liveview.")} == {VIEW}
    await client.close()
    assert rec.total("http.request", route=VIEW, status_class="1xx") == 1
    assert rec.count("http.duration", route=VIEW) == 0, "an upgrade lasts the session: not timed as a request"


async def test_class_based_view(aiohttp_client: Any, statsd_recorder: Recorder) -> None:
    client = await aiohttp_client(build_app())
    async with client.ws_connect("/runs/1/view") as ws:
        assert (await ws.receive_json())["type"] == "mount"
        await ws.close(code=1001)
    view = normalise_value("/runs/{run_id}/view")
    await eventually(lambda: statsd_recorder.find("liveview.close", view=view), "the session to end")
    assert statsd_recorder.total("liveview.close", view=view, code_class="going_away") == 1
    assert sessions(statsd_recorder, view) == 0


class RunHandlers:
    """aiohttp's handler-class pattern: methods of a plain class, added to the router bound."""

    def __init__(self) -> None:
        self.sessions = 0

    @live_view
    async def live(self, request: web.Request) -> web.WebSocketResponse:
        self.sessions += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "mount"})
        async for _ in ws:
            pass
        return ws


async def test_a_live_view_method_of_a_handler_class_is_measured(
    aiohttp_client: Any, statsd_recorder: Recorder
) -> None:
    handlers = RunHandlers()
    app = web.Application()
    app.router.add_get("/runs/{run_id}/handler", handlers.live)
    client = await aiohttp_client(instrument_app(app))
    view = normalise_value("/runs/{run_id}/handler")
    async with client.ws_connect("/runs/4/handler") as ws:
        assert (await ws.receive_json())["type"] == "mount"
        assert sessions(statsd_recorder, view) == 1
    await eventually(lambda: statsd_recorder.find("liveview.close", view=view), "the session to end")
    assert handlers.sessions == 1
    assert statsd_recorder.count("liveview.handshake", view=view) == 1
    assert statsd_recorder.total("liveview.messages", view=view, direction="sent") == 1
    assert statsd_recorder.total("liveview.close", view=view, code_class="normal") == 1
    assert sessions(statsd_recorder, view) == 0


@pytest.mark.parametrize("handler_cancellation", [False, True], ids=["run_app-default", "cancel-on-disconnect"])
async def test_client_vanishes_mid_stream(
    serve: Callable[..., Any], statsd_recorder: Recorder, handler_cancellation: bool
) -> None:
    rec = statsd_recorder
    view = normalise_value("/runs/{run_id}/stream")
    port = await serve(build_app(), handler_cancellation=handler_cancellation)
    raw = await RawWebSocket.connect(port, "/runs/7/stream")
    assert b"chunk" in await eventually_read(raw, b"chunk 10")
    assert sessions(rec, view) == 1
    raw.vanish()

    await eventually(lambda: rec.find("liveview.close", view=view), "the server to notice")
    assert sessions(rec, view) == 0
    assert rec.total("liveview.close", view=view, code_class="abnormal") == 1
    assert rec.total("liveview.messages", view=view, direction="sent") > 10
    kinds = [s.tags["kind"] for s in rec.find("liveview.error", view=view)]
    if handler_cancellation:
        assert kinds == [], "a handler cancelled by the server is not a streaming error"
    else:  # the next send fails: one streaming error, counted once though it also ends the handler
        assert len(kinds) == 1 and kinds[0] in {"ClientConnectionResetError", "ConnectionResetError"}, kinds


async def eventually_read(raw: RawWebSocket, marker: bytes) -> bytes:
    """Read from ``raw`` until ``marker`` has arrived (the server is streaming)."""
    seen = b""
    while marker not in seen:
        data = await asyncio.wait_for(raw.read_some(), 10)
        assert data, "server closed early"
        seen = seen[-len(marker) :] + data
    return seen


async def test_handler_that_raises(aiohttp_client: Any, statsd_recorder: Recorder) -> None:
    rec = statsd_recorder
    client = await aiohttp_client(build_app())
    async with client.ws_connect("/runs/3/boom") as ws:
        assert (await ws.receive_json())["type"] == "mount"
        assert (await ws.receive()).type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)
    await eventually(lambda: rec.find("liveview.close", view=BOOM_VIEW), "the session to end")
    assert rec.total("liveview.error", view=BOOM_VIEW, kind="RuntimeError") == 1
    assert rec.total("liveview.close", view=BOOM_VIEW, code_class="error") == 1
    assert sessions(rec, BOOM_VIEW) == 0
    await client.close()
    assert rec.total("http.exception", route=BOOM_VIEW, exception="RuntimeError") == 1


async def test_slow_consumer_triggers_backpressure(aiohttp_client: Any, statsd_recorder: Recorder) -> None:
    rec = statsd_recorder
    app = build_app()
    client = await aiohttp_client(app)
    flood = app[FLOOD]
    loop = asyncio.get_running_loop()
    progress = {"started": -1, "since": loop.time()}

    def server_stalled_and_backlog_seen() -> bool:
        """The server waits on the viewer and the backlog metric shows it.

        Stalled: its protocol's writing is paused (the transport holds more than its
        high-water mark) and no chunk has started for 20 WAIT_THRESHOLDs, so the send
        in progress has waited at least that long already. A transport stays paused
        until it drains to its low-water mark, so every backlog sampled while it is
        stalled exceeds that mark; the publish after the last send started samples it.
        (Which value it samples between the two marks depends on how much the viewer's
        side read before it stopped: waiting for one over the high-water mark was flaky.)
        """
        protocol, transport = flood["protocol"], flood["transport"]
        now = loop.time()
        if protocol is None or not protocol.writing_paused or flood["started"] != progress["started"]:
            progress.update(started=flood["started"], since=now)
            return False
        low_water = transport.get_write_buffer_limits()[0]
        backlog = max(rec.values("liveview.backlog", view=FLOOD_VIEW), default=0)
        return now - progress["since"] >= 20 * WAIT_THRESHOLD and backlog > low_water

    # The viewer reads nothing at first: aiohttp's client stops reading its socket
    # when its queue is full, the kernel buffers fill, the server's transport goes
    # over its high-water mark and the server's send has to wait. Only once the
    # server has been seen stalled does the viewer start reading.
    async with client.ws_connect("/runs/5/flood") as ws:
        await eventually(server_stalled_and_backlog_seen, "the server to stall on the slow viewer", timeout=20)
        assert flood["started"] < FLOOD_CHUNKS, "the viewer's buffers took everything: nothing waited"
        received = 0
        async for message in ws:
            assert message.type is WSMsgType.TEXT
            received += 1
    assert received == 1 + FLOOD_CHUNKS
    await eventually(lambda: rec.find("liveview.close", view=FLOOD_VIEW), "the session to end")

    waits = rec.values("liveview.send_latency", view=FLOOD_VIEW)
    assert waits, "a send that waited for the slow viewer was observed"
    assert min(waits) >= WAIT_THRESHOLD
    assert max(waits) >= 20 * WAIT_THRESHOLD, "the send that waited while the viewer read nothing"
    assert rec.total("liveview.messages", view=FLOOD_VIEW, direction="sent") == 1 + FLOOD_CHUNKS
    assert rec.total("liveview.close", view=FLOOD_VIEW, code_class="normal") == 1
    assert sessions(rec, FLOOD_VIEW) == 0
    await client.close()


async def test_fifty_concurrent_viewers_connect_and_leave(aiohttp_client: Any, statsd_recorder: Recorder) -> None:
    rec = statsd_recorder
    client = await aiohttp_client(build_app())

    async def join() -> Any:
        ws = await client.ws_connect("/runs/9/live")
        assert (await ws.receive_json())["type"] == "mount"
        return ws

    viewers = await asyncio.gather(*(join() for _ in range(35)))
    vanishing = await asyncio.gather(*(RawWebSocket.connect(client.port, "/runs/9/live") for _ in range(15)))
    assert sessions(rec) == 50
    assert rec.count("liveview.handshake", view=VIEW) == 50
    # They leave every way a browser can: close, navigate away, or just vanish.
    await asyncio.gather(*(ws.close() for ws in viewers[:20]))
    await asyncio.gather(*(ws.close(code=1001) for ws in viewers[20:]))
    for raw in vanishing:
        raw.vanish()
    await eventually(lambda: rec.total("liveview.close", view=VIEW) == 50, "all 50 sessions to end")

    assert sessions(rec) == 0
    assert rec.total("liveview.close", view=VIEW, code_class="normal") == 20
    assert rec.total("liveview.close", view=VIEW, code_class="going_away") == 15
    assert rec.total("liveview.close", view=VIEW, code_class="abnormal") == 15
    assert rec.total("liveview.messages", view=VIEW, direction="sent") == 50 * (1 + CHUNKS)
    await client.close()


async def test_live_view_without_instrument_app_warns_once_and_works(
    aiohttp_client: Any, statsd_recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    class FreshView(web.View):
        """Decorated here: a view decorated at import has warned already if this process ran it before."""

        get = live_view(RunLive.get.__wrapped__)  # type: ignore[attr-defined]

    app = build_app(instrumented=False)
    app.router.add_view("/runs/{run_id}/view", FreshView)  # decorated, but the app is not instrumented
    client = await aiohttp_client(app)
    with caplog.at_level(logging.WARNING, logger="netauto_statsd"):
        for _ in range(2):
            async with client.ws_connect("/runs/1/view") as ws:
                assert (await ws.receive_json())["type"] == "mount"
        await client.close()
    assert [r.getMessage() for r in caplog.records].count(
        "netauto_statsd: live view /runs/{run_id}/view: call instrument_app(app) to measure it"
    ) == 1
    assert statsd_recorder.samples == []


async def test_a_live_view_answering_a_plain_stream_without_instrument_app_draws_no_warning(
    serve: Callable[..., Any], statsd_recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a prepared websocket is a live view the app forgot to measure; a prepared plain stream is not."""

    @live_view
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"data: 1\n\n")
        return response

    app = web.Application()
    app.router.add_get("/events", events)
    port = await serve(app)
    with caplog.at_level(logging.WARNING, logger="netauto_statsd"):
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/events") as response:
            assert await response.read() == b"data: 1\n\n"
    assert [r.getMessage() for r in caplog.records if r.name == "netauto_statsd"] == []
    assert statsd_recorder.samples == []


# --------------------------------------------------------- failure safety
class BrokenEmitter(Emitter):
    """An emitter whose every emission fails inside (a bug in metrics code, a dead disk...)."""

    def _emit(self, name: str, kind: str, value: float, tags: Any) -> None:
        raise OSError("metrics are broken")


async def scripted_visit(client: Any) -> list[object]:
    """What a browser sees during a visit: API answers and the live view's messages."""
    seen: list[object] = []
    for path in ("/api/devices/edge-1", "/api/devices/edge-1/config", "/api/legacy", "/nowhere"):
        response = await client.get(path)
        seen.append((path, response.status, await response.text() if response.status < 500 else ""))
    async with client.ws_connect("/runs/42/live") as ws:
        seen.append(await ws.receive_json())
        seen.extend([await ws.receive_str() for _ in range(CHUNKS)])
        await ws.send_str("hello")
        seen.append(await ws.receive_bytes())
    seen.append(ws.close_code)
    return seen


async def test_broken_metrics_change_nothing_the_client_sees(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    expected = await scripted_visit(await aiohttp_client(build_app(instrumented=False)))
    previous = set_emitter(BrokenEmitter(Settings(disabled=True)))
    try:
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            assert await scripted_visit(await aiohttp_client(build_app())) == expected
    finally:
        set_emitter(previous)
    assert any("metrics are broken" in r.getMessage() for r in caplog.records), "swallowed, but logged"


@pytest.mark.exporter
async def test_exporter_down_changes_nothing_the_client_sees(
    aiohttp_client: Any, exporter_binary: str, tmp_path: Path
) -> None:
    expected = await scripted_visit(await aiohttp_client(build_app(instrumented=False)))
    down = Exporter(exporter_binary, tmp_path)
    down.stop()  # the metrics backend is down for the whole visit
    emitter = Emitter(Settings(host="127.0.0.1", port=down.udp_port, flush_interval=0.05))  # production mode
    previous = set_emitter(emitter)
    try:
        assert await scripted_visit(await aiohttp_client(build_app())) == expected
        await asyncio.get_running_loop().run_in_executor(None, emitter.flush)
    finally:
        set_emitter(previous)
        emitter.close()
    stats = emitter.stats()
    assert stats["accepted"] > 0 and stats["flushes"] > 0 and stats["internal_errors"] == 0


# ------------------------------------------------------- the real exporter
@pytest.mark.exporter
async def test_sessions_yield_the_declared_prometheus_series(
    aiohttp_client: Any, exporter: Any, emitter_for: Any
) -> None:
    from netauto_statsd import catalog

    emitter = emitter_for(exporter, flush_interval=0.05)
    loop = asyncio.get_running_loop()
    client = await aiohttp_client(build_app())
    for device_id in ("edge-1", "edge-2"):
        assert (await client.get(f"/api/devices/{device_id}")).status == 200
    assert (await client.get("/api/devices/edge-1/config")).status == 500
    async with client.ws_connect("/runs/42/live") as ws:  # a normal session
        await ws.receive_json()
        for _ in range(CHUNKS):
            await ws.receive_str()
        await ws.send_str("hello")
        await ws.receive_bytes()
    async with client.ws_connect("/runs/3/boom") as ws:  # a handler that raises
        await ws.receive_json()
        await ws.receive()
    async with client.ws_connect("/runs/5/flood") as ws:  # a slow consumer
        flood = {"view": FLOOD_VIEW}
        await loop.run_in_executor(
            None, lambda: wait_until(lambda: exporter.value("netauto_liveview_backlog_bytes_sum", **flood) > 0)
        )
        assert len([m async for m in ws]) == 1 + FLOOD_CHUNKS
    await client.close()  # handlers done, tallies published
    emitter.flush()

    live = {"view": VIEW}

    def check() -> None:
        exporter.wait_value("netauto_liveview_messages_total", 1 + CHUNKS + 1, direction="sent", **live)
        exporter.wait_value("netauto_liveview_messages_total", 1, direction="received", **live)
        exporter.wait_value("netauto_liveview_closes_total", 1, code_class="normal", **live)
        exporter.wait_value("netauto_liveview_handshake_seconds_count", 1, **live)
        exporter.wait_value("netauto_liveview_mount_seconds_count", 1, **live)
        exporter.wait_value("netauto_liveview_errors_total", 1, view=BOOM_VIEW, kind="RuntimeError")
        exporter.wait_value("netauto_liveview_closes_total", 1, code_class="normal", **flood)
        route = {"route": DEVICE_ROUTE, "method": "GET", "status_class": "2xx"}
        exporter.wait_value("netauto_http_requests_total", 2, **route)
        exporter.wait_value("netauto_http_request_duration_seconds_count", 2, **route)
        exporter.wait_value("netauto_http_exceptions_total", 1, exception="ValueError")

    await loop.run_in_executor(None, check)
    samples = exporter.samples()
    assert exporter.value("netauto_liveview_sessions", **live) == 0
    assert exporter.value("netauto_liveview_send_latency_seconds_count", **flood) >= 1
    for metric in catalog.METRICS:
        if metric.area not in ("http", "liveview"):
            continue
        for series in catalog.exposed_series(metric):
            labels = [set(lab) for name, lab, _ in samples if name == series]
            assert labels, f"{series} is declared but the exporter does not expose it"
            expected = set(metric.label_names()) | ({"le"} if series.endswith("_bucket") else set())
            assert all(lab == expected for lab in labels), (series, labels[0], expected)
    assert set(exporter.self_errors().values()) == {0.0}


def _serve_in_child(port: int, statsd_port: int, ready: Any, stop: Any) -> None:
    """Another app process reporting to the same exporter (run with multiprocessing 'spawn')."""
    from netauto_statsd.emitter import configure

    configure(host="127.0.0.1", port=statsd_port, strict=True, flush_interval=0.05)

    async def main() -> None:
        runner = web.AppRunner(build_app())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        await runner.cleanup()

    asyncio.run(main())


@pytest.mark.exporter
async def test_sessions_add_up_across_processes(aiohttp_server: Any, exporter: Any, emitter_for: Any) -> None:
    """Two app processes, one exporter: the sessions series sums both, and returns to 0."""
    emitter_for(exporter, flush_interval=0.05)
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    child_port = free_port()
    child = context.Process(target=_serve_in_child, args=(child_port, exporter.udp_port, ready, stop))
    child.start()
    try:
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, ready.wait, 30), "child app did not start"
        server = await aiohttp_server(build_app())
        session = aiohttp.ClientSession()
        urls = [f"http://127.0.0.1:{server.port}{LIVE}"] * 3 + [f"http://127.0.0.1:{child_port}{LIVE}"] * 4
        viewers = [await session.ws_connect(url.replace("{run_id}", "8")) for url in urls]
        for ws in viewers:
            await ws.receive_json()
        await loop.run_in_executor(None, lambda: exporter.wait_value("netauto_liveview_sessions", 7, view=VIEW))
        processes = {s[1]["process"] for s in exporter.samples("netauto_liveview_sessions")}
        assert len(processes) == 2, processes
        for ws in viewers:
            await ws.close()
        await session.close()
        await loop.run_in_executor(None, lambda: exporter.wait_value("netauto_liveview_sessions", 0, view=VIEW))
    finally:
        stop.set()
        child.join(30)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0


# ------------------------------------------------------------------ import
def test_import_is_inert_and_aiohttp_is_optional() -> None:
    code = (
        "import sys, threading\n"
        "import netauto_statsd\n"
        "assert 'aiohttp' not in sys.modules, 'the package must not import aiohttp'\n"
        "import netauto_statsd.integrations.aiohttp as m\n"
        "from netauto_statsd import emitter\n"
        "assert emitter._default is None and threading.active_count() == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.exporter
async def test_app_cleanup_flushes_what_the_requests_counted(exporter: Exporter, emitter_for: Any) -> None:
    # The longest flush interval: only the integration's own shutdown hook can deliver in time.
    emitter_for(exporter, flush_interval=60)
    app = instrument_app(web.Application())
    app.router.add_get("/ping", _ping)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[0][1])
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"http://127.0.0.1:{port}/ping") as response:
                assert response.status == 200
    await runner.cleanup()  # what web.run_app does on SIGTERM / SIGINT
    exporter.wait_value("netauto_http_requests_total", 3, route="/ping", status_class="2xx")


async def _ping(request: web.Request) -> web.Response:
    return web.json_response({})
