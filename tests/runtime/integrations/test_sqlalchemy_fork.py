"""A forked child that disposes its engines (the documented RQ-horse pattern) counts its own pools from zero.

Real SQLite file databases, real ``QueuePool`` and ``NullPool``, a real
``os.fork``; the child's figures are read at its own test recorder and
written to a file for the parent to compare.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from netauto_statsd.emitter import get_emitter
from netauto_statsd.integrations.sqlalchemy import instrument_engine, uninstrument_engine
from netauto_statsd.testing import Recorder, recording
from tests.runtime.integrations.test_supported_versions import wait_for_child
from tests.support import ROOT


def gauges(rec: Recorder, pool: str) -> list[list[object]]:
    return [[s.tags["state"], s.value] for s in rec.find("db.pool.connections", pool=pool)]


def _child(queue_engine: Any, null_engine: Any, out: Path) -> None:
    with recording() as rec:
        queue_engine.dispose(close=False)  # never reuse the parent's pooled connections
        null_engine.dispose(close=False)
        with queue_engine.connect() as conn:
            conn.execute(text("select 1")).all()
        with queue_engine.connect() as conn:
            conn.execute(text("select 1")).all()
        with null_engine.connect() as conn:
            conn.execute(text("select 1")).all()
        figures = {
            "queue": gauges(rec, "queue"),
            "null": gauges(rec, "null"),
            "waits": {pool: rec.count("db.pool.checkout_wait", pool=pool) for pool in ("queue", "null")},
            "internal_errors": get_emitter().stats()["internal_errors"],
        }
    out.write_text(json.dumps(figures))


def test_a_forked_child_that_disposes_its_engines_counts_its_own_pools_from_zero(tmp_path: Path) -> None:
    queue_engine = create_engine(f"sqlite:///{tmp_path / 'queue.db'}", pool_size=1, max_overflow=2)
    null_engine = create_engine(f"sqlite:///{tmp_path / 'null.db'}", poolclass=NullPool)
    out = tmp_path / "child.json"
    try:
        with recording() as parent:
            instrument_engine(queue_engine, "queue", pool_gauges=True)  # asked for: sent from the child too
            instrument_engine(null_engine, "null", pool_gauges=True)
            held = [queue_engine.connect(), queue_engine.connect(), null_engine.connect()]  # out at the fork
            assert gauges(parent, "queue")[-2:] == [["checked_out", 2], ["overflow", 1]]
            assert gauges(parent, "null")[-1] == ["checked_out", 1]
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    _child(queue_engine, null_engine, out)
                    code = 0
                finally:
                    os._exit(code)
            assert os.waitstatus_to_exitcode(wait_for_child(pid)) == 0
            for conn in held:
                conn.close()
    finally:
        uninstrument_engine(queue_engine)
        uninstrument_engine(null_engine)
        queue_engine.dispose()
        null_engine.dispose()
    child = json.loads(out.read_text())
    # The new pool's size at the move, then its own checked-out figure; the overflow stays at the
    # child's 0 (sent only when it changes), whatever the parent's was at the fork.
    assert child["queue"] == [
        ["size", 1],
        ["checked_out", 1],
        ["checked_out", 0],
        ["checked_out", 1],
        ["checked_out", 0],
    ]
    # A pool with no figure of its own: counted from the child's own checkouts, not the parent's.
    assert child["null"] == [["checked_out", 1], ["checked_out", 0]]
    # The second checkout of each pool is measured by the wrapper moved onto the new pool.
    assert child["waits"] == {"queue": 1, "null": 0}
    assert child["internal_errors"] == 0


FRESH_PROCESS = r"""
import json, os
from sqlalchemy import create_engine, text
from netauto_statsd.integrations.sqlalchemy import instrument_engine
from netauto_statsd.testing import recording

engine = create_engine("sqlite:///" + os.environ["DB_PATH"], pool_size=2)
with recording():
    instrument_engine(engine, "fresh")  # the first instrumentation of this process registers the fork reset
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    figures = {}
    try:
        with recording() as rec:
            engine.dispose(close=False)
            with engine.connect() as conn:
                conn.execute(text("select 1")).all()
            figures = {
                "queries": rec.total("db.query", pool="fresh"),
                "gauges": [s.tags["state"] for s in rec.find("db.pool.connections")],
            }
    finally:
        os.write(write, json.dumps(figures).encode())
        os._exit(0)
os.close(write)
os.waitpid(pid, 0)
with os.fdopen(read) as pipe:
    print(pipe.read())
"""


def test_the_first_instrumentation_of_a_process_registers_the_reset_its_forked_children_need(tmp_path: Path) -> None:
    # In the test process the fork hook was registered long ago: watched in a new interpreter.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DB_PATH": str(tmp_path / "fresh.db")}
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # the child counts its own statements and, a forked child, sends no per-process pool gauge
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"queries": 1, "gauges": []}
