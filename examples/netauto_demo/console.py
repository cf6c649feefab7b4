"""What the demo tells the operator: arguments checked, where metrics go, whether they arrive.

Everything goes to stderr as ``netauto-statsd demo: ...`` so stdout keeps only
the final summary.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import Callable, Mapping

from yarl import URL

PROG = "netauto-statsd demo"
#: DogStatsD's default destination (the client's) and statsd_exporter's default UDP listener
CLIENT_DEFAULT = "localhost:8125"
EXPORTER_DEFAULT = ":9125"


def say(message: str) -> None:
    """Tell the operator what the demo is doing (stderr, so stdout stays clean)."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


class UsageError(ValueError):
    """A command-line argument the demo cannot run with (exit status 2, as argparse does)."""


def validate(args: argparse.Namespace) -> None:
    """Check the demo's arguments; raise :class:`UsageError` naming the first bad one."""
    if not (math.isfinite(args.rate) and args.rate > 0):
        raise UsageError(f"argument --rate: must be a number of runs per second > 0, got {args.rate:g}")
    if not (math.isfinite(args.duration) and args.duration >= 0):
        raise UsageError(f"argument --duration: must be seconds >= 0 (0 runs until stopped), got {args.duration:g}")
    if args.devices < 1:
        raise UsageError(f"argument --devices: must be >= 1, got {args.devices}")
    if args.viewers < 0:
        raise UsageError(f"argument --viewers: must be >= 0, got {args.viewers}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"argument --port: must be 0..65535 (0: any free port), got {args.port}")
    if args.role == "load":
        if not args.target:
            raise UsageError("argument --target: --role load needs the app's URL, e.g. --target http://127.0.0.1:8080")
        check_target(args.target)


def check_target(target: str) -> None:
    """``target`` must be an absolute ``http(s)://host[:port]`` URL."""
    try:
        url = URL(target)
        usable = url.scheme in ("http", "https") and bool(url.host) and url.port is not None
    except ValueError:
        usable = False
    if not usable:
        raise UsageError(f"argument --target: expected an app URL such as http://127.0.0.1:8080, got {target!r}")


def usage_error(error: UsageError) -> int:
    """Print ``error`` the way argparse does and return its exit status, 2."""
    print(f"usage: {PROG} [--role ROLE] [--duration S] [--rate N] ... (see {PROG} --help)", file=sys.stderr)
    print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
    return 2


def destination(env: Mapping[str, str] | None = None) -> str:
    """Where the client sends metrics, and which setting says so (mirrors datadog's resolution)."""
    env = os.environ if env is None else env
    if env.get("DD_DOGSTATSD_DISABLE", "").lower() in {"1", "true", "yes", "on"}:
        return "nowhere (DD_DOGSTATSD_DISABLE is set)"
    if env.get("DD_DOGSTATSD_URL"):
        return f"{env['DD_DOGSTATSD_URL']} (DD_DOGSTATSD_URL)"
    host, port = env.get("DD_AGENT_HOST"), env.get("DD_DOGSTATSD_PORT")
    if host or port:
        return f"udp://{host or 'localhost'}:{port or 8125} (DD_AGENT_HOST / DD_DOGSTATSD_PORT)"
    return (
        f"udp://{CLIENT_DEFAULT} (the client's default: nothing set). A statsd_exporter listens on "
        f"{EXPORTER_DEFAULT} by default: set DD_DOGSTATSD_URL=udp://127.0.0.1:9125 to reach one"
    )


class ExporterWatch:
    """Says once when metrics stop arriving (packets fail to send) and once when they flow again.

    A UDP sender only learns that nobody listens from the ICMP errors a local
    host returns; ``stats()['packets_failed']`` rising is that signal. A socket
    reset after an error makes the next send look fine, so "answers again" needs
    ``RECOVERED_AFTER`` checks in a row that flushed without a failure.
    """

    RECOVERED_AFTER = 3

    def __init__(self, stats: Callable[[], dict[str, int]], where: str, tell: Callable[[str], None] = say) -> None:
        self.stats = stats
        self.where = where
        self.tell = tell
        self.down = False
        self.clean = 0
        self.last = stats()

    def check(self) -> None:
        """Compare with the last look; report a change of state."""
        now = self.stats()
        failed = now["packets_failed"] - self.last["packets_failed"]
        flushed = now["flushes"] - self.last["flushes"]
        self.last = now
        if failed > 0:
            self.clean = 0
            if not self.down:
                self.down = True
                self.tell(
                    f"metrics: the exporter at {self.where} is not answering ({now['packets_failed']} packets "
                    "failed so far); metrics are lost until it is back, the demo goes on"
                )
        elif flushed > 0 and self.down:
            self.clean += 1
            if self.clean >= self.RECOVERED_AFTER:
                self.down = False
                self.tell(f"metrics: the exporter at {self.where} answers again")

    async def run(self, every: float = 1.0) -> None:
        """Check every ``every`` seconds until cancelled."""
        while True:
            await asyncio.sleep(every)
            self.check()
