"""Child processes for the local stack: each in its own process group, always stopped, logs kept.

A process group per child means stopping it also stops what it started (RQ's
work horses, a shell's children): nothing is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def find_binary(name: str, root: Path) -> str | None:
    """``name`` on PATH, in the repo's ``.tools/bin`` (scripts/stack, scripts/test) or Go's bin directory."""
    for candidate in (shutil.which(name), root / ".tools" / "bin" / name, Path.home() / "go" / "bin" / name):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def port_free(port: int, kind: int = socket.SOCK_STREAM) -> bool:
    """True if ``port`` can be bound on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int, kind: int = 0) -> int:
    """``preferred`` if free (0: never), else any free port on 127.0.0.1 (``kind`` 0: TCP)."""
    kind = kind or socket.SOCK_STREAM
    if preferred and port_free(preferred, kind):
        return preferred
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str) -> bool:
    """True if ``url`` answers 2xx within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return 200 <= int(response.status) < 300
    except (OSError, ValueError):
        return False


class Child:
    """One started process (group), its log file and how to stop it."""

    def __init__(self, name: str, args: Sequence[str], log_dir: Path, env: Mapping[str, str] | None = None,
                 stop_timeout: float = 15.0) -> None:  # fmt: skip
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.stop_timeout = stop_timeout
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                list(args), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None, start_new_session=True,
            )  # fmt: skip
        self.pgid = self.proc.pid  # start_new_session: the child leads its own group

    def alive(self) -> bool:
        """True while the group leader runs."""
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The last lines of its log."""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until true; raise RuntimeError with the log if it exits or times out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) before {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no {what} within {timeout:.0f}s:\n{self.tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after ``stop_timeout``."""
        try:
            os.killpg(self.pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + self.stop_timeout
        while group_alive(self.pgid) and time.monotonic() < deadline:
            time.sleep(0.05)  # the leader is gone; its children (work horses) finish their SIGTERM
        if group_alive(self.pgid):
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.wait(5)


def group_alive(pgid: int) -> bool:
    """True if any process is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_registry(path: Path, children: Sequence[Child]) -> None:
    """Record every started group (name, pid, pgid, log) in ``path``: for tests and for a stuck stop."""
    rows = [{"name": c.name, "pid": c.proc.pid, "pgid": c.pgid, "log": str(c.log_path)} for c in children]
    path.write_text(json.dumps(rows, indent=1))


#: set in the environment of every process the stack starts; inherited by their children
STACK_VARIABLE = "NETAUTO_STACK_RUN"


def strays(run_id: str) -> list[int]:
    """Pids of processes whose environment holds ``NETAUTO_STACK_RUN=<run_id>``: ours and their children.

    An RQ work horse leaves its worker's process group (``setsid``), so a group
    kill can miss it; it still inherited the variable. Linux only (``/proc``);
    elsewhere, none.
    """
    needle = f"\0{STACK_VARIABLE}={run_id}\0".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            if needle in b"\0" + (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def sweep(run_id: str, timeout: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL, every process :func:`strays` finds; returns their pids."""
    found = strays(run_id)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in strays(run_id):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while strays(run_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not strays(run_id):
            break
    return found
