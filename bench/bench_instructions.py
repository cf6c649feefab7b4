"""Benchmark: instructions per operation, counted by cachegrind: a figure this shared machine's load cannot move.

Run from the repo root (``valgrind`` on PATH)::

    .venv/bin/python bench/bench_instructions.py http --count 2000 --reps 2      # aiohttp server, real sockets
    .venv/bin/python bench/bench_instructions.py send --count 4000 --reps 2      # live view, a send-only loop
    .venv/bin/python bench/bench_instructions.py orm --count 200 --reps 2        # SQLAlchemy ORM units of work
    .venv/bin/python bench/bench_instructions.py http --quick                     # smoke run
    .venv/bin/python bench/bench_instructions.py http --quick --reps 0            # without valgrind (tests run it)
    git archive main | tar -x -C /tmp/main && .venv/bin/python bench/bench_instructions.py orm --before /tmp/main

Every figure is a difference: the measured process runs the workload ``--base``
operations, then again ``--base + --count`` operations, each time under
``valgrind --tool=cachegrind`` (every instruction the process executes, in every
thread: the HTTP parser, the transport, our publish timer, the emitter's
formatting and UDP sends, the flush thread), and the instructions per operation
are ``(Ir(base + count) - Ir(base)) / count``: start-up, imports, connection
set-up and shutdown cancel out. ``control`` is the plain variant again (A/A);
``--before DIR`` adds ours imported from another checkout (A/B of a change).

Workloads: ``http``, the empty JSON route of ``bench/bench_aiohttp.py`` served
to its raw-socket client (``--connections`` keep-alive connections, the client
in a separate process, not counted); ``send``, its ``burst`` live view (one
viewer, the handler sends in a loop); ``orm``, the ORM unit of work of
``bench/bench_sqlalchemy.py`` on SQLite, with a flush at the end. Ours sends to
a UDP socket of this process (drained by a thread), not to statsd_exporter.

To turn instructions into microseconds, ``--native`` runs the same pairs
without valgrind and reads each process's CPU time: plain's microseconds per
instruction (its CPU per operation over its instructions per operation) times
an instruction difference gives the microseconds it is worth at plain's mix of
instructions. cachegrind counts user-space instructions only, so the rate from
plain's *user* CPU time is the one to apply to Python-level work; the rate from
user + system time (socket system calls included) overstates it. Both depend on
the machine's load, the instruction counts do not. Hash randomisation is off (``PYTHONHASHSEED=0``) so that runs of
one variant execute the same instructions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = {
    "plain": "plain",
    "instrumented": "ours",
    "before": "ours, from --before (A/B)",
    "control": "plain again (A/A)",
}


# ------------------------------------------------------------ measured child
#: Operations per explicit flush (publish included) of the ORM workload, as in bench/bench_sqlalchemy.py.
ORM_BLOCK = 50


def _no_timed_work() -> None:
    """No publish or flush on a timer: under valgrind a run lasts ~50x longer, and timed work would be
    done ~50x more often per operation than in a real process. Publishes happen at the explicit flushes
    (ORM: every :data:`ORM_BLOCK` units) and at the app's cleanup (HTTP: once per run, in both runs of a
    pair, so its fixed cost cancels; see docs/benchmarks.md for what that leaves out)."""
    from netauto_statsd.integrations import _publisher
    from netauto_statsd.integrations.aiohttp import _shared

    _publisher.PUBLISH_INTERVAL = _shared.PUBLISH_INTERVAL = 3600.0


async def _serve(workload: str, variant: str, count: int, sink_port: int) -> None:
    """Serve the aiohttp app until stdin says stop: print the port, then (at exit) this process's CPU time."""
    sys.path.insert(0, str(HERE))
    import bench_aiohttp
    from aiohttp import web

    from netauto_statsd.emitter import configure

    _no_timed_work()
    emitter = configure(host="127.0.0.1", port=sink_port, env="bench", flush_interval=60)
    app = bench_aiohttp.build_app(variant, count, 1)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await runner.cleanup()
    emitter.flush()


