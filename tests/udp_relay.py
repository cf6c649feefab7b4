"""A UDP port that is down until :meth:`UdpRelay.open`, then forwards every datagram to a real exporter.

It stands for an exporter that is unreachable for a while and then comes back
(a restart, a redeploy): while it is down, the port is closed and the kernel
answers with ICMP "port unreachable", exactly as for a dead exporter; once open,
datagrams reach the real statsd_exporter unchanged. :func:`run_demo_through_outage`
starts ``netauto-statsd demo`` against such a port and opens it once the demo has
said the exporter is not answering.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from netauto_statsd.tooling.exporter import free_port


class UdpRelay:
    """Closed UDP port on 127.0.0.1 that becomes a forwarder to ``target_port``."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self._target = ("127.0.0.1", target_port)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.forwarded = 0

    def open(self) -> None:
        """Bind the port and forward from now on."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", self.port))
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._forward, name="udp-relay", daemon=True)
        self._thread.start()

    def _forward(self) -> None:
        sock = self._sock
        assert sock is not None
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            while True:
                try:
                    data = sock.recv(65535)
                except TimeoutError:
                    if self._closing:  # everything queued before close() is forwarded
                        return
                    continue
                except OSError:
                    return
                out.sendto(data, self._target)
                self.forwarded += 1
        finally:
            out.close()

    def close(self) -> None:
        """Forward what already arrived, then stop and release the port."""
        self._closing = True
        if self._thread is not None:
            self._thread.join(5)
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


#: what ``netauto-statsd demo`` says when its datagrams are refused, and when they flow again
DEMO_DOWN = "is not answering"
DEMO_BACK = "answers again"


def run_demo_through_outage(
    command: Sequence[str], env: Mapping[str, str], exporter_port: int, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (a ``netauto-statsd demo``) against an exporter that is down when it starts.

    Its ``DD_DOGSTATSD_URL`` points at a closed :class:`UdpRelay` port; as soon as the
    demo says it is not answering (polled in its stderr: datagrams were refused and
    counted), the relay opens and forwards to ``exporter_port`` - the exporter is back,
    and the count of refused datagrams arrives with the next flush.
    """
    relay = UdpRelay(exporter_port)
    env = {**env, "DD_DOGSTATSD_URL": f"udp://127.0.0.1:{relay.port}"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(list(command), stdout=out, stderr=err, text=True, cwd=cwd, env=env)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                err.seek(0)
                if DEMO_DOWN in err.read():
                    break
                time.sleep(0.1)
            relay.open()
            proc.wait(max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            relay.close()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
