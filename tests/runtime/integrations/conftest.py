"""Fixtures for the integration tests: a real redis-server on a free loopback port, aiohttp apps served on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Process, free_port, require_binary, wait_until

REDIS_HOW = "apt-get install redis-server (Debian package)"


class RedisServer:
    """A throwaway redis-server: loopback only, no persistence, stopped after the session."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--protected-mode",
            "yes",
        ]
        self.process = Process(args, workdir / "redis.log")
        try:
            wait_until(self._ready, 20, "redis-server PING")
        except AssertionError:
            self.process.stop()
            raise AssertionError(f"redis-server did not start:\n{self.process.log()}") from None

    def _ready(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"redis-server exited:\n{self.process.log()}")
        return bool(self.client().ping())

    def client(self):  # type: ignore[no-untyped-def]
        """A new redis-py client (imported here: redis is an optional test dependency)."""
        from redis import Redis

        return Redis.from_url(self.url)

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (skip on a laptop without it, fail under CI=true)."""
    binary = require_binary("redis-server", REDIS_HOW)
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_conn(redis_server: RedisServer):  # type: ignore[no-untyped-def]
    """A client on an empty database; emptied again after the test."""
    conn = redis_server.client()
    conn.flushall()
    try:
        yield conn
    finally:
        conn.flushall()
        conn.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """Start aiohttp apps on free loopback ports with a plain ``AppRunner`` (the test server forces
    ``handler_cancellation``); each is cleaned up at the end (app cleanup publishes what is pending)."""
    from aiohttp import web

    runners: list[web.AppRunner] = []

    async def start(app: web.Application, **kwargs: Any) -> int:
        runner = web.AppRunner(app, **kwargs)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def only_the_publisher_thread_publishes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the background publisher's flush hook out for one test: only its own thread publishes.

    Flush hooks are process-wide, so the flush thread of any emitter an earlier test left
    running (some flush every 10-50 ms) would otherwise publish first, and a test about the
    publisher thread, or about how many publishes met an error, would depend on timing.
    """
    from netauto_statsd.emitter import core
    from netauto_statsd.integrations import _publisher
    from netauto_statsd.integrations._publisher import publish_pending

    _publisher._register_hooks()  # once per process: into the real list, which comes back after the test
    monkeypatch.setattr(core, "_flush_hooks", [hook for hook in core._flush_hooks if hook is not publish_pending])
