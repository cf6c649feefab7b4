"""Benchmark: the SQLAlchemy integration's cost, an instrumented engine vs a plain one.

Run from the repo root (statsd_exporter on PATH or --exporter, else a local UDP sink)::

    PATH=/tmp/gobin:$PATH python bench/bench_sqlalchemy.py

``--queries`` SQLite queries (default 20,000) per variant, split into ``--reps``
repetitions; in each repetition both variants run, the order alternating. Two
engines on two SQLite files (QueuePool, ``synchronous=OFF``: no fsync, so the
run is CPU-bound and the instrumentation's share as large as it gets), the same
schema and the same statements through SQLAlchemy Core. Scenarios:

* ``unit``: one connection checkout per unit of work of 10 statements
  (6 selects by key, 2 inserts, 1 update, 1 delete), as an app's request does;
* ``single``: one checkout per statement (select by key), the worst case for
  the pool hooks.

The emitter runs in this process and sends to a real statsd_exporter when one
is found. Ratios are paired per repetition; the median is reported. Target:
instrumented/plain >= 0.90 queries/s.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, delete, event, insert, select, update
from sqlalchemy.engine import Engine

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, set_emitter
from netauto_statsd.integrations.sqlalchemy import instrument_engine
from netauto_statsd.tooling.exporter import ThrowawayExporter

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
    with engine.begin() as conn:
        conn.execute(insert(runs), [{"id": i, "site": "par1"} for i in range(ROWS)])
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


def timed(scenario: Callable[[Engine, int, int], None], engine: Engine, queries: int, base: int) -> tuple[float, float]:
    """Queries per second of wall time, and per second of this process's CPU time (all its threads)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    scenario(engine, queries, base)
    return queries / (time.perf_counter() - wall), queries / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=20_000, help="queries per variant and scenario")
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--exporter", default=shutil.which("statsd_exporter"))
    args = parser.parse_args()
    per_rep = args.queries // args.reps

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port, kind, proc = start_sink(args.exporter, workdir)
        emitter = Emitter(Settings(host="127.0.0.1", port=port))
        set_emitter(emitter)
        engines = {"plain": make_engine(workdir / "plain.db"), "instrumented": make_engine(workdir / "measured.db")}
        instrument_engine(engines["instrumented"], "bench")
        summary = []
        try:
            for name, scenario in (("unit", unit), ("single", single)):
                for engine in engines.values():  # warm-up: statement caches, pool
                    timed(scenario, engine, 200, 0)
                rates: dict[str, list[tuple[float, float]]] = {"plain": [], "instrumented": []}
                for rep in range(args.reps):
                    order = ("plain", "instrumented") if rep % 2 == 0 else ("instrumented", "plain")
                    for variant in order:
                        rates[variant].append(timed(scenario, engines[variant], per_rep, rep * per_rep))
                    (plain_wall, plain_cpu), (inst_wall, inst_cpu) = rates["plain"][-1], rates["instrumented"][-1]
                    if (rep + 1) % 10 == 0:
                        print(
                            f"{name:6} rep {rep + 1}: plain {plain_wall:6.0f} q/s  instrumented {inst_wall:6.0f} q/s  "
                            f"ratio {inst_wall / plain_wall:.3f}  (CPU-time ratio {inst_cpu / plain_cpu:.3f})",
                            flush=True,
                        )
                pairs = list(zip(rates["instrumented"], rates["plain"], strict=True))
                wall_ratios = [i[0] / p[0] for i, p in pairs]
                cpu_ratios = [i[1] / p[1] for i, p in pairs]
                fast = {variant: statistics.quantiles([r[0] for r in rates[variant]], n=10)[-1] for variant in rates}
                summary.append(
                    f"{name:6}: plain median {statistics.median(r[0] for r in rates['plain']):6.0f} q/s, "
                    f"instrumented median {statistics.median(r[0] for r in rates['instrumented']):6.0f} q/s, "
                    f"paired ratio median {statistics.median(wall_ratios):.3f} "
                    f"(quartiles {' / '.join(f'{q:.3f}' for q in statistics.quantiles(wall_ratios, n=4))}); "
                    f"CPU-time ratio median {statistics.median(cpu_ratios):.3f}; "
                    f"90th-percentile-rate ratio {fast['instrumented'] / fast['plain']:.3f}"
                )
        finally:
            emitter.close()
            for engine in engines.values():
                engine.dispose()
            if proc is not None:
                proc.stop()
    stats = emitter.stats()
    print(
        f"\n{args.queries} SQLite queries per variant and scenario, {args.reps} interleaved repetitions, "
        f"metrics to {kind} (emitter: {stats['accepted']} accepted, {stats['packets_failed']} packets failed)"
    )
    print("\n".join(summary))
    print("target: ratio >= 0.90")


if __name__ == "__main__":
    main()
