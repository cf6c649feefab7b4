"""Benchmark: the SQLAlchemy integration's cost, side by side with the peers, on SQLite.

Run from the repo root (statsd_exporter on PATH or --exporter, else a local UDP sink)::

    PATH=.tools/bin:$PATH .venv/bin/python bench/bench_sqlalchemy.py --reps 20
    # with the OTel peer: SQLAlchemy 2.0.x (opentelemetry-instrumentation-sqlalchemy 0.66b1 skips 2.1)
    PATH=.tools/bin:$PATH /tmp/venv-sa20/bin/python bench/bench_sqlalchemy.py --reps 20

Variants, one engine and SQLite file each (QueuePool, ``synchronous=OFF``: no
fsync, so the run is CPU-bound and the instrumentation's share as large as it
gets): ``plain``; ours (``instrument_engine``); a prometheus_client listener and
OpenTelemetry (metrics only, and + tracing) from ``bench/peers.py``; ``control``,
plain again (the A/A noise floor). Scenarios:

* ``select``: ``SELECT :x`` on one held connection (the per-statement cost);
* ``orm``: ORM units of work (a Session loads a row, changes it, adds two,
  deletes them, commits: 6-7 statements and one checkout per unit);
* ``unit``: Core units of 10 statements, one checkout each (figures per statement);
* ``single``: one checkout per statement, the worst case for the pool hooks.

In each repetition every variant runs one block of ``--queries / --reps``
operations, in a rotating order (many short blocks: a load swing on this shared
machine hits every variant alike). CPU is the main thread's (``time.thread_time``)
per block, including a flush after the block that hands over and sends what the
block gathered (our publish, the emitter's formatting and UDP send; every
variant flushes, so the flush's fixed cost pairs out), paired per repetition
with plain's. What our background threads (the ``netauto-publish`` publisher and
the emitter's ``netauto-statsd-flush`` thread) still use beyond their idle rate
is added to ours, per operation (only ours emits; the peers have no background
threads). Reported per variant: median operations/s (wall time of the block,
the flush excluded), the median of the per-repetition ratios to plain, the
median CPU per operation, and the added CPU per operation: the median of the
paired differences plus, for ours, that background remainder.
``--quick``: a smoke run (tests run it; nothing about time is asserted).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.emitter import flush as emitter_flush
from netauto_statsd.integrations.sqlalchemy import instrument_engine
from netauto_statsd.tooling.exporter import ThrowawayExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers

ROOT = Path(__file__).resolve().parent.parent
metadata = MetaData()
runs = Table("runs", metadata, Column("id", Integer, primary_key=True), Column("site", String(16)))
ROWS = 1000


def start_sink(exporter: str | None, workdir: Path) -> tuple[int, str, ThrowawayExporter | None]:
    """A real statsd_exporter if given, else a UDP socket drained by a thread: (udp port, kind, exporter)."""
    if not exporter:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        threading.Thread(target=lambda: [sock.recv(65535) for _ in iter(int, 1)], daemon=True).start()
        return int(sock.getsockname()[1]), "UDP sink", None
    started = ThrowawayExporter(exporter, ROOT / "bridge" / "statsd_mapping.yml", log_dir=workdir)
    return started.udp_port, "statsd_exporter", started


def make_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", pool_size=5, max_overflow=5)

    @event.listens_for(engine, "connect")
    def _fast(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    metadata.create_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(runs), [{"id": i, "site": "par1"} for i in range(ROWS)])
        conn.execute(insert(Device), [{"id": i, "name": f"edge-{i}", "status": "up"} for i in range(ROWS)])
    return engine


def unit(engine: Engine, queries: int, base: int) -> None:
    """Units of 10 statements, one checkout each."""
    for u in range(queries // 10):
        key = (base + u) % ROWS
        new = ROWS + base + u
        with engine.begin() as conn:
            for k in range(6):
                conn.execute(select(runs.c.site).where(runs.c.id == (key + k) % ROWS)).scalar()
            conn.execute(insert(runs).values(id=new, site="fra1"))
            conn.execute(insert(runs).values(id=new + 10_000_000, site="fra1"))
            conn.execute(update(runs).where(runs.c.id == key).values(site="ams1"))
            conn.execute(delete(runs).where(runs.c.id.in_((new, new + 10_000_000))))


def single(engine: Engine, queries: int, base: int) -> None:
    """One checkout per statement."""
    for q in range(queries):
        with engine.connect() as conn:
            conn.execute(select(runs.c.site).where(runs.c.id == (base + q) % ROWS)).scalar()


class Base(DeclarativeBase):
    pass


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))


def select_x(engine: Engine, queries: int, base: int) -> None:
    """``SELECT :x`` on one held connection: the per-statement cost, nothing else."""
    statement = text("SELECT :x")
    with engine.connect() as conn:
        for q in range(queries):
            conn.execute(statement, {"x": base + q}).scalar()


def orm(engine: Engine, queries: int, base: int) -> None:
    """ORM units of work: a Session loads a device, changes it, adds two, deletes one, commits (``queries`` = units)."""
    for u in range(queries):
        key = (base + u) % ROWS
        new = 10_000_000 + base + u
        with Session(engine) as session, session.begin():
            device = session.get(Device, key)
            if device is not None:
                device.status = "up" if device.status != "up" else "down"
            session.add_all([Device(id=new, name=f"edge-{new}", status="new"), Device(id=-new, name="x", status="new")])
            session.flush()
            session.delete(session.get(Device, -new))
            session.flush()
            session.delete(session.get(Device, new))


#: scenario -> (function, statements per operation, operation name)
SCENARIOS: dict[str, tuple[Callable[[Engine, int, int], None], int, str]] = {
    "select": (select_x, 1, "statement"),
    "orm": (orm, 1, "unit of work"),
    "unit": (unit, 1, "statement"),
    "single": (single, 1, "statement"),
}
#: Every repetition runs plain twice: control/plain is the A/A noise floor.
VARIANTS = ("plain", "instrumented", "prometheus", "otel", "otel_tracing", "control")
LABELS = {
    "instrumented": "ours",
    "prometheus": "prometheus_client listener",
    "otel": "OTel, metrics only",
    "otel_tracing": "OTel + tracing",
    "control": "plain again (A/A)",
}


def timed(scenario: Callable[[Engine, int, int], None], engine: Engine, count: int, base: int) -> tuple[float, float]:
    """Operations per second of wall time, and main-thread CPU microseconds per operation.

    After the block, a flush in this thread hands over and sends what the block
    gathered (our publish, the emitter's formatting and send), so that work is
    the block's CPU; every variant flushes, so the flush's fixed cost pairs out.
    Wall time stops before the flush.
    """
    wall, cpu = time.perf_counter(), time.thread_time()
    scenario(engine, count, base)
    elapsed = time.perf_counter() - wall
    emitter_flush()
    return count / elapsed, (time.thread_time() - cpu) / count * 1e6


def background_cpu() -> float:
    """CPU seconds used so far by our background threads (the publisher and the emitter's flush thread)."""
    total = 0.0
    for thread in threading.enumerate():
        if thread.name.startswith("netauto") and thread.ident is not None:
            try:
                total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
            except OSError:  # the thread ended meanwhile
                pass
    return total


def build_engines(workdir: Path) -> dict[str, Engine]:
    """One engine (and SQLite file) per variant; the peers attached as their docs say."""
    engines: dict[str, Engine] = {}
    for variant in VARIANTS:
        engine = make_engine(workdir / f"{variant}.db")
        if variant == "instrumented":
            instrument_engine(engine, "bench")
        elif variant == "prometheus":
            peers.prometheus_listener(engine)
        elif variant.startswith("otel"):
            try:
                if not peers.otel_sqlalchemy(engine, tracing=variant == "otel_tracing"):
                    print(f"{variant}: opentelemetry-instrumentation-sqlalchemy refused this SQLAlchemy; skipped")
                    continue
            except ImportError:
                print(f"{variant}: skipped (pip install -e '.[bench]')")
                continue
        engines[variant] = engine
    return engines


def idle_background_rate(seconds: float) -> float:
    """CPU seconds per second our background threads use while nothing is sent (the flush thread's wake-ups)."""
    emitter_flush()
    before, started = background_cpu(), time.perf_counter()
    time.sleep(seconds)  # the measurement window itself
    return (background_cpu() - before) / (time.perf_counter() - started)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """Lower quartile, median, upper quartile."""
    if len(values) < 4:
        middle = statistics.median(values)
        return min(values), middle, max(values)
    low, middle, high = statistics.quantiles(values, n=4)
    return low, middle, high


def table_rows(
    name: str, operation: str, figures: dict[str, list[tuple[float, float]]], ours_background: float
) -> list[str]:
    """One scenario's rows: plain first, then every other variant paired with it repetition by repetition."""
    plain = figures["plain"]
    rows = [
        f"| {name} ({operation}) | plain | {statistics.median(r[0] for r in plain):,.0f} | "
        f"| {statistics.median(r[1] for r in plain):,.2f} | | |"
    ]
    for variant, label in LABELS.items():
        if variant not in figures:
            continue
        got = figures[variant]
        ratio = quartiles([g[0] / p[0] for g, p in zip(got, plain, strict=True)])
        main_thread = quartiles([g[1] - p[1] for g, p in zip(got, plain, strict=True)])
        background = ours_background if variant == "instrumented" else 0.0
        rows.append(
            f"| {name} ({operation}) | {label} | {statistics.median(r[0] for r in got):,.0f} | "
            f"{ratio[1]:.3f} ({ratio[0]:.2f}-{ratio[2]:.2f}) | {statistics.median(r[1] for r in got):,.2f} | "
            f"{main_thread[1]:+,.2f} ({main_thread[0]:+,.2f} .. {main_thread[2]:+,.2f}) + {background:.2f} | "
            f"**{main_thread[1] + background:+,.2f}** |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=20_000, help="operations per variant and scenario")
    parser.add_argument("--reps", type=int, default=200, help="interleaved repetitions (blocks per variant)")
    parser.add_argument("--scenarios", default="select,orm,unit,single")
    parser.add_argument("--exporter", default=shutil.which("statsd_exporter"))
    parser.add_argument("--idle", type=float, default=3.0, help="seconds to measure the background threads idle")
    parser.add_argument("--quick", action="store_true", help="smoke run: a few operations, four repetitions")
    args = parser.parse_args()
    if args.quick:
        args.queries, args.reps, args.idle = 200, 4, 0.2
    per_rep = max(1, args.queries // args.reps)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port, kind, proc = start_sink(args.exporter, workdir)
        emitter = Emitter(Settings(host="127.0.0.1", port=port))
        set_emitter(emitter)
        engines = build_engines(workdir)
        lines = [
            "| scenario | variant | ops/s (median) | vs plain: paired ratio (IQR) "
            "| main-thread CPU us/op (median) | added: main thread, paired median (IQR) + background "
            "| added CPU us/op |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        try:
            timed(select_x, engines["instrumented"], 20, 0)  # our background threads exist from here on
            idle_rate = idle_background_rate(args.idle)
            for name in args.scenarios.split(","):
                scenario, _, operation = SCENARIOS[name]
                for engine in engines.values():  # warm-up: statement caches, pool
                    timed(scenario, engine, 20, 0)
                figures: dict[str, list[tuple[float, float]]] = {variant: [] for variant in engines}
                variants = list(engines)
                gc.collect()
                background, started = background_cpu(), time.perf_counter()
                for rep in range(args.reps):
                    shift = rep % len(variants)
                    order = variants[shift:] + variants[:shift]
                    for variant in order[::-1] if rep % 2 else order:
                        figures[variant].append(timed(scenario, engines[variant], per_rep, rep * per_rep))
                    if (rep + 1) % max(1, args.reps // 4) == 0:
                        ratio = figures["instrumented"][-1][0] / figures["plain"][-1][0]
                        print(f"{name:6} rep {rep + 1}: ours/plain ops/s {ratio:.3f}", file=sys.stderr, flush=True)
                idle = idle_rate * (time.perf_counter() - started)  # what the threads use with nothing to send
                ours_background = (background_cpu() - background - idle) / (per_rep * args.reps) * 1e6
                lines.extend(table_rows(name, operation, figures, ours_background))
        finally:
            emitter.close()
            for engine in engines.values():
                engine.dispose()
            if proc is not None:
                proc.stop()
    stats = emitter.stats()
    print(
        f"\n{args.queries} operations per variant and scenario, {args.reps} interleaved repetitions "
        f"of {per_rep}, "
        f"SQLAlchemy {sqlalchemy.__version__}, metrics to {kind} "
        f"(emitter: {stats['accepted']} accepted, {stats['packets_failed']} packets failed); "
        f"background threads idle: {idle_rate * 1e6:.0f} us CPU per second, subtracted\n"
    )
    print("\n".join(lines))
    print("\ntargets: ours added CPU <= 2 us per statement, <= 10 us per ORM unit of work; ops/s ratio >= 0.95")


if __name__ == "__main__":
    main()
