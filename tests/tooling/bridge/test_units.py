"""Issue 18.2: units pinned end to end - a known input lands in the exporter's histogram in the right bucket.

For each duration and size metric, something of known size happens for real (a
handler that sleeps 50 ms behind the real aiohttp middleware, a live view that
waits before its handshake and before its first message, a query that takes a
known time, a run of known output) and the real statsd_exporter must put it in
the bucket that the value *in seconds / bytes* belongs to. A duration recorded in
milliseconds lands 1000x higher (in ``+Inf``), one divided by 1000 too low: both fail.

Covered elsewhere with the same strength: ``runner.duration`` (a real 250 ms run,
tests/tooling/bridge/test_exporter_catalog.py), ``rq.job.wait`` / ``rq.job.duration``
(their sums equal RQ's own timestamps in seconds, tests/runtime/integrations/test_rq.py),
``db.pool.checkout_wait`` (bracketed by the waits the threads measured themselves,
tests/runtime/integrations/test_sqlalchemy.py). ``liveview.send_latency`` and
``liveview.backlog`` have no input of known size (they depend on the kernel's socket
buffers); the flood test there proves they move.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from netauto_statsd import chunk_appended, current_run, run_finished, runner_lifecycle
from netauto_statsd.tags import normalise_value
from tests.support import Exporter, require_module

pytestmark = pytest.mark.exporter

#: the work being measured: long enough to clear the bucket below it, short enough for a test
SLEEP_S = 0.05
#: generous upper bound for a 50 ms sleep on a loaded machine; a value in ms (50) would be far above
UPPER_S = 1.0


def buckets(exporter: Exporter, series: str, **labels: str) -> dict[float, float]:
    """``le`` -> cumulative count of ``series`` (a histogram base name) for ``labels``."""
    out: dict[float, float] = {}
    for _name, lab, value in exporter.samples(f"{series}_bucket"):
        if labels.items() <= lab.items():
            bound = float(lab["le"])
            out[bound] = out.get(bound, 0.0) + value
    assert out, f"no {series}_bucket series for {labels}"
    return out


def assert_between(exporter: Exporter, series: str, low: float, high: float, count: int, **labels: str) -> None:
    """``count`` observations of ``series``, every one in (``low``, ``high``] by the exporter's own buckets."""
    exporter.wait_value(f"{series}_count", count, **labels)
    counts = buckets(exporter, series, **labels)
    below = max((b for b in counts if b < low), default=None)
    above = min(b for b in counts if b >= high)
    if below is not None:
        assert counts[below] == 0, f"{series}: {counts[below]:g} observation(s) <= {below} (< {low}): {counts}"
    assert counts[above] == count, f"{series}: only {counts[above]:g} of {count} <= {above} (>= {high}): {counts}"
    total = exporter.value(f"{series}_sum", **labels)
    assert count * low <= total <= count * high, f"{series}_sum = {total}, expected within {count} x [{low}, {high}]"


def assert_exact(exporter: Exporter, series: str, value: float, **labels: str) -> None:
    """One observation of exactly ``value``: its sum, and the first bucket that holds it."""
    exporter.wait_value(f"{series}_count", 1, **labels)
    assert math.isclose(exporter.value(f"{series}_sum", **labels), value)
    counts = buckets(exporter, series, **labels)
    for bound, count in counts.items():
        assert count == (1 if value <= bound else 0), f"{series} le={bound}: {count} ({value} observed)"


# ------------------------------------------------------------------ HTTP and live views
async def test_http_duration_of_a_50ms_handler_is_in_seconds(
    aiohttp_client: Any, exporter: Exporter, emitter_for: Any
) -> None:
    require_module("aiohttp", "pip install -e '.[test]'")
    from aiohttp import web

    from netauto_statsd.integrations.aiohttp import instrument_app

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(SLEEP_S)  # the handler's work, measured by the middleware
        return web.Response(text="done")

    emitter = emitter_for(exporter)
    app = web.Application()
    app.router.add_get("/api/slow", slow)
    client = await aiohttp_client(instrument_app(app))
    for _ in range(3):
        assert (await client.get("/api/slow")).status == 200
    await client.close()  # app cleanup publishes the tallied requests
    emitter.flush()
    labels = {"route": "/api/slow", "method": "GET", "status_class": "2xx"}
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: assert_between(exporter, "netauto_http_request_duration_seconds", SLEEP_S, UPPER_S, 3, **labels)
    )


