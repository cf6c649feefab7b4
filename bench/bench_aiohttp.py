"""Benchmark: the aiohttp integration's cost, instrumented vs the same app uninstrumented.

Run from the repo root (statsd_exporter on PATH, or pass --exporter)::

    PATH=/tmp/gobin:$PATH python bench/bench_aiohttp.py --reps 12 --json /tmp/aiohttp.json

Scenarios (``--scenarios``), each run for every variant in every repetition:

* ``ws``: one device run streams ``--chunks`` output chunks to ``--viewers``
  websocket viewers as fast as they take them (one handler and one bounded queue
  per viewer, as the demo app does): throughput, chunks delivered to every viewer
  per second.
* ``paced``: the same stream at ``--rate`` chunks/s, as a device produces output:
  per-chunk latency, from production (monotonic clock stamped in the chunk) to
  receipt by a viewer in the client process.
* ``http``: ``--requests`` GETs of a JSON route over ``--connections`` keep-alive
  connections, ``--pipeline`` in flight on each, from a raw-socket client cheap
  enough that the server is the bottleneck.
* ``handler``: the app's own request handling (router, middlewares, handler) on
  pre-built requests in process, no sockets.
* ``send``: one viewer; the live-view handler sends ``--chunks`` chunks in a loop
  and times its own thread's CPU around the loop (CPU per ``send_str``: the
  producer, the queues and the other viewers of ``ws`` left out).

Variants: ``plain`` (no instrumentation), ``instrumented`` (``instrument_app`` and
``@live_view``), ``chain`` (the same, but the app is frozen before startup, so
our middleware stays in aiohttp's middleware chain, as on a sub-application
instrumented alone; HTTP scenarios only), and ``control``, the plain app again: control/plain shows how far
two identical runs drift apart on this machine, i.e. the noise floor of every
ratio. The order of the variants rotates every repetition. Server and emitter
run in this process, clients in a separate one; the instrumented variant sends
to a real statsd_exporter when one is found, else to a local UDP sink. Reported:
medians per variant, the median of the per-repetition (paired) ratios with their
range, the ratio of the medians, and the server's CPU time per operation (with
and without the exporter's).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, WSMsgType, web

from netauto_statsd.tooling.exporter import ThrowawayExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = "x" * 96  # a typical line of device output
QUEUE_SIZE = 64
READ_BUFFER = ("--statsd.read-buffer=8388608",)
BURST = 10  # chunks produced together in the paced run
SEND_CPU = web.AppKey("send_cpu", list)
#: instrumented/plain ratio each headline figure must reach: (bound, higher is better)
TARGETS = {"ws_chunks_per_s": (0.95, True), "paced_p99_ms": (1.05, False), "http_requests_per_s": (0.95, True)}


# ------------------------------------------------------------------- server
def build_app(variant: str, chunks: int, viewers: int, rate: float = 0) -> web.Application:
    """The demo's live view and one JSON route: plain, instrumented with one call, or with a peer.

    ``rate``: chunks per second the run produces (0: as fast as the viewers take them).
    """
    from netauto_statsd.integrations.aiohttp import instrument_app, live_view

    instrumented = variant in ("instrumented", "chain")

    queues: list[asyncio.Queue[str | None]] = []
    all_joined = asyncio.Event()

    async def produce() -> None:
        await all_joined.wait()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for seq in range(chunks):
            if rate and seq % BURST == 0:  # a device's output arrives in small bursts
                await asyncio.sleep(max(0.0, started + seq / rate - loop.time()))
            chunk = f"{seq} {time.monotonic_ns()} {PAYLOAD}"
            for queue in queues:
                await queue.put(chunk)
        for queue in queues:
            await queue.put(None)

    async def run_live(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        await ws.send_str('{"state": "mounted"}')
        queues.append(queue)
        if len(queues) == viewers:
            all_joined.set()
        while (chunk := await queue.get()) is not None:
            await ws.send_str(chunk)
        await ws.close()
        return ws

    async def burst(request: web.Request) -> web.WebSocketResponse:
        """One viewer: send every chunk in a loop, timing this thread's CPU around the loop."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('{"state": "mounted"}')
        cpu_before = time.thread_time()
        for seq in range(chunks):
            await ws.send_str(f"{seq} {time.monotonic_ns()} {PAYLOAD}")
        request.app[SEND_CPU].append((time.thread_time() - cpu_before) / chunks * 1e6)
        await ws.close()
        return ws

    async def device(request: web.Request) -> web.Response:
        return web.json_response({"device": request.match_info["device_id"], "status": "up"})

    if variant in ("otel", "otel_tracing"):
        app = peers.otel_aiohttp_application(tracing=variant == "otel_tracing")
    else:
        app = web.Application()
    if variant == "prometheus":
        app.middlewares.append(peers.prometheus_middleware())
    app[SEND_CPU] = []
    app.router.add_get("/runs/{run_id}/live", live_view(run_live) if instrumented else run_live)
    app.router.add_get("/runs/{run_id}/burst", live_view(burst) if instrumented else burst)
    app.router.add_get("/api/devices/{device_id}", device)
    if instrumented:
        instrument_app(app)

    async def start_producer(app: web.Application) -> Any:
        task = asyncio.create_task(produce())
        yield
        task.cancel()

    app.cleanup_ctx.append(start_producer)
    if variant == "chain":
        app.freeze()  # before startup: the middleware stays in aiohttp's chain
    return app


