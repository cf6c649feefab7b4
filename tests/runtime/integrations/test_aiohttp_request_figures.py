"""aiohttp HTTP middleware: the exact figures of cases the main suite does not pin.

Real servers on loopback ports, real clients (aiohttp's or a bare socket), the
test recorder. Counts are read after app cleanup published them, or polled with a
deadline while the server runs; nothing sleeps to wait.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import require_module

aiohttp = require_module("aiohttp", "pip install -e '.[test]'")
from aiohttp import web  # noqa: E402

from netauto_statsd.catalog import CatalogError  # noqa: E402
from netauto_statsd.integrations.aiohttp import UNMATCHED_ROUTE, _shared, instrument_app, route_template  # noqa: E402
from netauto_statsd.tags import normalise_value  # noqa: E402
from netauto_statsd.testing import Recorder  # noqa: E402
from tests.runtime.integrations.aiohttp_support import eventually  # noqa: E402

SLOW = web.AppKey("slow", dict)
#: a known wait measured by the middleware
SLEEP_S = 0.05
#: generous upper bound for a 50 ms sleep on a loaded machine; a value in ms (50) would be far above
UPPER_S = 1.0


def figures_app() -> web.Application:
    async def odd_status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]))

    async def hang(request: web.Request) -> web.Response:
        request.app[SLOW]["entered"] += 1
        await asyncio.Event().wait()  # until the client goes away and the server cancels us
        raise AssertionError("not reached")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app[SLOW] = {"entered": 0}
    app.router.add_get("/status/{code}", odd_status)
    app.router.add_get("/hang", hang)
    app.router.add_get("/ok", ok)
    return instrument_app(app)


async def test_a_status_outside_100_to_599_is_counted_as_5xx_not_an_undeclared_class(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """aiohttp sends any three digits; the catalog declares five classes (strict mode raised on "other")."""
    port = await serve(figures_app())
    async with aiohttp.ClientSession() as session:
        for code in (204, 302, 600):
            async with session.get(f"http://127.0.0.1:{port}/status/{code}") as response:
                assert response.status == code
    rec = statsd_recorder
    route = normalise_value("/status/{code}")
    await eventually(lambda: rec.total("http.request", route=route) == 3, "the timer to publish three requests")
    assert rec.total("http.request", route=route, status_class="5xx") == 1
    assert rec.total("http.request", route=route, status_class="2xx") == 1
    assert rec.total("http.request", route=route, status_class="3xx") == 1
    assert rec.count("http.duration", route=route, status_class="5xx") == 1
    assert {s.tags["status_class"] for s in rec.find("http.request")} == {"2xx", "3xx", "5xx"}


async def test_requests_reach_the_emitter_while_the_server_runs(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """The publish timer hands counts over without waiting for app cleanup, and runs again after that."""
    rec = statsd_recorder
    port = await serve(figures_app())
    async with aiohttp.ClientSession() as session:
        for batch in (1, 2):
            for _ in range(3):
                async with session.get(f"http://127.0.0.1:{port}/ok") as response:
                    assert response.status == 200
            await eventually(
                lambda batch=batch: rec.total("http.request", route="/ok") == 3 * batch,  # type: ignore[misc]
                f"batch {batch} to be published by the timer",
            )
    samples = rec.find("http.request", route="/ok", method="GET", status_class="2xx")
    assert sum(s.value for s in samples) == 6 and len(samples) >= 2, "one publish per batch at least"
    assert rec.count("http.duration", route="/ok") == 6


async def test_a_request_the_client_abandons_is_counted_499_in_4xx(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """With handler cancellation on, a client gone mid-request is 499 (as nginx logs it): 4xx, timed, no exception."""
    rec = statsd_recorder
    app = figures_app()
    port = await serve(app, handler_cancellation=True)
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, b"GET /hang HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await eventually(lambda: app[SLOW]["entered"] == 1, "the handler to start")
    sock.close()
    await eventually(lambda: rec.total("http.request", route="/hang") == 1, "the cancelled request to be counted")
    assert rec.total("http.request", route="/hang", method="GET", status_class="4xx") == 1
    assert rec.count("http.duration", route="/hang", status_class="4xx") == 1
    assert rec.total("http.exception") == 0, "a client gone is not an exception of the app"


async def test_an_unmatched_request_is_counted_under_the_unmatched_route(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    rec = statsd_recorder
    port = await serve(figures_app())
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/nowhere/7") as response:
            assert response.status == 404
        async with session.delete(f"http://127.0.0.1:{port}/ok") as response:
            assert response.status == 405
    await eventually(lambda: rec.total("http.request") == 2, "the timer to publish")
    assert rec.total("http.request", route=UNMATCHED_ROUTE, method="GET", status_class="4xx") == 1
    assert rec.total("http.request", route=UNMATCHED_ROUTE, method="DELETE", status_class="4xx") == 1
    assert {s.tags["route"] for s in rec.find("http.request")} == {"unmatched"}


async def test_a_strict_mode_error_met_by_the_publish_timer_is_raised_at_app_cleanup(
    statsd_recorder: Recorder,
) -> None:
    """Strict mode: an undeclared method met by the timer's publish is not lost, it fails the app's cleanup."""
    rec = statsd_recorder
    runner = web.AppRunner(figures_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[0][1])
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/ok") as response:
                assert response.status == 200
            async with session.request("TRACE", f"http://127.0.0.1:{port}/ok") as response:
                assert response.status == 405
        # The timer publishes in insertion order: /ok first, then meets the undeclared method.
        await eventually(lambda: rec.total("http.request", route="/ok") == 1, "the timer to publish")
    finally:
        with pytest.raises(CatalogError, match="TRACE"):
            await runner.cleanup()
    assert rec.find("http.request", method="TRACE") == []


async def test_after_a_strict_mode_error_reaches_a_request_the_timer_publishes_again(
    serve: Callable[..., Any], statsd_recorder: Recorder
) -> None:
    """The next request raises what the timer met (strict mode: a 500), and publishing carries on after it."""
    rec = statsd_recorder
    port = await serve(figures_app())
    url = f"http://127.0.0.1:{port}/ok"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 200
        async with session.request("TRACE", url) as response:
            assert response.status == 405
        await eventually(lambda: rec.total("http.request", route="/ok") == 1, "the timer to meet the TRACE")
        async with session.get(url) as response:
            assert response.status == 500, "strict mode: the catalog error is raised in the app's flow"
        assert rec.total("http.request", route="/ok") == 2, "that request's own figures were published first"
        for _ in range(2):
            async with session.get(url) as response:
                assert response.status == 200
        await eventually(lambda: rec.total("http.request", route="/ok") == 4, "the timer to publish again")
    assert rec.find("http.request", method="TRACE") == []


def timed_app() -> web.Application:
    async def work(request: web.Request) -> web.Response:
        await asyncio.sleep(SLEEP_S)
        return web.Response(text="done")

    async def fail(request: web.Request) -> web.Response:
        await asyncio.sleep(SLEEP_S)
        raise web.HTTPServiceUnavailable()

    app = web.Application()
    app.router.add_get("/work", work)
    app.router.add_get("/fail", fail)
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


async def test_requests_of_one_status_class_in_one_publish_add_up(
    statsd_recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 and 201 on one route are one combination: both counted, both timed, in the one publish at cleanup."""
    monkeypatch.setattr(_shared, "PUBLISH_INTERVAL", 3600.0)  # no timer publish: cleanup publishes all at once
    rec = statsd_recorder
    runner = web.AppRunner(figures_app())
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:
            for code in (200, 201, 201):
                async with session.get(f"{base}/status/{code}") as response:
                    assert response.status == code
        assert rec.find("http.request") == []
    finally:
        await runner.cleanup()
    route = normalise_value("/status/{code}")
    assert [s.value for s in rec.find("http.request", route=route, status_class="2xx")] == [3]
    assert rec.count("http.duration", route=route, status_class="2xx") == 3


