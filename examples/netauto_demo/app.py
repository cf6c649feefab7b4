"""The demo's aiohttp app: a small HTTP API and the websocket live view of a run.

Instrumented exactly as a user would: ``instrument_app(app)`` once, and
``@live_view`` on the websocket handler. Database calls run in a thread so the
event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from netauto_demo import automation
from netauto_demo.devices import AUDIT_COMMAND, console_log
from netauto_demo.faults import InjectedError
from netauto_statsd import CatalogError, get_emitter
from netauto_statsd.integrations.aiohttp import instrument_app, live_view

T = TypeVar("T")
FINAL = {"ok", "error", "timeout", "cancelled"}
#: how often the live view looks for new chunks (the demo stores chunks in the database)
POLL_INTERVAL = 0.1
Enqueue = Callable[[int], None]
ENQUEUE_KEY = web.AppKey("enqueue", object)
#: seconds between two simulated database failovers (one pooled connection invalidated)
FAILOVER_EVERY = 5
#: seconds between two emissions of the "stale plugin" (a metric the catalog no longer declares)
STALE_PLUGIN_EVERY = 10
#: seconds between two bursts of the "console probe", and its readings per burst: more than one
#: flush carries one by one (32,768 per context), so the excess travels sampled (client.sampled)
CONSOLE_PROBE_EVERY = 15
CONSOLE_PROBE_READINGS = 40_000
CONSOLE_VIEW = "/devices/{device_id}/console"
CONSOLES_KEY = web.AppKey("consoles", set)
#: kernel send buffer of a console connection, and the most one console session streams
CONSOLE_SEND_BUFFER = 64 * 1024
CONSOLE_LIMIT = 64 * 1024 * 1024
log = logging.getLogger("netauto_demo")


async def blocking(func: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (database, RQ enqueue) in the default thread pool."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(func, *args))


async def healthz(request: web.Request) -> web.Response:
    """Liveness for compose healthchecks."""
    return web.json_response({"ok": True})


async def devices(request: web.Request) -> web.Response:
    """List the devices."""
    rows = await blocking(automation.list_devices)
    return web.json_response([{"id": d.id, "name": d.name, "site": d.site, "protocol": d.protocol} for d in rows])


async def add_device(request: web.Request) -> web.Response:
    """Register ``{"name", "site", "protocol"}``; 409 when the name exists (a database IntegrityError)."""
    from sqlalchemy.exc import IntegrityError

    try:
        body = await request.json()
        name, site, protocol = str(body["name"])[:64], str(body["site"])[:32], str(body["protocol"])[:16]
    except (ValueError, KeyError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"expected name, site, protocol: {exc}") from exc
    try:
        device = await blocking(automation.add_device, name, site, protocol)
    except IntegrityError as exc:
        raise web.HTTPConflict(text=f"device {name} exists") from exc
    return web.json_response({"id": device.id, "name": device.name}, status=201)


class DeviceUnreachableError(ConnectionError, InjectedError):
    """The simulated device did not answer the config fetch."""


async def device_config(request: web.Request) -> web.Response:
    """Fetch a device's running config: every 4th device (by id) is unreachable.

    The exception is deliberately not caught: it shows up as a 500 and in
    ``http.exception`` - what an unhandled bug looks like on the dashboards.
    """
    device_id = int(request.match_info["device_id"])
    if device_id % 4 == 0:
        raise DeviceUnreachableError(f"device {device_id} did not answer")
    return web.json_response({"device_id": device_id, "config": "hostname demo\n!"})


async def start_run(request: web.Request) -> web.Response:
    """Create a run for ``{"device_id": ..., "command": ...}`` and enqueue it."""
    try:
        body = await request.json()
        device_id, command = int(body["device_id"]), str(body.get("command", "show version"))[:200]
    except (ValueError, KeyError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"expected {{'device_id': int, 'command': str}}: {exc}") from exc
    try:
        run = await blocking(automation.create_run, device_id, command)
    except LookupError as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    enqueue: Enqueue = request.app[ENQUEUE_KEY]  # type: ignore[assignment]
    await blocking(enqueue, run.id)
    return web.json_response({"run_id": run.id, "status": run.status}, status=201)


async def start_audit(request: web.Request) -> web.Response:
    """Fleet audit: one quick run per device, all enqueued at once (the queue depth spikes).

    A fleet larger than ``run.device``'s cap (100 devices) folds the excess into
    ``other``: the "Client: samples sent altered" panel shows it.
    """
    runs = await blocking(automation.create_audit_runs, AUDIT_COMMAND)
    enqueue: Enqueue = request.app[ENQUEUE_KEY]  # type: ignore[assignment]
    for run_id in runs:
        await blocking(enqueue, run_id)
    return web.json_response({"runs": len(runs)}, status=201)


async def show_run(request: web.Request) -> web.Response:
    """One run's state."""
    run = await blocking(automation.get_run, int(request.match_info["run_id"]))
    if run is None:
        raise web.HTTPNotFound(text="no such run")
    return web.json_response({"run_id": run.id, "status": run.status, "output_bytes": run.output_bytes})


