"""aiohttp integration: a failure inside metric code is swallowed, counted, and logged naming what failed.

Real servers on loopback ports, real clients, an emitter whose every emission and
flush fails (``BrokenEmitter``). The app sees nothing; the debug line on the
``netauto_statsd`` logger says which step of the integration failed, which is
what an operator reads to find the broken piece.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import require_module

aiohttp = require_module("aiohttp", "pip install -e '.[test]'")
from aiohttp import WSMsgType, web  # noqa: E402

from netauto_statsd.config import Settings  # noqa: E402
from netauto_statsd.emitter import Emitter, set_emitter  # noqa: E402
from netauto_statsd.emitter.resolve import HISTOGRAM  # noqa: E402
from netauto_statsd.integrations.aiohttp import _shared, instrument_app, live_view  # noqa: E402
from netauto_statsd.integrations.aiohttp.http import TALLY_ATTRIBUTE  # noqa: E402
from netauto_statsd.testing import Recorder  # noqa: E402
from tests.runtime.integrations.aiohttp_support import BrokenEmitter, eventually, raw_upgrade, vanish  # noqa: E402

FAILED = re.compile(r"^netauto_statsd: (?P<what>.+) failed: (?P<why>.+)$")
BIG = "y" * 40000  # over a quarter of the transport's high-water mark: its send is timed
STATE = web.AppKey("state", dict)


@pytest.fixture
def broken(caplog: pytest.LogCaptureFixture) -> Iterator[BrokenEmitter]:
    """A broken emitter for the test, debug logging of ``netauto_statsd`` captured."""
    emitter = BrokenEmitter(Settings(disabled=True))
    previous = set_emitter(emitter)
    try:
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            yield emitter
    finally:
        set_emitter(previous)


def failures(caplog: pytest.LogCaptureFixture) -> dict[str, set[str]]:
    """What failed (the guard's label) -> the errors logged for it."""
    seen: dict[str, set[str]] = {}
    for record in caplog.records:
        matched = FAILED.match(record.getMessage())
        if matched:
            seen.setdefault(matched["what"], set()).add(matched["why"])
    return seen


def http_app() -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def boom(request: web.Request) -> web.Response:
        raise ValueError("device did not answer")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/boom", boom)
    return instrument_app(app)


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_failures_at_app_cleanup_are_logged_as_the_tally_publish_and_the_flush(
    broken: BrokenEmitter, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No publish timer fires (an hour away): cleanup's publish meets the broken emitter, then its flush."""
    monkeypatch.setattr(_shared, "PUBLISH_INTERVAL", 3600.0)
    runner, base = await start(http_app())
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/ok") as response:
            assert (response.status, await response.text()) == (200, "ok")
        async with session.get(f"{base}/boom") as response:
            assert response.status == 500
    await runner.cleanup()  # the app's own cleanup hook: nothing raised out of it
    assert failures(caplog) == {
        "aiohttp exception count": {"metrics are broken"},
        "aiohttp request tally publish": {"metrics are broken"},
        "aiohttp cleanup flush": {"flush is broken"},
    }
    assert broken.stats()["internal_errors"] == 3


async def test_a_failure_in_the_timers_publish_is_logged_as_the_publish(
    broken: BrokenEmitter, caplog: pytest.LogCaptureFixture
) -> None:
    """The timer took the figures and failed: cleanup has nothing left to publish, only to flush."""
    runner, base = await start(http_app())
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/ok") as response:
            assert response.status == 200
        await eventually(lambda: "aiohttp publish" in failures(caplog), "the timer's publish to fail")
    finally:
        await runner.cleanup()
    assert failures(caplog) == {"aiohttp publish": {"metrics are broken"}, "aiohttp cleanup flush": {"flush is broken"}}


async def test_a_failure_moving_the_middleware_at_startup_is_logged_and_requests_still_count(
    statsd_recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Another startup hook froze the middleware list first: ours cannot leave the chain, so it stays there."""

    async def freeze_middlewares(app: web.Application) -> None:
        app.middlewares.freeze()

    app = web.Application()
    app.router.add_get("/ok", _ok)
    app.on_startup.append(freeze_middlewares)  # runs before instrument_app's own hook
    instrument_app(app)
    with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
        runner, base = await start(app)
        try:
            assert "_handle" not in vars(app), "the wrapper set before the failure is taken back"
            assert [hasattr(m, TALLY_ATTRIBUTE) for m in app.middlewares] == [True]
            async with aiohttp.ClientSession() as session, session.get(f"{base}/ok") as response:
                assert response.status == 200
        finally:
            await runner.cleanup()
    assert failures(caplog) == {"aiohttp startup": {"Cannot modify frozen list."}}
    assert statsd_recorder.total("http.request", route="/ok", status_class="2xx") == 1


async def test_a_failure_in_the_request_paths_bookkeeping_is_logged_and_the_request_answered(
    broken: BrokenEmitter, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The publish timer cannot be scheduled (an interval that is not a number): the answer is unchanged."""
    monkeypatch.setattr(_shared, "PUBLISH_INTERVAL", "soon")
    runner, base = await start(http_app())
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/ok") as response:
            assert (response.status, await response.text()) == (200, "ok")
    finally:
        await runner.cleanup()
    seen = failures(caplog)
    assert set(seen) == {"aiohttp request metrics", "aiohttp request tally publish", "aiohttp cleanup flush"}, seen
    assert seen["aiohttp request metrics"] == {"unsupported operand type(s) for +: 'float' and 'str'"}, seen


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def views_app() -> web.Application:
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
                await ws.send_str(BIG)
                state["delivered"] += 1
                await asyncio.sleep(0)  # a real run yields between chunks
        except ConnectionError:
            state["caught"] += 1
        return ws

    app = web.Application()
    app[STATE] = {"delivered": 0, "caught": 0}
    app.router.add_get("/echo/{run_id}", echo)
    app.router.add_get("/careful/{run_id}", careful)
    return instrument_app(app)


#: What a session meets on a broken emitter whatever happens: the handshake, the mount, the end.
SESSION = {"live-view connect", "live-view accounting", "live view end"}
#: What timers may meet as well, depending on how fast the session ends.
TIMERS = {"aiohttp publish"}


def labels(caplog: pytest.LogCaptureFixture) -> set[str]:
    """What failed; every failure a live view meets here is the broken emitter's."""
    seen = failures(caplog)
    assert set().union(*seen.values()) <= {"metrics are broken"}, seen
    return set(seen)


async def test_a_live_views_failures_are_logged_by_step_and_the_viewer_sees_nothing(
    serve: Callable[..., Any], broken: BrokenEmitter, caplog: pytest.LogCaptureFixture
) -> None:
    port = await serve(views_app())
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/echo/1") as ws:
        assert await ws.receive_str() == "mount"
        await ws.send_str("hello")
        assert await ws.receive_str() == "hello"
        await ws.close()
    await eventually(lambda: "live view end" in labels(caplog), "the session to end")
    assert SESSION <= labels(caplog) <= SESSION | TIMERS, failures(caplog)
    assert ws.close_code == 1000


async def test_a_streaming_error_the_view_meets_on_receive_is_logged_as_the_error_count(
    serve: Callable[..., Any], broken: BrokenEmitter, caplog: pytest.LogCaptureFixture
) -> None:
    """A fragmented control frame: receive() returns ERROR; counting it meets the broken emitter."""
    port = await serve(views_app())
    sock = await raw_upgrade(port, "/echo/2")
    try:
        await eventually(lambda: "live-view accounting" in labels(caplog), "the mount to be sent")
        sock.send(b"\x09\x00")  # PING without FIN
        await eventually(lambda: "live view end" in labels(caplog), "the server to end the session")
    finally:
        sock.close()
    required = SESSION | {"live-view error count"}
    assert required <= labels(caplog) <= required | TIMERS, failures(caplog)


async def test_a_failed_send_the_view_catches_is_logged_as_the_error_count(
    serve: Callable[..., Any], broken: BrokenEmitter, caplog: pytest.LogCaptureFixture
) -> None:
    """The viewer resets the connection under a timed send: counting that error meets the broken emitter."""
    app = views_app()
    port = await serve(app)
    sock = await raw_upgrade(port, "/careful/3")
    try:
        await eventually(lambda: app[STATE]["delivered"] >= 3, "the stream to run")
    finally:
        vanish(sock)
    await eventually(lambda: "live view end" in labels(caplog), "the handler to end")
    assert app[STATE]["caught"] == 1
    required = SESSION | {"live-view error count"}
    assert required <= labels(caplog) <= required | TIMERS, failures(caplog)
    assert failures(caplog)["live-view error count"] == {"metrics are broken"}


class HistogramsFail(BrokenEmitter):
    """Only histograms fail (the handshake cannot be recorded); counters and gauges reach the recorder."""

    def _emit(self, name: str, kind: str, value: float, tags: Any) -> None:
        if kind == HISTOGRAM:
            raise OSError("histograms are broken")
        Emitter._emit(self, name, kind, value, tags)


async def test_a_session_whose_handshake_could_not_be_recorded_is_never_counted_out(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Only a session counted in is counted out: the sessions gauge never goes below what it counted."""
    emitter = HistogramsFail(Settings(strict=True, disabled=True))
    rec = emitter.listener = Recorder()
    previous = set_emitter(emitter)
    try:
        with caplog.at_level(logging.DEBUG, logger="netauto_statsd"):
            port = await serve(views_app())
            url = f"http://127.0.0.1:{port}/echo/1"
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
                assert await ws.receive_str() == "mount"
            await eventually(lambda: rec.find("liveview.close"), "the session to end")
    finally:
        set_emitter(previous)
    assert failures(caplog)["live-view connect"] == {"histograms are broken"}
    assert rec.find("liveview.sessions") == [], "never counted in, so never counted out"
    assert rec.total("liveview.close", code_class="normal") == 1
    assert rec.total("liveview.messages", direction="sent") == 1
