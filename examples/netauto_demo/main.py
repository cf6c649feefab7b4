"""``netauto-statsd demo``: the app, a worker and the load generator, together or one role each.

Roles: ``all`` (default: everything in one command), ``app`` (HTTP API + live
view), ``worker`` (an instrumented RQ worker), ``load`` (load generator against
``--target``). Compose runs one role per service.

With no services configured, ``all`` still runs: SQLite in a temporary
directory, and for RQ ``REDIS_URL`` if set, else a local ``redis-server`` it
starts itself when the binary is on PATH, else jobs run in-process in a thread
pool (RQ needs a Redis even in its synchronous mode) - it says which it chose.
Metrics go to the exporter the environment names (``DD_DOGSTATSD_URL`` etc.);
the demo says where at start, and says so once when they stop arriving.
Deliberate faults are one log line each; anything else keeps its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from netauto_demo.console import ExporterWatch, UsageError, destination, say, usage_error, validate
from netauto_demo.faults import MUTED_WORKER, muted_worker_line, quiet_injected_faults, worker_env
from netauto_statsd.emitter import get_emitter

QUEUE_NAME = "runs"
JOB_TIMEOUT = 60
WORKERS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_redis() -> Iterator[str | None]:
    """Yield a Redis URL: ``REDIS_URL``, or a redis-server started here, or None."""
    url = os.environ.get("REDIS_URL")
    if url:
        say(f"RQ on REDIS_URL {url}")
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        say("no REDIS_URL and no redis-server on PATH: running jobs in-process (no RQ metrics)")
        yield None
        return
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="netauto-redis-") as tmp:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            from redis import Redis

            client = Redis(port=port)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except Exception:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
            say(f"RQ on a local redis-server it started (port {port})")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def make_enqueue(redis_url: str | None) -> Callable[[int], None]:
    """``enqueue(run_id)`` through an instrumented RQ queue, or a thread pool without Redis."""
    from netauto_demo.jobs import JOB_FUNCTION, execute_run
    from netauto_statsd.integrations.rq import InstrumentedQueue, declare_job_functions

    declare_job_functions([JOB_FUNCTION])
    if redis_url is None:
        pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="demo-run")

        def run_here(run_id: int) -> None:
            pool.submit(_swallow, execute_run, run_id)

        return run_here
    from redis import Redis

    queue = InstrumentedQueue(QUEUE_NAME, connection=Redis.from_url(redis_url))

    def enqueue(run_id: int) -> None:
        queue.enqueue(execute_run, run_id, job_timeout=JOB_TIMEOUT, result_ttl=60, failure_ttl=300)

    return enqueue


def _swallow(func: Callable[[int], object], run_id: int) -> None:
    with contextlib.suppress(Exception):  # the runner already recorded how it ended
        func(run_id)


def run_worker(redis_url: str) -> int:
    """Run an instrumented forking RQ worker until SIGTERM."""
    from redis import Redis

    from netauto_demo.jobs import JOB_FUNCTION
    from netauto_statsd.integrations.rq import InstrumentedWorker, declare_job_functions

    declare_job_functions([JOB_FUNCTION])
    quiet_injected_faults()
    worker = InstrumentedWorker([QUEUE_NAME], connection=Redis.from_url(redis_url))
    worker.work(logging_level="WARNING")
    return 0


async def serve_app(port: int, enqueue: Callable[[int], None], devices: int) -> tuple[object, int]:
    """Start the instrumented app on 0.0.0.0:``port`` (0: any free port); return (runner, port)."""
    from aiohttp import web

    from netauto_demo.app import blocking, build_app
    from netauto_demo.automation import seed_devices

    await blocking(seed_devices, devices)
    runner = web.AppRunner(build_app(enqueue), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", port)
    await site.start()
    bound = port or int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    return runner, bound


def _print_summary(stats: object, elapsed: float) -> None:
    from netauto_demo.load import LoadStats

    assert isinstance(stats, LoadStats)
    sent = get_emitter().stats()
    print(
        "\n".join(
            [
                f"demo summary after {elapsed:.0f}s:",
                f"  runs started: {stats.runs_started}; by status: {stats.run_states}",
                f"  viewers: {stats.viewers_total} (left early {stats.viewers_left_early}); messages {stats.messages}",
                f"  deliberate 4xx requests: {stats.bad_requests}; http errors: {stats.http_errors}",
                f"  slow viewers (backpressure): {stats.slow_viewers}; fleet audits: {stats.audits}",
                f"  metrics from this process: {sent}",
            ]
        ),
        flush=True,
    )


async def _all(args: argparse.Namespace) -> int:
    from netauto_demo.load import generate

    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if "DATABASE_URL" not in os.environ:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="netauto-demo-"))
            os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/netauto.db"
            say(f"database: SQLite in {tmp}")
        redis_url = stack.enter_context(local_redis())
        workers: list[subprocess.Popen[bytes]] = []
        if redis_url is not None:
            env = {**os.environ, "REDIS_URL": redis_url}
            command = [sys.executable, "-m", "netauto_statsd.tooling.cli", "demo", "--role", "worker"]
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="netauto-workers-"))
            for index in range(WORKERS):
                log = stack.enter_context(open(f"{log_dir}/worker-{index}.log", "wb"))
                workers.append(
                    subprocess.Popen(command, env=worker_env(index, env), stdout=log, stderr=subprocess.STDOUT)
                )
            say(f"{WORKERS} RQ workers (forking), logs in {log_dir}")
            if WORKERS > MUTED_WORKER:
                say(muted_worker_line(f"worker-{MUTED_WORKER}"))
        runner, port = await serve_app(args.port, make_enqueue(redis_url), args.devices)
        say(f"app on http://127.0.0.1:{port}; load for {args.duration:.0f}s at {args.rate}/s")
        try:
            stats = await generate(f"http://127.0.0.1:{port}", args.duration, args.rate, args.viewers,
                                   args.quiet, get_emitter().stats)  # fmt: skip
        finally:
            await runner.cleanup()  # type: ignore[attr-defined]
            for worker in workers:
                worker.terminate()  # RQ warm shutdown: the current job finishes and is reported
            for worker in workers:
                try:
                    worker.wait(JOB_TIMEOUT)
                except subprocess.TimeoutExpired:
                    worker.kill()
        get_emitter().flush()
        _print_summary(stats, time.monotonic() - started)
    return 0


async def _app(args: argparse.Namespace) -> int:
    runner, port = await serve_app(args.port, make_enqueue(os.environ.get("REDIS_URL")), args.devices)
    say(f"app on port {port}")
    try:
        while True:
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]


async def _load(args: argparse.Namespace) -> int:
    from netauto_demo.load import LoadStats, generate

    started, stats = time.monotonic(), LoadStats()
    try:
        await generate(args.target.rstrip("/"), args.duration, args.rate, args.viewers, args.quiet, stats=stats)
    finally:  # also when stopped (SIGTERM, Ctrl-C): what it did so far
        if stats.runs_started or stats.bad_requests or stats.faults:
            _print_summary(stats, time.monotonic() - started)
    return 0


async def _until_signalled(main: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace) -> int:
    """Run ``main``; SIGTERM/SIGINT (``docker compose stop``) cancel it so cleanup and the last flush run.

    Meanwhile an :class:`ExporterWatch` says when metrics stop arriving, and when they flow again.
    """
    task = asyncio.ensure_future(main(args))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
    watch = asyncio.ensure_future(ExporterWatch(get_emitter().stats, destination().split(" (")[0]).run())
    try:
        return await task
    except asyncio.CancelledError:
        say("stopped")
        return 0
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch


def run_demo(args: argparse.Namespace) -> int:
    """Entry point of ``netauto-statsd demo``: exit 2 on a bad argument, 1 when the ``--target`` is down."""
    from netauto_demo.load import TargetUnreachableError

    try:
        validate(args)
        if args.role == "worker" and not os.environ.get("REDIS_URL"):
            raise UsageError("--role worker needs REDIS_URL (the RQ broker), e.g. REDIS_URL=redis://127.0.0.1:6379/0")
    except UsageError as error:
        return usage_error(error)
    quiet_injected_faults()
    # datadog logs every packet it cannot send; ExporterWatch says it once instead
    logging.getLogger("datadog.dogstatsd").setLevel(logging.ERROR)
    say(f"metrics go to {destination()}")
    try:
        if args.role == "worker":
            return run_worker(os.environ["REDIS_URL"])
        main = {"all": _all, "app": _app, "load": _load}[args.role]
        return asyncio.run(_until_signalled(main, args))
    except TargetUnreachableError as exc:
        say(f"error: {exc}; start it first (--role app) or fix --target")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        get_emitter().flush()
