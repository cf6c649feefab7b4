"""The demo's aiohttp app: a small HTTP API and the websocket live view of a run.

Instrumented exactly as a user would: ``instrument_app(app)`` once, and
``@live_view`` on the websocket handler. Database calls run in a thread so the
event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from netauto_demo import automation
from netauto_statsd.integrations.aiohttp import instrument_app, live_view

T = TypeVar("T")
FINAL = {"ok", "error", "timeout", "cancelled"}
#: how often the live view looks for new chunks (the demo stores chunks in the database)
POLL_INTERVAL = 0.1
Enqueue = Callable[[int], None]
ENQUEUE_KEY = web.AppKey("enqueue", object)


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


class DeviceUnreachableError(ConnectionError):
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


async def show_run(request: web.Request) -> web.Response:
    """One run's state."""
    run = await blocking(automation.get_run, int(request.match_info["run_id"]))
    if run is None:
        raise web.HTTPNotFound(text="no such run")
    return web.json_response({"run_id": run.id, "status": run.status, "output_bytes": run.output_bytes})


async def stats(request: web.Request) -> web.Response:
    """Runs per status (used by the load generator's progress display)."""
    return web.json_response(await blocking(automation.run_counts))


@live_view
async def run_live(request: web.Request) -> web.WebSocketResponse:
    """Stream a run's output chunks to a browser as they are appended."""
    run_id = int(request.match_info["run_id"])
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    run = await blocking(automation.get_run, run_id)
    if run is None:
        await ws.close(code=4404, message=b"no such run")
        return ws
    await ws.send_json({"type": "mount", "run_id": run.id, "status": run.status})
    reader = asyncio.create_task(_drain(ws))
    try:
        seq = -1
        while not ws.closed:
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]
            chunks = await blocking(automation.chunks_after, run_id, seq)
            for chunk in chunks:
                await ws.send_json({"type": "chunk", "seq": chunk.seq, "data": chunk.data.decode(errors="replace")})
                seq = chunk.seq
            if not chunks:
                current = await blocking(automation.get_run, run_id)
                if current is not None and current.status in FINAL:
                    await ws.send_json({"type": "end", "status": current.status, "bytes": current.output_bytes})
                    break
                await asyncio.sleep(POLL_INTERVAL)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    await ws.close()
    return ws


class ViewerProtocolError(ValueError):
    """The browser sent a command the live view does not know."""


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read what the browser sends: ``hello`` / ``ping`` only; anything else is a protocol error."""
    async for message in ws:
        if message.type == WSMsgType.TEXT and message.data not in ("hello", "ping"):
            raise ViewerProtocolError(f"unknown command {message.data[:40]!r}")


def build_app(enqueue: Enqueue) -> web.Application:
    """The instrumented demo application; ``enqueue(run_id)`` schedules a run."""
    app = web.Application()
    app[ENQUEUE_KEY] = enqueue
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/devices", devices)
    app.router.add_post("/api/devices", add_device)
    app.router.add_get("/api/devices/{device_id}/config", device_config)
    app.router.add_post("/api/runs", start_run)
    app.router.add_get("/api/runs/{run_id}", show_run)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/runs/{run_id}/live", run_live)
    return instrument_app(app)