async def stats(request: web.Request) -> web.Response:
    """Runs per status (used by the load generator's progress display)."""
    return web.json_response(await blocking(automation.run_counts))


#: nginx's "client closed request": what a viewer that left during the handshake gets
CLIENT_GONE = 499


async def _prepared(ws: web.WebSocketResponse, request: web.Request) -> bool:
    """Complete the handshake; False when the viewer left before the 101 could be written.

    The handler then returns ``web.Response(status=CLIENT_GONE)``: aiohttp treats the
    connection error it meets writing that as the client having gone, quietly.
    """
    try:
        await ws.prepare(request)
    except ConnectionError:
        return False
    return True


@live_view
async def run_live(request: web.Request) -> web.StreamResponse:
    """Stream a run's output chunks to a browser as they are appended."""
    run_id = int(request.match_info["run_id"])
    ws = web.WebSocketResponse(heartbeat=30)
    if not await _prepared(ws, request):
        return web.Response(status=CLIENT_GONE)
    run = await blocking(automation.get_run, run_id)
    if run is None:
        await ws.close(code=4404, message=b"no such run")
        return ws
    await ws.send_json({"type": "mount", "run_id": run.id, "status": run.status})
    reader = asyncio.create_task(_drain(ws))
    try:
        await _stream(ws, run_id, reader)
    except ConnectionError:
        pass  # the viewer vanished between two sends: nobody is left to stream to
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    failure = None if reader.cancelled() else reader.exception()
    if failure is not None:
        raise failure  # the viewer broke the protocol: a live-view error, closed by aiohttp
    await ws.close()
    return ws


async def _stream(ws: web.WebSocketResponse, run_id: int, reader: asyncio.Task[None]) -> None:
    """Send the run's chunks as they are stored, then its end; stop as soon as the viewer is gone.

    ``reader`` ends when the viewer closes (or breaks the protocol): sending after
    that would write to a closing transport.
    """
    seq = -1
    while not ws.closed and not reader.done():
        chunks = await blocking(automation.chunks_after, run_id, seq)
        for chunk in chunks:
            if reader.done():
                return
            await ws.send_json({"type": "chunk", "seq": chunk.seq, "data": chunk.data.decode(errors="replace")})
            seq = chunk.seq
        if not chunks:
            current = await blocking(automation.get_run, run_id)
            if current is not None and current.status in FINAL:
                await ws.send_json({"type": "end", "status": current.status, "bytes": current.output_bytes})
                return
            await asyncio.sleep(POLL_INTERVAL)


@live_view
async def device_console(request: web.Request) -> web.StreamResponse:
    """A device's live console (``terminal monitor``) while it floods its log, as fast as the viewer reads.

    A console can outpace any viewer: the connection's kernel send buffer is capped
    (``CONSOLE_SEND_BUFFER``) so a slow viewer costs little memory, and the rest waits
    in the app - backpressure, seen in "send waits" and the transport backlog.
    """
    device_id = int(request.match_info["device_id"])
    ws = web.WebSocketResponse(heartbeat=30)
    if not await _prepared(ws, request):
        return web.Response(status=CLIENT_GONE)
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CONSOLE_SEND_BUFFER)
    consoles: set[asyncio.BaseTransport] = request.app[CONSOLES_KEY]
    if transport is not None:
        consoles.add(transport)
    reader = asyncio.create_task(_drain(ws))
    sent = 0
    try:
        for block in console_log(f"device-{device_id}"):
            if reader.done() or ws.closed or sent >= CONSOLE_LIMIT:
                break
            await ws.send_str(block)
            sent += len(block)
            await asyncio.sleep(0)  # let the other sessions run between two blocks
    except ConnectionError:
        pass  # the viewer left while a send waited for it
    finally:
        consoles.discard(transport)
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    await ws.close()
    return ws


