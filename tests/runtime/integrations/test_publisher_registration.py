"""The background publisher's once-per-process setup, watched in a fresh interpreter.

The first :func:`request_publish` of a process registers the emitter flush hook
(a flush publishes what is pending) and the at-fork reset (a forked child has a
publisher of its own and none of the parent's pending figures). Inside the
test process both were registered long ago by other tests, so they are watched
in a new interpreter, where the first request is really the first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import ROOT

SCRIPT = r"""
import json, os, socket, sys, threading, time

from netauto_statsd.config import Settings
from netauto_statsd.emitter import Emitter, get_emitter, set_emitter
from netauto_statsd.integrations._publisher import request_publish


class Figures:
    def __init__(self, n, hold=False):
        self.n, self.hold = n, hold
        self.published = []
        self.entered, self.release = threading.Event(), threading.Event()

    def publish(self):
        self.published.append((os.getpid(), threading.current_thread().name))
        if self.n:
            get_emitter().increment("db.query", self.n, tags={"pool": "p", "operation": "select", "table": "t"})
            self.n = 0
        self.entered.set()
        if self.hold:
            self.release.wait(30)


def wait(predicate, what):
    deadline = time.monotonic() + 20
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("127.0.0.1", 0))
emitter = Emitter(Settings(host="127.0.0.1", port=sink.getsockname()[1], flush_interval=60))
set_emitter(emitter)
seen = {}

blocker = Figures(0, hold=True)
request_publish(blocker)  # the first request of this process: starts the publisher, registers the hooks
assert blocker.entered.wait(20)
parents = Figures(1)
request_publish(parents)  # the publisher is busy: pending until a flush publishes it
emitter.flush()
seen["flush_published"] = [name for _, name in parents.published]
seen["accepted_after_flush"] = emitter.stats()["accepted"]

still_pending = Figures(1)
request_publish(still_pending)
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    report = {}
    try:
        child = Figures(2)
        request_publish(child)
        wait(lambda: child.published, "the child's own publisher")
        report["child_published_by"] = [name for _, name in child.published]
        # A later request is published in a later round, once the round that published the
        # child's figures (and any of the parent's wrongly kept) is complete.
        last = Figures(0)
        request_publish(last)
        wait(lambda: last.published, "a later publish in the child")
        report["parents_published_in_child"] = len(still_pending.published)
    finally:
        os.write(write, json.dumps(report).encode())
        os._exit(0)
os.close(write)
_, status = os.waitpid(pid, 0)
with os.fdopen(read) as pipe:
    seen["child"] = json.loads(pipe.read() or "{}")
blocker.release.set()
wait(lambda: still_pending.published, "the parent's pending figures, in the parent")
seen["parent_published_by_pid"] = [p == os.getpid() for p, _ in still_pending.published]
print(json.dumps(seen))
"""


def test_the_first_publish_request_of_a_process_registers_the_flush_hook_and_the_fork_reset() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # The flush hook: the emitter's flush published the pending figures, in the flushing thread.
    assert seen["flush_published"] == ["MainThread"]
    assert seen["accepted_after_flush"] == 1
    # The fork reset: the child's figures reach its own new publisher thread; the parent's stay the parent's.
    assert seen["child"] == {"child_published_by": ["netauto-publish"], "parents_published_in_child": 0}
    assert seen["parent_published_by_pid"] == [True]