def _orm(variant: str, count: int, sink_port: int) -> None:
    """Run ``count`` ORM units of work (after 20 warm-up units), then flush."""
    sys.path.insert(0, str(HERE))
    import bench_sqlalchemy

    from netauto_statsd.config import Settings
    from netauto_statsd.emitter import Emitter, flush, set_emitter
    from netauto_statsd.integrations.sqlalchemy import instrument_engine

    _no_timed_work()
    set_emitter(Emitter(Settings(host="127.0.0.1", port=sink_port, flush_interval=60)))
    with tempfile.TemporaryDirectory() as workdir:
        engine = bench_sqlalchemy.make_engine(Path(workdir) / "bench.db")
        if variant == "instrumented":
            instrument_engine(engine, "bench")
        bench_sqlalchemy.orm(engine, 20, 0)
        flush()
        for block in range(0, count, ORM_BLOCK):
            bench_sqlalchemy.orm(engine, min(ORM_BLOCK, count - block), 20 + block)
            flush()
        engine.dispose()


def child(workload: str, variant: str, count: int, sink_port: int) -> None:
    if workload == "orm":
        _orm(variant, count, sink_port)
    else:
        asyncio.run(_serve(workload, variant, count, sink_port))
    print(json.dumps({"cpu_s": time.process_time(), "user_s": os.times().user}), flush=True)


# ------------------------------------------------------------- orchestrator
def _sink() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    threading.Thread(target=lambda: [sock.recv(65535) for _ in iter(int, 1)], daemon=True).start()
    return int(sock.getsockname()[1])