async def handle_in_process(variant: str, args: argparse.Namespace) -> dict[str, float]:
    """CPU per request of the app's own request handling (router, middlewares, handler), no sockets.

    The HTTP parser, the transport and the client are the same for every variant;
    leaving them out removes most of this machine's noise from the difference.
    """
    from aiohttp.test_utils import make_mocked_request

    app = build_app(variant, args.chunks, args.viewers)
    app.on_startup.freeze()  # as AppRunner.setup() does: startup, then freeze
    await app.startup()
    app.freeze()
    pool = [make_mocked_request("GET", f"/api/devices/edge-{i}", app=app) for i in range(100)]
    requests = pool * max(1, args.requests // len(pool))
    gc.collect()
    cpu_before = time.process_time()
    for request in requests:
        await app._handle(request)
    cpu = time.process_time() - cpu_before
    await app.cleanup()
    return {"handler_cpu_us": cpu / len(requests) * 1e6}


async def serve_once(variant: str, args: argparse.Namespace, mode: str) -> dict[str, float]:
    """Start the app on a free port, run one client process against it, return the client's figures.

    ``mode``: ``ws`` (unpaced stream: throughput), ``paced`` (stream at ``--rate``:
    per-chunk latency), ``send`` (one viewer, CPU per send timed in the handler),
    ``http``, or ``handler`` (in process, no sockets).
    """
    if mode == "handler":
        return await handle_in_process(variant, args)
    app = build_app(variant, args.chunks, args.viewers, args.rate if mode == "paced" else 0)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    gc.collect()
    try:
        streaming = mode != "http"
        count = args.chunks if streaming else args.requests
        width = 1 if mode == "send" else args.viewers if streaming else args.connections
        cpu_before, exporter_before = time.process_time(), args.collector_cpu()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "_client-ws" if streaming else "_client-http",
            str(port),
            str(count),
            str(width),
            str(args.pipeline),
            "burst" if mode == "send" else "live",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"client {mode} failed ({proc.returncode})")
        figures: dict[str, float] = json.loads(out)
        cpu = time.process_time() - cpu_before
        operations = count * width if streaming else count
        result = {f"{mode}_{key}": value for key, value in figures.items()}
        if mode == "send":
            (result["send_handler_cpu_us"],) = app[SEND_CPU]
        result[f"{mode}_server_cpu_us"] = cpu / operations * 1e6
        result[f"{mode}_server_and_exporter_cpu_us"] = (cpu + args.collector_cpu() - exporter_before) / operations * 1e6
        return result
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------ clients
async def client_ws(port: int, chunks: int, viewers: int, pipeline: int = 1, view: str = "live") -> dict[str, float]:
    """Connect the viewers, read every chunk, report throughput and per-chunk latency."""
    latencies: list[int] = []
    first_stamp: list[int] = []
    last_seen: list[int] = []

    async def viewer(session: ClientSession) -> None:
        async with session.ws_connect(f"http://127.0.0.1:{port}/runs/42/{view}", compress=0) as ws:
            await ws.receive()  # the mount message
            count = 0
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                now = time.monotonic_ns()
                seq, stamp, _ = msg.data.split(" ", 2)
                sent = int(stamp)
                if seq == "0":
                    first_stamp.append(sent)
                latencies.append(now - sent)
                count += 1
            last_seen.append(time.monotonic_ns())
            assert count == chunks, f"viewer got {count} of {chunks} chunks"

    async with ClientSession() as session:
        await asyncio.gather(*(viewer(session) for _ in range(viewers)))
    elapsed = (max(last_seen) - min(first_stamp)) / 1e9
    latencies.sort()
    return {
        "chunks_per_s": chunks / elapsed,
        "p50_ms": latencies[len(latencies) // 2] / 1e6,
        "p99_ms": latencies[int(len(latencies) * 0.99)] / 1e6,
    }


async def client_http(port: int, total: int, connections: int, pipeline: int = 1, _view: str = "") -> dict[str, float]:
    """Keep-alive GETs on raw sockets, ``pipeline`` in flight per connection: a client this cheap
    leaves the server as the bottleneck."""
    window = pipeline
    per_connection = total // connections
    marker = b"HTTP/1.1 200"

    async def one(index: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = f"GET /api/devices/edge-{index} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
        sent = received = 0
        tail = b""
        while received < per_connection:
            burst = min(window - (sent - received), per_connection - sent)
            if burst > 0:
                writer.write(request * burst)
                sent += burst
            data = tail + await reader.read(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            received += data.count(marker)
            tail = data[-len(marker) + 1 :]
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(connections)))
    return {"requests_per_s": per_connection * connections / (time.perf_counter() - started)}


# --------------------------------------------------------------- collector
class Collector:
    """Where the instrumented variant sends: a real statsd_exporter, or a UDP sink."""

    def __init__(self, exporter: str | None) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.exporter: ThrowawayExporter | None = None
        self.url = ""
        self.sink: socket.socket | None = None
        if exporter:
            self.exporter = ThrowawayExporter(exporter, ROOT / "bridge" / "statsd_mapping.yml", extra=READ_BUFFER)
            self.proc = self.exporter.proc
            self.port, self.url = self.exporter.udp_port, self.exporter.url
        else:
            self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sink.bind(("127.0.0.1", 0))
            self.port = self.sink.getsockname()[1]
            threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.sink is not None
        while True:
            try:
                self.sink.recv(65536)
            except OSError:
                return

    def summary(self) -> str:
        if not self.url:
            return "UDP sink (no statsd_exporter found)"
        text = urllib.request.urlopen(f"{self.url}/metrics", timeout=5).read().decode()
        wanted = ("netauto_liveview_messages_total", "netauto_http_requests_total", "statsd_exporter_udp_packet_drops")
        totals = dict.fromkeys(wanted, 0.0)
        for line in text.splitlines():
            for name in wanted:
                if line.startswith(name) and not line.startswith("#"):
                    totals[name] += float(line.rsplit(" ", 1)[1])
        return "statsd_exporter v0.30.0: " + ", ".join(f"{k}={v:g}" for k, v in totals.items())

    def close(self) -> None:
        if self.exporter is not None:
            self.exporter.stop()
        if self.sink is not None:
            self.sink.close()


def _process_cpu(pid: int | None) -> float:
    """CPU seconds used so far by process ``pid`` (0 when there is none)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------- main
#: Every repetition runs the plain app twice: the second run (``control``) against the
#: first shows how far two identical runs drift apart on this machine (the noise floor).
#: The peers instrument HTTP only: they run in the ``http`` and ``handler`` scenarios.
STREAM_VARIANTS = ("plain", "instrumented", "control")
HTTP_VARIANTS = ("plain", "instrumented", "chain", "prometheus", "otel", "otel_tracing", "control")
LABELS = {
    "instrumented": "ours",
    "chain": "ours, kept in the middleware chain",
    "prometheus": "prometheus_client, hand-rolled",
    "otel": "OTel, metrics only",
    "otel_tracing": "OTel + tracing",
    "control": "plain again (A/A)",
}


def _variants(mode: str, with_otel: bool) -> tuple[str, ...]:
    if mode in ("ws", "paced", "send"):
        return STREAM_VARIANTS
    return tuple(v for v in HTTP_VARIANTS if with_otel or not v.startswith("otel"))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Interleave the variants (rotating their order every repetition); summarise paired ratios and differences."""
    results: dict[str, dict[str, list[float]]] = {}
    for rep in range(args.reps):
        for mode in args.scenarios.split(","):
            variants = _variants(mode, args.otel)
            shift = rep % len(variants)
            order = variants[shift:] + variants[:shift]
            if rep % 2:
                order = order[::-1]
            for variant in order:
                figures = await serve_once(variant, args, mode)
                for key, value in figures.items():
                    results.setdefault(key, {}).setdefault(variant, []).append(value)
        line = "  ".join(
            f"{key}={by['instrumented'][-1] / by['plain'][-1]:.3f}"
            for key, by in results.items()
            if "instrumented" in by
        )
        print(f"rep {rep + 1}/{args.reps} load={os.getloadavg()[0]:.1f}: ours/plain {line}", file=sys.stderr)
    summary: dict[str, Any] = {}
    for key, by in results.items():
        plain = by["plain"]
        entry: dict[str, Any] = {"plain_median": statistics.median(plain)}
        for variant, values in by.items():
            if variant == "plain":
                continue
            ratios = [v / p for v, p in zip(values, plain, strict=True)]
            entry[variant] = {
                "median": statistics.median(values),
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "added_median": statistics.median(v - p for v, p in zip(values, plain, strict=True)),
            }
        summary[key] = entry
    for key, (bound, higher_is_better) in TARGETS.items():
        if key in summary:
            ratio = summary[key]["instrumented"]["ratio_median"]
            summary[key]["target"] = f"{'>=' if higher_is_better else '<='} {bound}"
            summary[key]["met"] = ratio >= bound if higher_is_better else ratio <= bound
    return summary


def markdown(summary: dict[str, Any]) -> str:
    """One table: per figure, each variant's median, its paired ratio to plain and (CPU) paired added us."""
    lines = [
        "| figure | variant | median | vs plain: median of paired ratios (range) | added per op, paired median |",
        "|---|---|---:|---:|---:|",
    ]
    for key, entry in summary.items():
        if not isinstance(entry, dict) or "plain_median" not in entry:
            continue
        lines.append(f"| {key} | plain | {entry['plain_median']:,.2f} | | |")
        for variant, label in LABELS.items():
            if variant not in entry:
                continue
            figures = entry[variant]
            added = f"{figures['added_median']:+,.2f} us" if key.endswith("_us") else ""
            lines.append(
                f"| {key} | {label} | {figures['median']:,.2f} | {figures['ratio_median']:.3f} "
                f"({figures['ratio_min']:.2f}-{figures['ratio_max']:.2f}) | {added} |"
            )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments and run the benchmark (or, internally, one client)."""
    if len(sys.argv) > 1 and sys.argv[1].startswith("_client-"):
        port, count, width, pipeline = (int(v) for v in sys.argv[2:6])
        client = client_ws if sys.argv[1] == "_client-ws" else client_http
        print(json.dumps(asyncio.run(client(port, count, width, pipeline, sys.argv[6]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2_000, help="chunks/s of the paced (latency) run")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the HTTP client")
    parser.add_argument("--pipeline", type=int, default=1, help="HTTP requests in flight per connection")
    parser.add_argument(
        "--scenarios", default="handler,http,ws,paced,send", help="comma-separated: handler, http, ws, paced, send"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny counts, one repetition")
    parser.add_argument("--exporter", default=shutil.which("statsd_exporter"), help="statsd_exporter binary, or ''")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.chunks, args.viewers, args.requests, args.connections = 1, 200, 2, 400, 4
    try:
        import opentelemetry.instrumentation.aiohttp_server  # noqa: F401

        args.otel = True
    except ImportError:
        print("OTel peers skipped: pip install -e '.[bench]'", file=sys.stderr)
        args.otel = False

    from netauto_statsd.emitter import configure

    collector = Collector(args.exporter or None)
    args.collector_cpu = functools.partial(_process_cpu, collector.proc.pid if collector.proc else None)
    try:
        emitter = configure(host="127.0.0.1", port=collector.port, env="bench")
        summary = asyncio.run(run(args))
        emitter.flush()
        summary["emitter"] = emitter.stats()
        time.sleep(0.5)  # the exporter applies events up to ~200 ms late; this is a report, not a test
        summary["collector"] = collector.summary()
    finally:
        collector.close()
    print(json.dumps(summary, indent=2))
    print(markdown(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print(
        f"cpus={os.cpu_count()} python={sys.version.split()[0]} chunks={args.chunks} viewers={args.viewers} "
        f"requests={args.requests} reps={args.reps}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