async def test_liveview_handshake_and_mount_are_in_seconds(
    aiohttp_client: Any, exporter: Exporter, emitter_for: Any
) -> None:
    require_module("aiohttp", "pip install -e '.[test]'")
    from aiohttp import web

    from netauto_statsd.integrations.aiohttp import instrument_app, live_view

    @live_view
    async def view(request: web.Request) -> web.WebSocketResponse:
        await asyncio.sleep(SLEEP_S)  # before the 101: part of the handshake
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await asyncio.sleep(2 * SLEEP_S)  # before the first message: the mount
        await ws.send_json({"type": "mount"})
        async for _ in ws:
            pass
        return ws

    emitter = emitter_for(exporter)
    app = web.Application()
    app.router.add_get("/runs/{run_id}/live", view)
    client = await aiohttp_client(instrument_app(app))
    async with client.ws_connect("/runs/7/live") as ws:
        assert (await ws.receive_json())["type"] == "mount"
    await client.close()
    emitter.flush()
    live = {"view": normalise_value("/runs/{run_id}/live")}

    def check() -> None:
        assert_between(exporter, "netauto_liveview_handshake_seconds", SLEEP_S, UPPER_S, 1, **live)
        assert_between(exporter, "netauto_liveview_mount_seconds", 2 * SLEEP_S, UPPER_S, 1, **live)

    await asyncio.get_running_loop().run_in_executor(None, check)


# ------------------------------------------------------------------ sizes
def test_run_sizes_are_in_bytes(exporter: Exporter, emitter_for: Any) -> None:
    emitter = emitter_for(exporter)
    run = {"site": "par1", "protocol": "ssh"}

    @runner_lifecycle(run)
    def execute() -> None:
        current_run().add_bytes(3000)
        current_run().add_bytes(2000)

    execute()
    run_finished("par1", "ssh", total_bytes=70_000)
    chunk_appended("par1", "ssh", size=1500)
    chunk_appended("par1", "ssh", size=500)
    emitter.flush()
    assert_exact(exporter, "netauto_runner_processed_bytes", 5000, status="ok", **run)
    assert_exact(exporter, "netauto_run_output_bytes", 70_000, **run)
    exporter.wait_value("netauto_chunk_bytes_total", 2000, **run)
    exporter.wait_value("netauto_chunks_appended_total", 2, **run)


# ------------------------------------------------------------------ database
def test_db_query_duration_of_a_known_query_is_in_seconds(exporter: Exporter, emitter_for: Any, tmp_path: Path) -> None:
    sqlalchemy = require_module("sqlalchemy", "pip install -e '.[test]'")
    from sqlalchemy import event, text

    from netauto_statsd.integrations.sqlalchemy import instrument_engine, uninstrument_engine

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'units.db'}")

    @event.listens_for(engine, "connect")
    def add_pause(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # a SQL function that takes a known time: the query being measured
        dbapi_connection.create_function("pause", 1, lambda seconds: time.sleep(seconds) or 1)

    emitter_for(exporter)
    instrument_engine(engine, "units")
    try:
        with engine.connect() as conn:
            for _ in range(2):
                assert conn.execute(text("SELECT pause(:s)"), {"s": SLEEP_S}).scalar() == 1
    finally:
        uninstrument_engine(engine)
        engine.dispose()
    from netauto_statsd.emitter import get_emitter

    get_emitter().flush()
    assert_between(exporter, "netauto_db_query_duration_seconds", SLEEP_S, UPPER_S, 2, pool="units", operation="select")
