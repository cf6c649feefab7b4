"""aiohttp install and uninstall: what instrument_app adds to an app, and that uninstall takes all of it back."""

from __future__ import annotations

import re

import pytest

from tests.support import require_module

aiohttp = require_module("aiohttp", "pip install -e '.[test]'")
from aiohttp import web  # noqa: E402

from netauto_statsd.annotations import LifecycleAnnotations  # noqa: E402
from netauto_statsd.integrations.aiohttp import AiohttpInstrumentor, instrument_app, uninstrument_app  # noqa: E402
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


async def _ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")
