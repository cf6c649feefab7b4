"""The live proof against real exporters that lose its traffic: the loss is named, the mapping is not blamed.

Two real ways to lose it, each through a wrapper that starts the real
statsd_exporter as the proof asks (its flags, its ports) and changes one thing:

* ``--statsd.read-buffer=1``: the kernel's smallest receive buffer. The client's
  pacer sees a socket that never has room, calls it stalled and counts every
  datagram as not sent (instead of letting the kernel drop it unseen);
* the exporter is stopped (SIGSTOP) right after it binds its UDP port, another
  sender floods the socket until the kernel drops datagrams, and the exporter
  resumes: the kernel's drop counter of that socket (read from ``/proc/net/udp``
  by the wrapper, from netlink ``sock_diag`` by the proof) is what the proof
  reports.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from netauto_statsd.catalog import Metric, find
from netauto_statsd.tooling.live_check import LOSS_FIX, live_check
from tests.support import MAPPING

LOST = "traffic was lost on the way to the exporter: "


def metrics() -> list[Metric]:
    found = [find("run.created"), find("runner.duration")]
    assert None not in found
    return [m for m in found if m is not None]


def wrapper(tmp_path: Path, body: str) -> str:
    """An executable that runs the real exporter (``REAL``) as ``body`` says, with the proof's arguments."""
    path = tmp_path / "statsd_exporter"
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return str(path)


TINY_BUFFER = """import os, sys
os.execv({real!r}, [{real!r}, *sys.argv[1:], "--statsd.read-buffer=1"])
"""


@pytest.mark.exporter
def test_packets_the_client_could_not_send_are_a_loss_not_the_mappings(exporter_binary: str, tmp_path: Path) -> None:
    """Before: every context was reported as `did not produce`, each with "this rule makes the exporter differ".

    How many packets a wire takes depends on where the client's flush thread cuts the traffic (one more
    packet when it flushes in the middle): the counts are read from the finding, the rest is exact.
    """
    binary = wrapper(tmp_path, TINY_BUFFER.format(real=exporter_binary))
    result = live_check(binary, MAPPING, metrics(), "netauto", plain=True, timeout=1.0)
    assert len(result.problems) == 1
    problem, fix, metric = result.problems[0]
    found = re.fullmatch(
        re.escape(LOST) + r"\[dogstatsd\] the client could not send (\d+) packet\(s\); \[statsd\] the client could "
        r"not send (\d+) packet\(s\) " + re.escape("(4 context(s) arrived short, not compared with the mapping: "
        "dogstatsd:run.created, dogstatsd:runner.duration, statsd:run.created, statsd:runner.duration)"),
        problem,
    )  # fmt: skip
    assert found is not None, problem
    dogstatsd, statsd = int(found[1]), int(found[2])
    assert 0 < dogstatsd < statsd  # the plain wire sends one value per line: many more packets for the burst
    assert (fix, metric) == (LOSS_FIX, None)
    assert result.notes == [
        f"live proof against {binary}: 2 metrics x 2 wire format(s), 4 contexts compared sample for sample"
    ]


STOP_AND_FLOOD = """import os, signal, socket, subprocess, sys, time
real, record = {real!r}, {record!r}
if "--version" in sys.argv:
    os.execv(real, [real, *sys.argv[1:]])
port = int(next(a for a in sys.argv if a.startswith("--statsd.listen-udp=")).rsplit(":", 1)[1])
child = subprocess.Popen([real, *sys.argv[1:]])
signal.signal(signal.SIGTERM, lambda *_: (child.terminate(), child.wait(), sys.exit(0)))


def sockets():
    lines = open("/proc/net/udp").read().splitlines()[1:]
    return [line.split() for line in lines if int(line.split()[1].rsplit(":", 1)[1], 16) == port]


deadline = time.monotonic() + 20
while not sockets() and time.monotonic() < deadline and child.poll() is None:
    time.sleep(0.002)
os.kill(child.pid, signal.SIGSTOP)  # it reads nothing now: the kernel drops what its buffer cannot hold
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
    for _ in range(400):
        flood.sendto(b"flood.line:1|c\\n" * 90, ("127.0.0.1", port))  # ~1,400 bytes each; the mapping drops them
open(record, "w").write(str(sum(int(fields[-1]) for fields in sockets())))
os.kill(child.pid, signal.SIGCONT)
sys.exit(child.wait())
"""


@pytest.mark.exporter
def test_datagrams_the_kernel_dropped_at_the_exporters_socket_are_named(exporter_binary: str, tmp_path: Path) -> None:
    """The exporter never sees these (no counter of its own moves): the proof reads the socket's drop counter."""
    record = tmp_path / "drops"
    binary = wrapper(tmp_path, STOP_AND_FLOOD.format(real=exporter_binary, record=str(record)))
    result = live_check(binary, MAPPING, metrics(), "netauto", plain=False)
    dropped = int(record.read_text())
    assert dropped > 0  # 400 full datagrams into a default (~208 KiB) buffer that nobody reads
    assert result.problems == [
        (f"{LOST}the exporter's socket dropped {dropped} datagram(s) (its receive buffer was full)", LOSS_FIX, None)
    ]  # the proof's own traffic, paced, arrived in full: nothing arrived short
