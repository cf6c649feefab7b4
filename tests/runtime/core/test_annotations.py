"""Lifecycle annotations against a local server speaking Grafana's documented annotations API.

Asserts the start/stop request bodies as ``POST /api/annotations`` documents
them (tests/tooling/grafana/test_deploy_annotations.py: the dashboards show
them), and that an unreachable or refusing Grafana never stops the app and is reported once.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netauto_statsd import __version__
from netauto_statsd.annotations import LIFECYCLE_TAGS, GrafanaAccess, LifecycleAnnotations
from tests.grafana_server import FakeGrafana
from tests.support import free_port, require_binary, require_module

TOKEN = "glsa_annotations-secret-token"


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana(token=TOKEN)
    try:
        yield server
        assert not server.violations, server.violations
    finally:
        server.close()


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"GRAFANA_URL": url, "GRAFANA_TOKEN": TOKEN, **extra}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "netauto_statsd" and r.levelno >= logging.WARNING]


def test_start_and_stop_bodies(grafana: FakeGrafana) -> None:
    env = _env(grafana.url, DD_VERSION="2.4.1", GIT_SHA="0123abc", NETAUTO_STATSD_SERVICE="netauto-api")
    annotations = LifecycleAnnotations.from_env(env)
    before = time.time()
    assert annotations.start() is True
    assert annotations.stop() is True
    after = time.time()
    start, stop = grafana.requests
    host = socket.gethostname()
    for request, event, verb in ((start, "start", "started"), (stop, "stop", "stopped")):
        assert (request.method, request.path) == ("POST", "/api/annotations")
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Content-Type"] == "application/json"
        assert set(request.body) == {"time", "tags", "text"}
        assert request.body["tags"] == ["netauto", "deploy", "netauto-api", event]
        assert request.body["text"] == f"netauto-api {verb} on {host} (version 2.4.1, git 0123abc)"
        assert int(before * 1000) <= request.body["time"] <= int(after * 1000) + 1
    assert [a["tags"][-1] for a in grafana.state.annotations] == ["start", "stop"]


def test_defaults_package_version_and_basic_auth(grafana: FakeGrafana) -> None:
    server = FakeGrafana(user="ops", password="pw-secret")
    try:
        annotations = LifecycleAnnotations.from_env(
            {"GRAFANA_URL": server.url + "/", "GRAFANA_USER": "ops", "GRAFANA_PASSWORD": "pw-secret"}
        )
        assert annotations.start()
        body = server.requests[0].body
        assert body["tags"] == [*LIFECYCLE_TAGS, "netauto", "start"]
        assert body["text"].endswith(f"(version {__version__})"), "no GIT_SHA: no git part"
        assert server.requests[0].headers["Authorization"].startswith("Basic ")
    finally:
        server.close()


def test_unreachable_grafana_warns_once_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="netauto_statsd")
    url = f"http://127.0.0.1:{free_port()}"
    annotations = LifecycleAnnotations.from_env(_env(url))
    assert annotations.start() is False
    assert annotations.stop() is False
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "unreachable" in warnings[0] and url in warnings[0]
    assert "the app goes on" in warnings[0]
    assert TOKEN not in caplog.text


def test_refused_credential_warns_once_naming_it(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeGrafana(token="another")
    try:
        annotations = LifecycleAnnotations.from_env(_env(server.url))
        assert not annotations.start() and not annotations.stop()
        warnings = _warnings(caplog)
        assert len(warnings) == 1 and "HTTP 401 with GRAFANA_TOKEN" in warnings[0]
        assert TOKEN not in caplog.text
    finally:
        server.close()


def test_not_configured_is_off_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    annotations = LifecycleAnnotations.from_env({})
    assert annotations.access is None
    assert annotations.start() is False and annotations.stop() is False
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "GRAFANA_URL is not set" in warnings[0]


def test_access_never_shows_the_secret() -> None:
    access = GrafanaAccess.from_env(_env("http://grafana:3000"))
    assert TOKEN not in repr(access) and TOKEN not in access.credential
    assert access.redact(f"echo {TOKEN}") == "echo ***"


# ------------------------------------------------------------------ aiohttp option
async def test_aiohttp_app_posts_start_and_stop(grafana: FakeGrafana, aiohttp_client: Any) -> None:
    require_module("aiohttp", "pip install 'netauto-statsd[aiohttp]'")
    from aiohttp import web

    from netauto_statsd.integrations.aiohttp import instrument_app, uninstrument_app

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    annotations = LifecycleAnnotations.from_env(_env(grafana.url))
    instrument_app(app, annotations=annotations)
    assert annotations.on_startup in app.on_startup and annotations.on_cleanup in app.on_cleanup
    client = await aiohttp_client(app)
    assert [a["tags"][-1] for a in grafana.state.annotations] == ["start"]
    assert (await (await client.get("/")).text()) == "hi"
    await client.close()
    assert [a["tags"][-1] for a in grafana.state.annotations] == ["start", "stop"]

    other = web.Application()
    instrument_app(other, annotations=annotations)
    uninstrument_app(other)
    assert annotations.on_startup not in other.on_startup and annotations.on_cleanup not in other.on_cleanup


async def test_aiohttp_app_starts_when_grafana_is_unreachable(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_module("aiohttp", "pip install 'netauto-statsd[aiohttp]'")
    from aiohttp import web

    from netauto_statsd.integrations.aiohttp import instrument_app

    for key, value in _env(f"http://127.0.0.1:{free_port()}").items():
        monkeypatch.setenv(key, value)

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="still serving")

    app = web.Application()
    app.router.add_get("/", hello)
    instrument_app(app, annotations=True)
    client = await aiohttp_client(app)
    assert (await (await client.get("/")).text()) == "still serving"
    await client.close()
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "start annotation not posted" in warnings[0]


# ------------------------------------------------------------------ RQ worker option
def test_rq_worker_posts_start_and_stop(grafana: FakeGrafana, tmp_path: Path) -> None:
    require_module("rq", "pip install 'netauto-statsd[rq]'")
    import signal

    from rq import Queue

    from netauto_statsd.integrations.rq import InstrumentedSimpleWorker
    from tests.runtime.integrations.conftest import REDIS_HOW, RedisServer

    redis = RedisServer(require_binary("redis-server", REDIS_HOW), tmp_path)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        connection = redis.client()
        queue = Queue("annotated", connection=connection)
        queue.enqueue(print, "job ran")
        annotations = LifecycleAnnotations.from_env(_env(grafana.url, NETAUTO_STATSD_SERVICE="netauto-worker"))
        worker = InstrumentedSimpleWorker([queue], connection=connection, annotations=annotations)
        assert worker.work(burst=True) is True
        tags = [a["tags"] for a in grafana.state.annotations]
        assert tags == [[*LIFECYCLE_TAGS, "netauto-worker", "start"], [*LIFECYCLE_TAGS, "netauto-worker", "stop"]]
        assert queue.count == 0
        connection.close()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        redis.stop()