async def test_the_route_of_a_request_the_low_level_server_handles_is_unmatched() -> None:
    """``route_template`` of a ``BaseRequest`` (no router ran): the unmatched route, not an error."""
    seen: list[str] = []

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        seen.append(route_template(request))
        return web.Response(text="low level")

    server = web.Server(handler)
    runner = web.ServerRunner(server)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/anything/7"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert (response.status, await response.text()) == (200, "low level")
    finally:
        await runner.cleanup()
    assert seen == [UNMATCHED_ROUTE]


async def test_upgrades_on_two_routes_of_one_template_in_one_publish_add_up(
    statsd_recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/feed/{id:\\d+}`` and ``/feed/{id}`` are two routes with one template: their upgrades are one count of 2."""
    monkeypatch.setattr(_shared, "PUBLISH_INTERVAL", 3600.0)  # no timer publish: cleanup publishes all at once

    async def feed(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(request.match_info["id"])
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get(r"/feed/{id:\d+}", feed)
    app.router.add_get("/feed/{id}", feed)
    rec = statsd_recorder
    runner = web.AppRunner(instrument_app(app))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:
            for feed_id in ("42", "latest"):
                async with session.ws_connect(f"{base}/feed/{feed_id}") as ws:
                    assert await ws.receive_str() == feed_id
        assert rec.find("http.request") == []
    finally:
        await runner.cleanup()
    route = normalise_value("/feed/{id}")
    assert [s.value for s in rec.find("http.request", route=route, status_class="1xx")] == [2]
