"""aiohttp live views: the exact figures of cases the main suite does not pin.

Real servers on loopback ports, real websocket clients (aiohttp's, or a bare
socket that can send what a browser never would), the test recorder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.support import require_module

aiohttp = require_module("aiohttp", "pip install -e '.[test]'")
from aiohttp import WSMsgType, web  # noqa: E402

from netauto_statsd.integrations.aiohttp import instrument_app, live_view  # noqa: E402
from netauto_statsd.tags import normalise_value  # noqa: E402
from netauto_statsd.testing import Recorder  # noqa: E402
from tests.runtime.integrations.aiohttp_support import eventually, raw_upgrade, vanish  # noqa: E402

STATE = web.AppKey("state", dict)
FRAMES = normalise_value("/frames/{run_id}")
STREAM = normalise_value("/stream/{run_id}")
MAYBE = normalise_value("/maybe/{run_id}")
ECHO = normalise_value("/echo/{run_id}")
CAREFUL = normalise_value("/careful/{run_id}")
SINK = normalise_value("/sink/{run_id}")
SLOW_VIEW = normalise_value("/slow/{run_id}")
#: known waits around a handshake and a mount
SLEEP_S = 0.05
#: generous upper bound for a 50 ms sleep on a loaded machine; a value in ms (50) would be far above
UPPER_S = 1.0
BIG = "y" * 40000  # over a quarter of the transport's high-water mark: its send is timed


def views_app() -> web.Application:
    @live_view
    async def frames(request: web.Request) -> web.WebSocketResponse:
        """Data frames sent with send_frame are messages; control frames are not."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_frame(b"mount", WSMsgType.TEXT)
        await ws.send_frame(b"\x00\x01", WSMsgType.BINARY)
        await ws.send_frame(b"are you there", WSMsgType.PING)
        await ws.send_frame(b"", WSMsgType.PONG)
        await ws.send_frame(b"three data frames, two control frames", WSMsgType.TEXT)
        async for _ in ws:
            pass
        return ws

    @live_view
    async def stream(request: web.Request) -> web.WebSocketResponse:
        """Stream until a send fails; record how many sends completed."""
        state = request.app[STATE]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        while True:
            await ws.send_str(f"chunk {state['delivered']}")
            state["delivered"] += 1
            await asyncio.sleep(0)  # a real run yields between chunks

    @live_view
    async def maybe(request: web.Request) -> web.StreamResponse:
        """A live view that answers a plain request over plain HTTP (no upgrade asked)."""
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=426, text="websocket only")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("mount")
        await ws.close()
        return ws

    @live_view
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("mount")
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    @live_view
    async def careful(request: web.Request) -> web.WebSocketResponse:
        """Stream until a send fails, catch that, and return normally."""
        state = request.app[STATE]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            while True:
                await ws.send_str(BIG)  # big enough to be timed
                state["delivered"] += 1
                await asyncio.sleep(0)
        except ConnectionError:
            state["caught"] += 1
        return ws

    @live_view
    async def sink(request: web.Request) -> web.WebSocketResponse:
        """Mount, then only listen."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("mount")
        async for _ in ws:
            pass
        return ws

    @live_view
    async def slow(request: web.Request) -> web.WebSocketResponse:
        await asyncio.sleep(SLEEP_S)  # before the 101: part of the handshake
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await asyncio.sleep(2 * SLEEP_S)  # before the first message: the mount
        await ws.send_str("mount")
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app[STATE] = {"delivered": 0, "caught": 0}
    app.router.add_get("/slow/{run_id}", slow)
    app.router.add_get("/sink/{run_id}", sink)
    app.router.add_get("/careful/{run_id}", careful)
    app.router.add_get("/frames/{run_id}", frames)
    app.router.add_get("/stream/{run_id}", stream)
    app.router.add_get("/maybe/{run_id}", maybe)
    app.router.add_get("/echo/{run_id}", echo)
    return instrument_app(app)


async def test_send_frame_counts_data_frames_and_not_control_frames(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    rec = statsd_recorder
    port = await serve(views_app())
    url = f"http://127.0.0.1:{port}/frames/1"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=False) as ws:
        assert (await ws.receive()).data == "mount"
        assert (await ws.receive()).data == b"\x00\x01"
        assert (await ws.receive()).type is WSMsgType.PING
        assert (await ws.receive()).type is WSMsgType.PONG
        assert (await ws.receive()).data == "three data frames, two control frames"
        await ws.close()
    await eventually(lambda: rec.find("liveview.close", view=FRAMES), "the session to end")
    assert rec.total("liveview.messages", view=FRAMES, direction="sent") == 3
    assert rec.total("liveview.messages", view=FRAMES, direction="received") == 0
    assert rec.count("liveview.mount", view=FRAMES) == 1, "the first data frame ends the mount"
    assert rec.total("liveview.close", view=FRAMES, code_class="normal") == 1
    assert rec.total("liveview.error") == 0


async def test_a_send_that_fails_is_not_counted_sent_and_is_one_error(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """The viewer resets the connection: sent counts exactly the sends that completed."""
    rec = statsd_recorder
    app = views_app()
    port = await serve(app)
    sock = await raw_upgrade(port, "/stream/4")
    await eventually(lambda: app[STATE]["delivered"] >= 20, "the stream to run")
    vanish(sock)  # a reset: no close frame
    await eventually(lambda: rec.find("liveview.close", view=STREAM), "the server to notice")
    assert rec.total("liveview.messages", view=STREAM, direction="sent") == app[STATE]["delivered"]
    kinds = [s.tags["kind"] for s in rec.find("liveview.error", view=STREAM)]
    assert len(kinds) == 1 and kinds[0] in {"ClientConnectionResetError", "ConnectionResetError"}, kinds
    assert rec.total("liveview.close", view=STREAM, code_class="abnormal") == 1
    assert rec.gauge("liveview.sessions", view=STREAM) == 0


async def test_a_live_view_answering_plain_http_is_no_session(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """Only a prepared websocket response starts a session; a plain answer is an HTTP request only."""
    rec = statsd_recorder
    port = await serve(views_app())
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/maybe/1") as response:
            assert response.status == 426
        async with session.ws_connect(f"http://127.0.0.1:{port}/maybe/2") as ws:
            assert (await ws.receive()).data == "mount"
            assert (await ws.receive()).type is WSMsgType.CLOSE
    await eventually(lambda: rec.find("liveview.close", view=MAYBE), "the session to end")
    await eventually(lambda: rec.total("http.request", route=MAYBE) == 2, "both requests to be published")
    assert rec.count("liveview.handshake", view=MAYBE) == 1, "the plain answer was no handshake"
    assert rec.total("liveview.close", view=MAYBE) == 1
    assert [s.value for s in rec.find("liveview.sessions", view=MAYBE)] == [1, -1]
    assert rec.total("http.request", route=MAYBE, status_class="4xx") == 1
    assert rec.total("http.request", route=MAYBE, status_class="1xx") == 1
    assert rec.count("http.duration", route=MAYBE) == 1, "the 426 is timed, the upgrade is not"


async def test_a_protocol_error_from_the_viewer_is_one_streaming_error(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """A fragmented control frame is a protocol error: receive() returns ERROR, counted once by kind."""
    rec = statsd_recorder
    port = await serve(views_app())
    sock = await raw_upgrade(port, "/echo/5")
    await asyncio.get_running_loop().sock_sendall(sock, b"\x09\x00")  # PING without FIN: a fragmented control frame
    await eventually(lambda: rec.find("liveview.close", view=ECHO), "the server to end the session")
    sock.close()
    kinds = [s.tags["kind"] for s in rec.find("liveview.error", view=ECHO)]
    assert kinds == ["WebSocketError"], kinds
    assert rec.total("liveview.close", view=ECHO) == 1
    assert rec.total("liveview.messages", view=ECHO, direction="received") == 0
    assert rec.total("liveview.messages", view=ECHO, direction="sent") == 1


async def test_a_send_error_the_handler_catches_is_still_one_streaming_error(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    rec = statsd_recorder
    app = views_app()
    port = await serve(app)
    sock = await raw_upgrade(port, "/careful/2")
    await eventually(lambda: app[STATE]["delivered"] >= 3, "the stream to run")
    vanish(sock)  # a reset
    await eventually(lambda: rec.find("liveview.close", view=CAREFUL), "the handler to end")
    assert app[STATE]["caught"] == 1
    kinds = [s.tags["kind"] for s in rec.find("liveview.error", view=CAREFUL)]
    connection_errors = {"ClientConnectionResetError", "ConnectionResetError", "ConnectionError"}
    assert len(kinds) == 1 and kinds[0] in connection_errors, kinds
    assert rec.total("liveview.messages", view=CAREFUL, direction="sent") == app[STATE]["delivered"]
    assert rec.total("liveview.close", view=CAREFUL, code_class="abnormal") == 1
    assert all(0 < v < 5 for v in rec.values("liveview.send_latency", view=CAREFUL))


async def test_messages_received_across_publishes_add_up_exactly(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    rec = statsd_recorder
    port = await serve(views_app())
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/echo/3") as ws:
        assert (await ws.receive_str()) == "mount"
        for n, text in enumerate(("first", "second", "third"), start=1):
            await ws.send_str(text)
            assert (await ws.receive_str()) == text
            await eventually(
                lambda n=n: rec.total("liveview.messages", view=ECHO, direction="received") == n,  # type: ignore[misc]
                f"message {n} to be published",
            )
    await eventually(lambda: rec.find("liveview.close", view=ECHO), "the session to end")
    assert rec.total("liveview.messages", view=ECHO, direction="received") == 3
    assert rec.total("liveview.messages", view=ECHO, direction="sent") == 4
    assert rec.count("liveview.backlog", view=ECHO) >= 1


async def test_the_backlog_is_sampled_only_by_publishes_that_sent(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    rec = statsd_recorder
    port = await serve(views_app())
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/sink/1") as ws:
        assert (await ws.receive_str()) == "mount"
        await eventually(lambda: rec.find("liveview.messages", view=SINK, direction="sent"), "the mount to publish")
        assert rec.count("liveview.backlog", view=SINK) == 1
        for n in (1, 2):
            await ws.send_str(f"note {n}")
            await eventually(
                lambda n=n: rec.total("liveview.messages", view=SINK, direction="received") == n,  # type: ignore[misc]
                f"message {n} to be published",
            )
    await eventually(lambda: rec.find("liveview.close", view=SINK), "the session to end")
    assert rec.count("liveview.backlog", view=SINK) == 1, "publishes that only received sample no backlog"
    assert rec.values("liveview.backlog", view=SINK) == [0]


async def test_a_live_views_handshake_and_mount_of_known_length_are_recorded_in_seconds(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    rec = statsd_recorder
    port = await serve(views_app())
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/slow/1") as ws:
        assert await ws.receive_str() == "mount"
        [handshake] = rec.values("liveview.handshake", view=SLOW_VIEW)
        [mount] = rec.values("liveview.mount", view=SLOW_VIEW)
        await ws.close()
    assert SLEEP_S <= handshake < UPPER_S, handshake
    assert 2 * SLEEP_S <= mount < UPPER_S, mount


# ----------------------------------------------------- conversations: who speaks when
TICKS = normalise_value("/ticks/{run_id}")
POLITE = normalise_value("/polite/{run_id}")
PATIENT = normalise_value("/patient/{run_id}")
SLOPPY = normalise_value("/sloppy/{run_id}")
TICK_QUEUE = web.AppKey("ticks", asyncio.Queue)


def conversations_app() -> web.Application:
    @live_view
    async def ticks(request: web.Request) -> web.WebSocketResponse:
        """Send what the test queues, never receiving: only sends schedule its publishes."""
        queue = request.app[TICK_QUEUE]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("mount")
        while (text := await queue.get()) is not None:
            await ws.send_str(text)
        await ws.close()
        return ws

    @live_view
    async def polite(request: web.Request) -> web.WebSocketResponse:
        """Wait for the viewer's hello before the first message."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        hello = await ws.receive_str()
        await ws.send_str(f"welcome {hello}")
        async for _ in ws:
            pass
        return ws

    @live_view
    async def patient(request: web.Request) -> web.WebSocketResponse:
        """Give up waiting for the viewer twice (the timeout passed positionally by aiohttp, then by keyword)."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            await ws.receive_str(timeout=0.05)
        except asyncio.TimeoutError:
            await ws.send_str("quiet 1")
        try:
            await ws.receive(timeout=0.05)
        except asyncio.TimeoutError:
            await ws.send_str("quiet 2")
        async for _ in ws:
            pass
        return ws

    @live_view
    async def sloppy(request: web.Request) -> web.WebSocketResponse:
        """A send of the wrong type fails in aiohttp; the handler carries on."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("mount")
        try:
            await ws.send_str(123)  # type: ignore[arg-type]
        except TypeError:
            await ws.send_str("typed")
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app[TICK_QUEUE] = asyncio.Queue()
    app.router.add_get("/ticks/{run_id}", ticks)
    app.router.add_get("/polite/{run_id}", polite)
    app.router.add_get("/patient/{run_id}", patient)
    app.router.add_get("/sloppy/{run_id}", sloppy)
    return instrument_app(app)


