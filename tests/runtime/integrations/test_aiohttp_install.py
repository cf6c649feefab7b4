"""aiohttp install and uninstall: what instrument_app adds to an app, and that uninstall takes all of it back."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import require_module

aiohttp = require_module("aiohttp", "pip install -e '.[test]'")
from aiohttp import web  # noqa: E402

from netauto_statsd.annotations import LifecycleAnnotations  # noqa: E402
from netauto_statsd.integrations.aiohttp import AiohttpInstrumentor, instrument_app, uninstrument_app  # noqa: E402
from netauto_statsd.integrations.aiohttp.http import TALLY_ATTRIBUTE  # noqa: E402
from netauto_statsd.testing import Recorder  # noqa: E402


def hooks(app: web.Application) -> tuple[list[object], list[object], list[object]]:
    return list(app.middlewares), list(app.on_startup), list(app.on_cleanup)


def test_uninstall_with_annotations_removes_their_startup_and_cleanup_hooks() -> None:
    app = web.Application()
    bare = hooks(app)
    annotate = LifecycleAnnotations(None)  # disabled: posts nothing
    instrument_app(app, annotations=annotate)
    middlewares, on_startup, on_cleanup = hooks(app)
    assert (len(middlewares), len(on_startup), len(on_cleanup)) == (1, len(bare[1]) + 2, len(bare[2]) + 2)
    assert annotate.on_startup in on_startup and annotate.on_cleanup in on_cleanup
    uninstrument_app(app)
    assert hooks(app) == bare
    assert not AiohttpInstrumentor().is_installed(app)


def test_the_instrumentor_used_directly_installs_no_annotations_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``AiohttpInstrumentor().install(app)`` without options: the middleware and its two hooks, nothing more."""
    monkeypatch.setenv("GRAFANA_URL", "http://127.0.0.1:9")  # annotations configured, were they asked for
    monkeypatch.setenv("GRAFANA_TOKEN", "unused")
    app = web.Application()
    bare = hooks(app)
    AiohttpInstrumentor().install(app)
    middlewares, on_startup, on_cleanup = hooks(app)
    assert (len(middlewares), len(on_startup), len(on_cleanup)) == (1, len(bare[1]) + 1, len(bare[2]) + 1)


REFUSED = re.escape(
    "uninstrument_app: the app has started or is frozen; aiohttp's middlewares and signals cannot change"
).join("^$")


async def test_uninstall_after_startup_is_refused_and_the_app_stays_measured(statsd_recorder: Recorder) -> None:
    """aiohttp froze the app's hooks at startup: a half-done uninstall would leave requests counted
    by an app that says it is not instrumented."""
    app = instrument_app(web.Application())
    app.router.add_get("/ping", _ping)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        before = hooks(app)
        with pytest.raises(RuntimeError, match=REFUSED):
            uninstrument_app(app)
        assert AiohttpInstrumentor().is_installed(app)
        assert hooks(app) == before
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/ping"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
    finally:
        await runner.cleanup()  # publishes what the middleware counted
    assert statsd_recorder.total("http.request", route="/ping", status_class="2xx") == 1


def test_uninstall_of_an_app_frozen_by_hand_is_refused_and_changes_nothing() -> None:
    app = instrument_app(web.Application())
    app.freeze()
    before = hooks(app)
    with pytest.raises(RuntimeError, match=REFUSED):
        uninstrument_app(app)
    assert hooks(app) == before
    assert AiohttpInstrumentor().is_installed(app)


async def test_the_middleware_goes_outside_the_apps_own_even_when_it_stays_in_the_chain(
    statsd_recorder: Recorder,
) -> None:
    """An app frozen before startup keeps the middleware in the chain: it is still the outermost one,
    so an answer the app's own middleware makes from an exception is what it counts."""

    @web.middleware
    async def unavailable_on_value_error(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except ValueError:
            return web.Response(status=503)

    async def broken(request: web.Request) -> web.Response:
        raise ValueError("device did not answer")

    app = web.Application(middlewares=[unavailable_on_value_error])
    app.router.add_get("/broken", broken)
    instrument_app(app)
    app.freeze()
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        assert [hasattr(m, TALLY_ATTRIBUTE) for m in app.middlewares] == [True, False]
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/broken"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 503
    finally:
        await runner.cleanup()
    assert statsd_recorder.total("http.request", route="/broken", status_class="5xx") == 1
    assert statsd_recorder.total("http.exception") == 0, "the app's middleware answered: no exception left it"


async def _ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")
