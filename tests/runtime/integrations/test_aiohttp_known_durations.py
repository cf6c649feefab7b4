"""aiohttp integration: durations from known waits are recorded in seconds, each in its own histogram.

Real server on a loopback port, real clients, the test recorder (the exporter side of
the same units is ``tests/tooling/bridge/test_units.py``). Each wait is a known
``asyncio.sleep``; a recorded duration is at least that wait (the event loop never
wakes a sleeper early) and below a generous bound a value in milliseconds could not meet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.support import require_module

aiohttp = require_module("aiohttp", "pip install -e '.[test]'")
from aiohttp import web  # noqa: E402

from netauto_statsd.integrations.aiohttp import instrument_app, live_view  # noqa: E402
from netauto_statsd.tags import normalise_value  # noqa: E402
from netauto_statsd.testing import Recorder  # noqa: E402
from tests.runtime.integrations.aiohttp_support import eventually  # noqa: E402

#: the work being measured
SLEEP_S = 0.05
#: generous upper bound for a 50 ms sleep on a loaded machine; a value in ms (50) would be far above
UPPER_S = 1.0
SLOW_VIEW = normalise_value("/slow/{run_id}")


def timed_app() -> web.Application:
    async def work(request: web.Request) -> web.Response:
        await asyncio.sleep(SLEEP_S)
        return web.Response(text="done")

    async def fail(request: web.Request) -> web.Response:
        await asyncio.sleep(SLEEP_S)
        raise web.HTTPServiceUnavailable()

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
    app.router.add_get("/work", work)
    app.router.add_get("/fail", fail)
    app.router.add_get("/slow/{run_id}", slow)
    return instrument_app(app)


async def test_a_request_of_known_length_is_recorded_in_seconds_in_whole_microseconds(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    rec = statsd_recorder
    port = await serve(timed_app())
    async with aiohttp.ClientSession() as session:
        for path, status in (("/work", 200), ("/fail", 503)):
            async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                assert response.status == status
    await eventually(lambda: rec.count("http.duration") == 2, "both requests to be published")
    for route, status_class in (("/work", "2xx"), ("/fail", "5xx")):
        [value] = rec.values("http.duration", route=route, status_class=status_class)
        assert SLEEP_S <= value < UPPER_S, (route, value)
        assert value == round(value, 6), value


async def test_a_live_views_handshake_and_mount_of_known_length_are_recorded_in_seconds(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    rec = statsd_recorder
    port = await serve(timed_app())
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/slow/1") as ws:
        assert await ws.receive_str() == "mount"
        [handshake] = rec.values("liveview.handshake", view=SLOW_VIEW)
        [mount] = rec.values("liveview.mount", view=SLOW_VIEW)
        await ws.close()
    assert SLEEP_S <= handshake < UPPER_S, handshake
    assert 2 * SLEEP_S <= mount < UPPER_S, mount