async def test_sends_alone_get_published_while_the_session_lasts(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """A view that only sends: each send after a publish schedules the next one."""
    rec = statsd_recorder
    app = conversations_app()
    port = await serve(app)
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/ticks/1") as ws:
        assert await ws.receive_str() == "mount"
        for n in range(3):
            if n:
                app[TICK_QUEUE].put_nowait(f"tick {n}")
                assert await ws.receive_str() == f"tick {n}"
            await eventually(
                lambda n=n: rec.total("liveview.messages", view=TICKS, direction="sent") == 1 + n,  # type: ignore[misc]
                f"send {1 + n} to be published while the session is open",
            )
        assert not rec.find("liveview.close", view=TICKS)
        app[TICK_QUEUE].put_nowait(None)
        assert (await ws.receive()).type is WSMsgType.CLOSE
    await eventually(lambda: rec.find("liveview.close", view=TICKS), "the session to end")
    assert rec.total("liveview.messages", view=TICKS, direction="sent") == 3
    assert rec.total("liveview.messages", view=TICKS, direction="received") == 0


async def test_when_the_viewer_speaks_first_the_mount_ends_at_the_first_message(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    rec = statsd_recorder
    port = await serve(conversations_app())
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/polite/1") as ws:
        await ws.send_str("hi")
        assert await ws.receive_str() == "welcome hi"
        assert rec.count("liveview.mount", view=POLITE) == 1, "recorded as the first message went out"
        await eventually(
            lambda: rec.total("liveview.messages", view=POLITE, direction="received") == 1, "the hello to be published"
        )
    await eventually(lambda: rec.find("liveview.close", view=POLITE), "the session to end")
    assert rec.count("liveview.mount", view=POLITE) == 1
    assert rec.total("liveview.messages", view=POLITE, direction="sent") == 1


async def test_a_receive_timeout_reaches_the_view_through_the_counting_wrapper(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """``receive_str(timeout=...)`` passes it on positionally, ``receive(timeout=...)`` by keyword: both time out."""
    rec = statsd_recorder
    port = await serve(conversations_app())
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/patient/1") as ws:
        assert await asyncio.wait_for(ws.receive_str(), 10) == "quiet 1"
        assert await asyncio.wait_for(ws.receive_str(), 10) == "quiet 2"
    await eventually(lambda: rec.find("liveview.close", view=PATIENT), "the session to end")
    assert rec.total("liveview.messages", view=PATIENT, direction="sent") == 2
    assert rec.total("liveview.messages", view=PATIENT, direction="received") == 0
    assert rec.total("liveview.error", view=PATIENT) == 0


async def test_a_send_of_the_wrong_type_is_not_counted_sent_and_is_one_error(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    rec = statsd_recorder
    port = await serve(conversations_app())
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/sloppy/1") as ws:
        assert await ws.receive_str() == "mount"
        assert await ws.receive_str() == "typed"
    await eventually(lambda: rec.find("liveview.close", view=SLOPPY), "the session to end")
    assert rec.total("liveview.messages", view=SLOPPY, direction="sent") == 2
    assert [s.tags["kind"] for s in rec.find("liveview.error", view=SLOPPY)] == ["TypeError"]
    assert rec.total("liveview.close", view=SLOPPY, code_class="normal") == 1


async def test_the_apps_response_prepare_signal_still_sees_a_live_views_handshake(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """The live view catches its handshake by wrapping this request's prepare hook: the app's own hook still runs."""

    async def served_by(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Served-By"] = "netauto"

    app = views_app()
    app.on_response_prepare.append(served_by)
    port = await serve(app)
    sock = await raw_upgrade(port, "/sink/7")
    try:
        loop = asyncio.get_running_loop()
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 10)
            assert chunk, head
            head += chunk
    finally:
        sock.close()
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"\r\nX-Served-By: netauto\r\n" in head, head
    await eventually(lambda: statsd_recorder.find("liveview.close", view=SINK), "the session to end")
    assert statsd_recorder.count("liveview.handshake", view=SINK) == 1