class ViewerProtocolError(ValueError, InjectedError):
    """The browser sent a command the live view does not know."""


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read what the browser sends: ``hello`` / ``ping`` only; anything else is a protocol error."""
    async for message in ws:
        if message.type == WSMsgType.TEXT and message.data not in ("hello", "ping"):
            raise ViewerProtocolError(f"unknown command {message.data[:40]!r}")


def _stale_plugin() -> None:
    """A plugin written against an old catalog: a renamed metric, and a protocol spelled ``"SSH"``.

    Production mode: the metric is refused (``client.rejected``), the tag value is sent
    as ``other`` (``client.unexpected_value``). Strict mode raises; the plugin's caller
    catches it, as an app would log a plugin's error and go on.
    """
    emitter = get_emitter()
    try:
        emitter.increment("runner.restart")  # renamed long ago: not in the catalog
        log.warning("injected fault: a stale plugin emitted 'runner.restart', refused by the catalog")
    except CatalogError as exc:  # strict mode
        log.warning("injected fault: a stale plugin's emission raised in strict mode: %s", exc)
    try:
        emitter.increment("run.created", tags={"site": "par1", "protocol": "SSH"})  # not an allowed value
        log.warning("injected fault: a stale plugin counted a run with protocol 'SSH', sent as 'other'")
    except CatalogError as exc:  # strict mode
        log.warning("injected fault: a stale plugin's emission raised in strict mode: %s", exc)


def _console_probe(consoles: set[asyncio.BaseTransport]) -> None:
    """A probe reads the open consoles' transport backlog in a tight loop, one observation per reading.

    ``CONSOLE_PROBE_READINGS`` observations of one context in one flush window is more
    than the client carries one by one: the excess travels with exact 1/n sample rates,
    counted in ``client.sampled`` (the histogram's count stays exact).
    """
    open_ = [t for t in consoles if not t.is_closing()]
    readings = [
        float(sum(t.get_write_buffer_size() for t in open_))  # type: ignore[attr-defined]
        for _ in range(CONSOLE_PROBE_READINGS)
    ]
    get_emitter().histogram_many("liveview.backlog", readings, tags={"view": CONSOLE_VIEW})
    log.warning(
        "injected fault: a console probe observed the backlog %d times in one flush window, sent sampled",
        len(readings),
    )


async def _injected_background_faults(app: web.Application) -> AsyncIterator[None]:
    """While the app runs: a database failover every few seconds, a stale plugin, a console probe.

    The failover invalidates one pooled connection (the "Connections invalidated
    per second" panel); the plugin emits a metric the catalog no longer declares,
    refused and counted in ``client.rejected``, and a tag value outside its allowed
    set, sent as ``other`` and counted in ``client.unexpected_value`` (both raise
    instead in strict mode); the probe's burst is sampled (``client.sampled``).
    """

    async def loop() -> None:
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            if ticks % FAILOVER_EVERY == 1:
                await blocking(automation.invalidate_one_connection)
                log.warning("injected fault: database failover, one pooled connection invalidated")
            if ticks % STALE_PLUGIN_EVERY == 2:
                _stale_plugin()
            if ticks % CONSOLE_PROBE_EVERY == 3:
                _console_probe(app[CONSOLES_KEY])

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def build_app(enqueue: Enqueue, inject_faults: bool = True) -> web.Application:
    """The instrumented demo application; ``enqueue(run_id)`` schedules a run."""
    app = web.Application()
    if inject_faults:
        app.cleanup_ctx.append(_injected_background_faults)
    app[ENQUEUE_KEY] = enqueue
    app[CONSOLES_KEY] = set()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/devices", devices)
    app.router.add_post("/api/devices", add_device)
    app.router.add_get("/api/devices/{device_id}/config", device_config)
    app.router.add_post("/api/runs", start_run)
    app.router.add_get("/api/runs/{run_id}", show_run)
    app.router.add_post("/api/audits", start_audit)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/runs/{run_id}/live", run_live)
    app.router.add_get("/devices/{device_id}/console", device_console)
    return instrument_app(app)
