"""aiohttp install and uninstall: what instrument_app adds to an app, and that uninstall takes all of it back."""

from __future__ import annotations

from tests.support import require_module

aiohttp = require_module("aiohttp", "pip install -e '.[test]'")
from aiohttp import web  # noqa: E402

from netauto_statsd.annotations import LifecycleAnnotations  # noqa: E402
from netauto_statsd.integrations.aiohttp import AiohttpInstrumentor, instrument_app, uninstrument_app  # noqa: E402


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