def _client(workload: str, port: int, count: int, connections: int) -> None:
    mode, width, view = ("_client-http", connections, "live") if workload == "http" else ("_client-ws", 1, "burst")
    subprocess.run(
        [sys.executable, str(HERE / "bench_aiohttp.py"), mode, str(port), str(count), str(width), "1", view],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def measure(
    args: argparse.Namespace, variant: str, count: int, native: bool, sink_port: int
) -> tuple[int, float, float]:
    """One run of the measured process: (instructions, or 0 when ``native``; its CPU seconds; its user CPU seconds)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if variant == "before":  # the same bench, the package imported from another checkout
        env["PYTHONPATH"] = str(args.before)
        variant = "instrumented"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cachegrind.out"
        grind = [args.valgrind, "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]
        prefix = [] if native else grind
        command = [*prefix, sys.executable, __file__, "_child", args.workload, variant, str(count), str(sink_port)]
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        assert proc.stdin is not None and proc.stdout is not None
        if args.workload != "orm":
            port = int(proc.stdout.readline())
            work = args.connections * max(1, count // args.connections) if args.workload == "http" else count
            assert work == count, "--count and --base must be multiples of --connections"
            _client(args.workload, port, count, args.connections)
            proc.stdin.write("stop\n")
            proc.stdin.flush()
        out_text, _ = proc.communicate(timeout=3600)
        if proc.returncode:
            raise RuntimeError(f"{variant} x {count}: the measured process failed ({proc.returncode})")
        times = json.loads(out_text.strip().splitlines()[-1])
        cpu, user = float(times["cpu_s"]), float(times["user_s"])
        if native:
            return 0, cpu, user
        found = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
        if found is None:
            raise RuntimeError("no summary line in the cachegrind output")
        return int(found.group(1)), cpu, user


def run(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Per variant: instructions per operation (one value per repetition), and native CPU us per operation."""
    sink_port = _sink()
    variants: tuple[str, ...] = ("plain", "instrumented", "control")
    if args.before:
        variants = ("plain", "instrumented", "before", "control")
    figures: dict[str, dict[str, list[float]]] = {v: {"ir": [], "cpu_us": [], "user_us": []} for v in variants}
    for rep in range(args.reps):
        shift = rep % len(variants)
        order = variants[shift:] + variants[:shift]
        for variant in order:
            small, _, _ = measure(args, variant, args.base, False, sink_port)
            large, _, _ = measure(args, variant, args.base + args.count, False, sink_port)
            figures[variant]["ir"].append((large - small) / args.count)
            print(f"rep {rep + 1} {variant}: {(large - small) / args.count:,.0f} instructions/op", file=sys.stderr)
    for _ in range(args.native):
        for variant in variants:
            _, small, small_user = measure(args, variant, args.base, True, sink_port)
            _, large, large_user = measure(args, variant, args.base + args.native_count, True, sink_port)
            figures[variant]["cpu_us"].append((large - small) / args.native_count * 1e6)
            figures[variant]["user_us"].append((large_user - small_user) / args.native_count * 1e6)
    return figures


def markdown(args: argparse.Namespace, figures: dict[str, dict[str, list[float]]]) -> str:
    """Per variant: instructions per operation and what the added ones are worth at plain's rates."""

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else 0.0

    plain_ir = median(figures["plain"]["ir"])
    plain_cpu, plain_user = median(figures["plain"]["cpu_us"]), median(figures["plain"]["user_us"])
    per_ir = plain_cpu / plain_ir if plain_ir > 0 else 0.0
    per_ir_user = plain_user / plain_ir if plain_ir > 0 else 0.0
    lines = [
        f"| {args.workload}: variant | instructions/op (median; per rep) | added instructions/op | "
        "added us/op at plain's user-CPU us/instruction | ... at plain's CPU (user + system) us/instruction | "
        "native CPU us/op, user + system (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for variant, label in LABELS.items():
        if variant not in figures:
            continue
        ir = median(figures[variant]["ir"])
        reps = ", ".join(f"{v:,.0f}" for v in figures[variant]["ir"])
        cpu = figures[variant]["cpu_us"]
        native = f"{median(cpu):,.2f} ({median(figures[variant]['user_us']):,.2f} user)" if cpu else ""
        added = "" if variant == "plain" else f"{ir - plain_ir:+,.0f}"
        added_user = "" if variant == "plain" or not per_ir_user else f"{(ir - plain_ir) * per_ir_user:+.2f}"
        added_cpu = "" if variant == "plain" or not per_ir else f"{(ir - plain_ir) * per_ir:+.2f}"
        lines.append(f"| {label} | {ir:,.0f} ({reps}) | {added} | {added_user} | {added_cpu} | {native} |")
    if per_ir:
        lines.append(
            f"\nplain: {plain_cpu:.2f} us/op of CPU ({plain_user:.2f} us user), "
            f"{per_ir_user * 1e3:.3f} ns per instruction of user CPU, {per_ir * 1e3:.3f} with system time"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=("http", "send", "orm"))
    parser.add_argument("--count", type=int, default=0, help="operations measured (the difference of the two runs)")
    parser.add_argument("--base", type=int, default=0, help="operations of the smaller run")
    parser.add_argument("--reps", type=int, default=None, help="valgrind repetitions (default 2; 0: native only)")
    parser.add_argument("--native", type=int, default=3, help="native (CPU time) repetitions, for us/instruction")
    parser.add_argument("--native-count", type=int, default=0, help="operations of a native run (default: 10x count)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections of the HTTP client")
    parser.add_argument(
        "--before", type=Path, help="a checkout of the package to compare ours with (e.g. a `git archive` of main)"
    )
    parser.add_argument("--valgrind", default=shutil.which("valgrind") or "valgrind")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny counts, one repetition")
    args = parser.parse_args()
    defaults = {"http": (2000, 400), "send": (4000, 400), "orm": (200, 50)}[args.workload]
    args.count = args.count or defaults[0]
    args.base = args.base or defaults[1]
    if args.quick:
        args.count, args.base, args.native = (100, 50, 1) if args.workload == "orm" else (80, 40, 1)
        args.reps = 1 if args.reps is None else args.reps
        args.native_count = args.count
    args.reps = 2 if args.reps is None else args.reps
    args.native_count = args.native_count or args.count * 10
    figures = run(args)
    print(json.dumps(figures))
    print(markdown(args, figures))
    print(
        f"python={sys.version.split()[0]} workload={args.workload} count={args.count} base={args.base} "
        f"reps={args.reps} native={args.native}x{args.native_count} load={os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
