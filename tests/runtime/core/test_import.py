"""Importing netauto_statsd is cheap and inert, and needs none of the optional frameworks.

Each check runs in a fresh interpreter so nothing this test session imported
already can hide a side effect.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CORE_MODULES = [
    "netauto_statsd",
    "netauto_statsd.catalog",
    "netauto_statsd.config",
    "netauto_statsd.tags",
    "netauto_statsd.wire",
    "netauto_statsd.wire.base",
    "netauto_statsd.wire.dogstatsd",
    "netauto_statsd.emitter",
    "netauto_statsd.scopes",
    "netauto_statsd.instrument",
    "netauto_statsd.testing",
    "netauto_statsd.wire.plain",
    "netauto_statsd.tooling.mapping",
    "netauto_statsd.tooling.cli",
]
FRAMEWORKS = ["aiohttp", "rq", "sqlalchemy"]

PROBE = textwrap.dedent(
    """
    import atexit, importlib, json, os, socket, sys, threading

    class BlockFrameworks:
        # Behave as if aiohttp, rq and sqlalchemy were not installed.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in FRAMEWORKS:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    FRAMEWORKS = set(json.loads(sys.argv[1]))
    sys.meta_path.insert(0, BlockFrameworks())
    seen = []

    class SpySocket(socket.socket):
        def __init__(self, *args, **kwargs):
            seen.append("socket")
            super().__init__(*args, **kwargs)

    def spy(label, real, ours_only=False):
        def wrapper(*args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            # the stdlib (logging, random...) registers its own hooks; only ours count
            if not ours_only or caller.split(".")[0] in ("netauto_statsd", "datadog", "statsd"):
                seen.append(label)
            return real(*args, **kwargs)
        return wrapper

    socket.socket = SpySocket
    socket.getaddrinfo = spy("getaddrinfo", socket.getaddrinfo)
    socket.gethostbyname = spy("gethostbyname", socket.gethostbyname)
    threading.Thread.start = spy("thread", threading.Thread.start)
    os.register_at_fork = spy("register_at_fork", os.register_at_fork, ours_only=True)
    atexit.register = spy("atexit", atexit.register, ours_only=True)

    framework_errors = []
    for name in FRAMEWORKS:
        try:
            importlib.import_module(name)
        except ImportError:
            framework_errors.append(name)

    for name in json.loads(sys.argv[2]):
        importlib.import_module(name)
    report = {
        "blocked": sorted(framework_errors),
        "at_import": list(seen),
        "loaded": sorted(m for m in ("datadog", "statsd", *FRAMEWORKS) if m in sys.modules),
    }

    # Control: the spies do see what the first emission does.
    from netauto_statsd.config import Settings
    from netauto_statsd.emitter import Emitter
    emitter = Emitter(Settings(host="127.0.0.1", port=9, flush_interval=60))
    emitter.increment("run.created", tags={"site": "par1", "protocol": "ssh"})
    emitter.flush()
    report["at_first_use"] = sorted(set(seen))
    emitter.close()
    print(json.dumps(report))
    """
)


def probe(modules: list[str]) -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(FRAMEWORKS), json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, list[str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_import_needs_no_framework_and_has_no_side_effect() -> None:
    report = probe(CORE_MODULES)
    assert report["blocked"] == sorted(FRAMEWORKS), "the blocker must make the frameworks unimportable"
    assert report["at_import"] == [], f"importing opened/started: {report['at_import']}"
    assert report["loaded"] == [], "datadog / statsd / frameworks are imported lazily, on first use"
    # control: the same spies catch the socket, the flush thread and the hooks of the first emission
    assert {"socket", "thread", "register_at_fork", "atexit"} <= set(report["at_first_use"])


def test_top_level_package_alone_is_inert() -> None:
    report = probe(["netauto_statsd"])
    assert report["at_import"] == [] and report["loaded"] == []
