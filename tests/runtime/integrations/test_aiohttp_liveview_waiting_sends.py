"""aiohttp live views: a send that waits on a slow viewer is counted once it is sent, never before.

Real server on a loopback port; the viewer is a bare socket that stops reading, so
the server's transport fills and its sends wait, then vanishes. Counts come from the
test recorder (strict mode).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.support import require_module

aiohttp = require_module("aiohttp", "pip install -e '.[test]'")
from aiohttp import web  # noqa: E402

from netauto_statsd.integrations.aiohttp import PUBLISH_INTERVAL, WAIT_THRESHOLD, instrument_app, live_view  # noqa: E402
from netauto_statsd.tags import normalise_value  # noqa: E402
from netauto_statsd.testing import Recorder  # noqa: E402
from tests.runtime.integrations.aiohttp_support import eventually, raw_upgrade, vanish  # noqa: E402

STATE = web.AppKey("state", dict)
FLOOD = normalise_value("/flood/{run_id}")
BURST_VIEW = normalise_value("/burst/{run_id}")
CHUNK = "z" * 65536


def flood_app() -> web.Application:
    @live_view
    async def flood(request: web.Request) -> web.WebSocketResponse:
        """Send big chunks until a send fails; the handler catches that and returns normally."""
        state = request.app[STATE]
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        try:
            while True:
                state["started"] += 1
                state["since"] = asyncio.get_running_loop().time()
                await ws.send_str(CHUNK)
                state["delivered"] += 1
                await asyncio.sleep(0)  # a real run yields between chunks
        except ConnectionError:
            state["caught"] += 1
        return ws

    @live_view
    async def burst(request: web.Request) -> web.WebSocketResponse:
        """Send big chunks until one waited across a publish, then only listen until the viewer leaves."""
        state = request.app[STATE]
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        while True:
            state["started"] += 1
            state["since"] = began = loop.time()
            await ws.send_str(CHUNK)
            state["delivered"] += 1
            if loop.time() - began > 2 * PUBLISH_INTERVAL:
                break  # the last send is the one a publish held back
        state["done"] = True
        async for _ in ws:
            pass
        return ws

    @live_view
    async def pairs(request: web.Request) -> web.WebSocketResponse:
        """Send big chunks two at a time from two tasks until they fail; catch that and return normally."""
        state = request.app[STATE]
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        while True:
            state["started"] += 2
            state["since"] = asyncio.get_running_loop().time()
            results = await asyncio.gather(ws.send_str(CHUNK), ws.send_str(CHUNK), return_exceptions=True)
            state["delivered"] += sum(result is None for result in results)
            if any(isinstance(result, ConnectionError) for result in results):
                state["caught"] += 1
                return ws
            await asyncio.sleep(0)

    app = web.Application()
    app.router.add_get("/pairs/{run_id}", pairs)
    app[STATE] = {"started": 0, "delivered": 0, "caught": 0, "since": 0.0, "done": False}
    app.router.add_get("/flood/{run_id}", flood)
    app.router.add_get("/burst/{run_id}", burst)
    return instrument_app(app)


def waiting_across_a_publish(state: dict[str, Any], rec: Recorder) -> Callable[[], bool]:
    """A send has been waiting for longer than two publish intervals (a timer fired during it)."""
    loop = asyncio.get_running_loop()

    def check() -> bool:
        in_progress = state["started"] == state["delivered"] + 1
        published = bool(rec.find("liveview.messages"))
        return in_progress and published and loop.time() - state["since"] > 2 * PUBLISH_INTERVAL

    return check


async def test_a_send_that_waited_across_a_publish_and_then_failed_is_not_counted_sent(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """The publish timer fires while a send waits for the viewer; the viewer vanishes; that send never went out.

    ``liveview.messages{direction="sent"}`` must be the sends that completed: a
    counter cannot be taken back once published, so a send still waiting is not
    published yet.
    """
    rec = statsd_recorder
    app = flood_app()
    state = app[STATE]
    port = await serve(app)
    sock = await raw_upgrade(port, "/flood/1")  # never reads: the server's sends end up waiting
    try:
        await eventually(waiting_across_a_publish(state, rec), "a send to wait across a publish", timeout=20)
    finally:
        vanish(sock)
    await eventually(lambda: rec.find("liveview.close", view=FLOOD), "the handler to end")
    assert state["caught"] == 1
    assert rec.total("liveview.messages", view=FLOOD, direction="sent") == state["delivered"]
    assert rec.total("liveview.error", view=FLOOD) == 1
    assert rec.total("liveview.close", view=FLOOD, code_class="abnormal") == 1
    assert rec.gauge("liveview.sessions", view=FLOOD) == 0


async def test_a_send_that_waited_across_a_publish_and_then_went_out_is_published_while_the_session_lasts(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """Held back while it waited, the send is counted by a later publish, not only when the session ends."""
    rec = statsd_recorder
    app = flood_app()
    state = app[STATE]
    port = await serve(app)
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/burst/1") as ws:
        # aiohttp's client stops reading its socket while its queue is full: the server's sends wait
        await eventually(waiting_across_a_publish(state, rec), "a send to wait across a publish", timeout=20)
        received = 0
        while not (state["done"] and received == state["delivered"]):
            assert (await ws.receive_str()) == CHUNK
            received += 1
        await eventually(
            lambda: rec.total("liveview.messages", view=BURST_VIEW, direction="sent") == received,
            "the last send, held back while it waited, to be published while the session is open",
        )
        assert not rec.find("liveview.close", view=BURST_VIEW)
    await eventually(lambda: rec.find("liveview.close", view=BURST_VIEW), "the session to end")
    assert rec.total("liveview.messages", view=BURST_VIEW, direction="sent") == received
    waits = rec.values("liveview.send_latency", view=BURST_VIEW)
    assert max(waits) > 2 * PUBLISH_INTERVAL, "the send held back across a publish is observed as a wait"
    assert max(waits) < 30, "seconds, measured from the send's start"  # the whole wait is bounded by the test's
    assert min(waits) >= WAIT_THRESHOLD, waits


async def test_two_sends_waiting_at_once_and_then_failing_are_not_counted_sent(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """Two tasks' sends wait together across a publish, then the viewer vanishes: neither is counted."""
    rec = statsd_recorder
    app = flood_app()
    state = app[STATE]
    port = await serve(app)
    loop = asyncio.get_running_loop()

    def both_waiting_across_a_publish() -> bool:
        in_progress = state["started"] == state["delivered"] + 2
        published = bool(rec.find("liveview.messages"))
        return in_progress and published and loop.time() - state["since"] > 2 * PUBLISH_INTERVAL

    sock = await raw_upgrade(port, "/pairs/1")
    try:
        await eventually(both_waiting_across_a_publish, "two sends to wait across a publish", timeout=20)
    finally:
        vanish(sock)
    view = normalise_value("/pairs/{run_id}")
    await eventually(lambda: rec.find("liveview.close", view=view), "the handler to end")
    assert state["caught"] == 1
    assert rec.total("liveview.messages", view=view, direction="sent") == state["delivered"]
