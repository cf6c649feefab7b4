"""Simulated devices: how long a command takes, how much it prints, how often it fails.

Profiles are per site and protocol so dashboards have something to compare:
telnet is slow and flaky, netconf is chatty, one site is far away.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from netauto_demo.faults import InjectedError

SITES = ("par1", "lon1", "fra1", "nyc1")
PROTOCOLS = ("ssh", "telnet", "netconf")
COMMANDS = ("show version", "show interfaces", "show ip route", "show running-config", "get-config")
#: a fleet audit runs this on every device: one short chunk
AUDIT_COMMAND = "show clock"


@dataclass(frozen=True)
class Profile:
    """Behaviour of a device class."""

    chunk_latency: float  # seconds between output chunks
    chunks: tuple[int, int]  # min, max chunks per run
    chunk_bytes: tuple[int, int]  # min, max bytes per chunk
    failure_rate: float  # probability the device errors mid-run
    timeout_rate: float  # probability the device stops answering


BASE = {
    "ssh": Profile(0.02, (3, 12), (200, 2000), 0.05, 0.02),
    "telnet": Profile(0.05, (3, 8), (100, 800), 0.12, 0.06),
    "netconf": Profile(0.03, (5, 20), (1000, 6000), 0.04, 0.02),
}
FAR_SITES = {"nyc1": 2.0}


def profile(site: str, protocol: str, command: str = "") -> Profile:
    """The profile of a device at ``site`` over ``protocol`` running ``command``."""
    base = BASE.get(protocol, BASE["ssh"])
    latency = base.chunk_latency * FAR_SITES.get(site, 1.0)
    if command == AUDIT_COMMAND:
        return Profile(latency, (1, 1), (40, 80), 0.0, 0.0)
    return Profile(latency, base.chunks, base.chunk_bytes, base.failure_rate, base.timeout_rate)


class DeviceError(RuntimeError, InjectedError):
    """The simulated device answered with an error."""


class DeviceTimeoutError(TimeoutError, InjectedError):
    """The simulated device stopped answering."""


def device_name(index: int) -> str:
    """Stable name of the ``index``-th demo device."""
    return f"{SITES[index % len(SITES)]}-{PROTOCOLS[index % len(PROTOCOLS)]}-{index:03d}"


def fake_output(rng: random.Random, size: int, command: str, seq: int) -> bytes:
    """Plausible device output of about ``size`` bytes."""
    line = f"{command} [{seq}] interface Gi0/{rng.randint(0, 47)} up {rng.randint(0, 10**6)} pkts\n"
    return (line * (size // len(line) + 1)).encode()[:size]


def console_log(device: str, block_bytes: int = 16_000) -> Iterator[str]:
    """A device console with debugging on: an endless flood of log lines, ``block_bytes`` at a time."""
    rng = random.Random(device)
    seq = 0
    while True:
        lines = []
        size = 0
        while size < block_bytes:
            seq += 1
            line = f"{device} %IP-7-PACKET: seq {seq} Gi0/{rng.randint(0, 47)} len {rng.randint(64, 1500)}\n"
            lines.append(line)
            size += len(line)
        yield "".join(lines)
