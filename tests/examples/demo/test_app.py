"""The demo app in-process, against real sockets: viewers that leave, a slow viewer, quiet faults.

Each test serves the real demo app on a loopback port (SQLite in a temp dir),
records metrics with the strict ``statsd_recorder`` and reads the app's log.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support import require_module

aiohttp = require_module("aiohttp", "pip install -e '.[demo]' -e ./examples")
require_module("netauto_demo", "pip install -e ./examples")
from aiohttp import web  # noqa: E402
from netauto_demo import automation  # noqa: E402
from netauto_demo.app import build_app  # noqa: E402
from netauto_demo.faults import quiet_injected_faults  # noqa: E402
from netauto_demo.slow_viewer import watch_slowly  # noqa: E402

from netauto_statsd.integrations.aiohttp import WAIT_THRESHOLD  # noqa: E402
from netauto_statsd.tags import normalise_value  # noqa: E402
from netauto_statsd.testing import Recorder  # noqa: E402

LIVE = normalise_value("/runs/{run_id}/live")
CONSOLE = normalise_value("/devices/{device_id}/console")


@pytest.fixture
async def demo_port(database: None) -> AsyncIterator[int]:
    """The demo app (no background faults) on a free loopback port; jobs are not run."""
    runner = web.AppRunner(build_app(lambda run_id: None, inject_faults=False), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield int(runner.addresses[0][1])
    await runner.cleanup()


async def eventually(predicate: Any, what: str, timeout: float = 10.0) -> None:
    """Poll ``predicate`` on the loop until true (no blind sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def app_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Error records the app's framework logged (an unhandled handler exception), with the exception."""
    return [f"{r.getMessage()}: {r.exc_info and r.exc_info[1]!r}" for r in caplog.records if r.levelno >= logging.ERROR]


async def test_viewer_leaving_mid_stream_is_not_an_error(
    demo_port: int, statsd_recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """A viewer closing (1001) while chunks stream: no 'Cannot write to closing transport' traceback."""
    run = automation.create_run(1, "show version")
    device = automation.list_devices()[0]
    stop = threading.Event()

    def device_output() -> None:  # keeps the live view sending
        seq = 0
        while not stop.is_set():
            automation.append_chunk(run, device, seq, b"line\n" * 200)
            seq += 1

    writer = threading.Thread(target=device_output, daemon=True)
    writer.start()
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(5):
                async with http.ws_connect(f"http://127.0.0.1:{demo_port}/runs/{run.id}/live") as ws:
                    await ws.send_str("hello")
                    for _ in range(3):
                        await ws.receive()
                    await ws.close(code=1001, message=b"viewer left")
        await eventually(lambda: statsd_recorder.total("liveview.close", view=LIVE) == 5, "5 closes")
    finally:
        stop.set()
        writer.join(10)
    assert app_errors(caplog) == []
    assert statsd_recorder.total("liveview.close", view=LIVE, code_class="going_away") == 5
    assert statsd_recorder.find("liveview.error", view=LIVE) == []


async def test_slow_viewer_backpressures_the_console(
    demo_port: int, statsd_recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """The slow viewer makes the console's sends wait (the "Send waits" panel), and leaves cleanly.

    It freezes before leaving, so the last send still waits when it fails: that send
    was already counted in a publish, and taking it back must not emit a negative
    count (strict mode raised CatalogError inside the handler before the fix).
    """
    received = await watch_slowly("127.0.0.1", demo_port, "/devices/1/console", seconds=2.0)
    assert received > 0
    await eventually(lambda: statsd_recorder.find("liveview.close", view=CONSOLE), "the console session to end")
    waits = statsd_recorder.values("liveview.send_latency", view=CONSOLE)
    assert waits and min(waits) >= WAIT_THRESHOLD, waits
    assert max(statsd_recorder.values("liveview.backlog", view=CONSOLE)) > 0
    assert statsd_recorder.total("liveview.close", view=CONSOLE, code_class="going_away") == 1
    assert statsd_recorder.total("liveview.messages", view=CONSOLE, direction="sent") > 0
    assert app_errors(caplog) == []


async def test_injected_faults_are_one_line_real_errors_keep_their_traceback(
    demo_port: int, statsd_recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Device 4 is unreachable on purpose: one short record; a real bug (bad route value) stays loud."""
    quiet_injected_faults()
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{demo_port}/api/devices/4/config") as resp:
        assert resp.status == 500
    injected = [r for r in caplog.records if "DeviceUnreachableError" in r.getMessage()]
    assert len(injected) == 1
    assert injected[0].exc_info is None and "\n" not in injected[0].getMessage()
    assert injected[0].getMessage().startswith("injected fault: DeviceUnreachableError: device 4")
    assert statsd_recorder.total("http.exception", exception="DeviceUnreachableError") == 1

    caplog.clear()
    # not an int: a ValueError nobody injected
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{demo_port}/api/devices/x/config") as resp:
        assert resp.status == 500
    loud = [r for r in caplog.records if r.exc_info is not None]
    assert loud and isinstance(loud[0].exc_info[1], ValueError)  # type: ignore[index]


async def vanish_during_handshake(port: int, path: str) -> None:
    """Send a websocket upgrade and reset the connection at once (a tab closed while loading)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close() sends RST
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    sock.close()


@pytest.mark.parametrize("path", ["/runs/1/live", "/devices/1/console"])
async def test_viewer_gone_before_the_handshake_is_not_an_error(
    demo_port: int, statsd_recorder: Recorder, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """The 101 cannot be written to a viewer that already left: a quiet end, as for a viewer leaving later."""
    automation.create_run(1, "show version")
    view = LIVE if "live" in path else CONSOLE
    for _ in range(5):
        await vanish_during_handshake(demo_port, path)
    await eventually(lambda: statsd_recorder.total("http.request", route=view) == 5, "5 upgrade requests")
    assert app_errors(caplog) == []
