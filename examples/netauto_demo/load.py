"""The load generator: runs started at a steady rate, viewers opening and closing live views.

A mix of outcomes on purpose: some viewers leave early ("going away"), some
requests name a run that does not exist (404) or send a bad body (400), and the
simulated devices fail and time out at their profile's rates. With every
``CONSOLE_EVERY``-th run a slow viewer opens a flooding device console (real
backpressure), and a fleet audit (one run per device) floods the queue every
``AUDIT_EVERY`` steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from netauto_demo.devices import COMMANDS
from netauto_demo.slow_viewer import watch_slowly

#: steps (mod 10) of the fault tour: bad body, stale link, device config, duplicate device
FAULT_STEPS = {2, 4, 6, 8}
#: with every CONSOLE_EVERY-th run (from the 2nd) a slow viewer opens a device console
CONSOLE_EVERY = 12
#: a fleet audit at step 5, then every AUDIT_EVERY steps
AUDIT_EVERY = 240


class TargetUnreachableError(ConnectionError):
    """The app the load generator should drive does not answer."""


@dataclass
class LoadStats:
    """What the load generator did."""

    runs_started: int = 0
    http_errors: int = 0
    bad_requests: int = 0
    viewers_open: int = 0
    viewers_total: int = 0
    viewers_left_early: int = 0
    messages: int = 0
    faults: int = 0
    audits: int = 0
    slow_viewers: int = 0
    run_states: dict[str, int] = field(default_factory=dict)


async def _viewer(http: aiohttp.ClientSession, base: str, run_id: int, stats: LoadStats, rng: random.Random) -> None:
    stats.viewers_open += 1
    stats.viewers_total += 1
    leave_after = rng.randint(1, 4) if rng.random() < 0.2 else None
    # every 7th viewer runs a buggy browser build that sends an unknown command
    greeting = "subscribe-everything" if stats.viewers_total % 7 == 3 else "hello"
    try:
        async with http.ws_connect(f"{base}/runs/{run_id}/live", timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
            await ws.send_str(greeting)
            seen = 0
            async for msg in ws:
                stats.messages += 1
                seen += 1
                if seen == leave_after:
                    stats.viewers_left_early += 1
                    await ws.close(code=1001, message=b"viewer left")
                    break
                if msg.type == aiohttp.WSMsgType.TEXT and '"end"' in msg.data:
                    break
    except (aiohttp.ClientError, asyncio.TimeoutError):
        stats.http_errors += 1
    finally:
        stats.viewers_open -= 1


async def _slow_viewer(base: str, device_id: int, stats: LoadStats) -> None:
    url = URL(base)
    stats.viewers_open += 1
    stats.slow_viewers += 1
    try:
        await watch_slowly(url.host or "127.0.0.1", url.port or 80, f"/devices/{device_id}/console")
        stats.messages += 1
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        stats.http_errors += 1
    finally:
        stats.viewers_open -= 1


async def _audit(http: aiohttp.ClientSession, base: str, stats: LoadStats) -> None:
    async with http.post(f"{base}/api/audits") as resp:
        if resp.status == 201:
            stats.audits += 1
        else:
            stats.http_errors += 1


async def _start_run(http: aiohttp.ClientSession, base: str, devices: list[dict[str, Any]], rng: random.Random,
                     stats: LoadStats) -> int | None:  # fmt: skip
    # A fixed tour of client mistakes and device faults, so every outcome shows up
    # within the first ten steps whatever the rate; the rest are runs.
    step = stats.runs_started + stats.bad_requests + stats.faults
    stats.faults += step % 10 in FAULT_STEPS
    roll = {2: 0.01, 4: 0.04, 6: 0.10, 8: 0.13}.get(step % 10, 1.0)
    try:
        if roll < 0.03:  # a client bug: bad body -> 400
            async with http.post(f"{base}/api/runs", data=b"not json") as resp:
                stats.bad_requests += resp.status >= 400
            return None
        if roll < 0.06:  # a stale link -> 404
            async with http.get(f"{base}/api/runs/999999999") as resp:
                stats.bad_requests += resp.status >= 400
            return None
        if roll < 0.12:  # fetch a device config: every 4th device is unreachable -> 500
            device_id = devices[(step // 10) % len(devices)]["id"] if step % 20 == 6 else 4
            async with http.get(f"{base}/api/devices/{device_id}/config") as resp:
                stats.http_errors += resp.status >= 500
            return None
        if roll < 0.14:  # register a device that exists -> 409 (a database IntegrityError)
            device = rng.choice(devices)
            body = {"name": device["name"], "site": device["site"], "protocol": device["protocol"]}
            async with http.post(f"{base}/api/devices", json=body) as resp:
                stats.bad_requests += resp.status >= 400
            return None
        device = rng.choice(devices)
        body = {"device_id": device["id"], "command": rng.choice(COMMANDS)}
        async with http.post(f"{base}/api/runs", json=body) as resp:
            if resp.status != 201:
                stats.http_errors += 1
                return None
            stats.runs_started += 1
            return int((await resp.json())["run_id"])
    except aiohttp.ClientError:
        stats.http_errors += 1
        return None


def _progress(stats: LoadStats, elapsed: float, sent: dict[str, int] | None) -> str:
    states = " ".join(f"{k} {v}" for k, v in sorted(stats.run_states.items())) or "-"
    metrics = f" | metrics accepted {sent['accepted']} failed packets {sent['packets_failed']}" if sent else ""
    return (
        f"[{elapsed:5.1f}s] runs started {stats.runs_started} ({states}) | viewers {stats.viewers_open} open, "
        f"{stats.viewers_total} total | http errors {stats.http_errors}{metrics}"
    )


async def generate(base: str, duration: float, rate: float, max_viewers: int, quiet: bool = False,
                   metrics_stats: Any = None, seed: int = 7, stats: LoadStats | None = None) -> LoadStats:  # fmt: skip
    """Drive ``base`` (``http://host:port``) for ``duration`` seconds (0: until cancelled) at ``rate`` runs/s."""
    duration = duration if duration > 0 else float("inf")
    stats = stats if stats is not None else LoadStats()  # the caller's, to report even when cancelled
    rng = random.Random(seed)
    viewers: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        try:
            async with http.get(f"{base}/api/devices") as resp:
                resp.raise_for_status()
                devices = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise TargetUnreachableError(f"the app at {base} does not answer: {exc}") from None
        start = time.monotonic()
        next_run, next_report = start, start
        steps = 0
        while (now := time.monotonic()) - start < duration:
            if now >= next_run:
                next_run += 1.0 / rate
                steps += 1
                if steps % AUDIT_EVERY == 5:
                    with contextlib.suppress(aiohttp.ClientError):
                        await _audit(http, base, stats)
                console = stats.runs_started % CONSOLE_EVERY == 1 and max_viewers > 0
                run_id = await _start_run(http, base, devices, rng, stats)
                watchers = []
                if run_id is not None and len(viewers) < max_viewers:
                    watchers.append(_viewer(http, base, run_id, stats, rng))
                if run_id is not None and console:
                    watchers.append(_slow_viewer(base, rng.choice(devices)["id"], stats))
                for watcher in watchers:
                    task = asyncio.create_task(watcher)
                    viewers.add(task)
                    task.add_done_callback(viewers.discard)
            if now >= next_report:
                next_report += 1.0
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/api/stats") as resp:
                        stats.run_states = await resp.json()
                if not quiet:
                    line = _progress(stats, now - start, metrics_stats() if metrics_stats else None)
                    print(line, file=sys.stderr, flush=True)
            await asyncio.sleep(max(0.0, min(next_run, next_report) - time.monotonic()))
        if viewers:
            await asyncio.wait(viewers, timeout=15)
        for task in viewers:
            task.cancel()
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{base}/api/stats") as resp:
                stats.run_states = await resp.json()
    return stats
