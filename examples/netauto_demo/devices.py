"""Simulated devices: how long a command takes, how much it prints, how often it fails.

Profiles are per site and protocol so dashboards have something to compare:
telnet is slow and flaky, netconf is chatty, one site is far away.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SITES = ("par1", "lon1", "fra1", "nyc1")
PROTOCOLS = ("ssh", "telnet", "netconf")
COMMANDS = ("show version", "show interfaces", "show ip route", "show running-config", "get-config")


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


def profile(site: str, protocol: str) -> Profile:
    """The profile of a device at ``site`` over ``protocol``."""
    base = BASE.get(protocol, BASE["ssh"])
    factor = FAR_SITES.get(site, 1.0)
    return Profile(base.chunk_latency * factor, base.chunks, base.chunk_bytes, base.failure_rate, base.timeout_rate)


class DeviceError(RuntimeError):
    """The simulated device answered with an error."""


def device_name(index: int) -> str:
    """Stable name of the ``index``-th demo device."""
    return f"{SITES[index % len(SITES)]}-{PROTOCOLS[index % len(PROTOCOLS)]}-{index:03d}"


def fake_output(rng: random.Random, size: int, command: str, seq: int) -> bytes:
    """Plausible device output of about ``size`` bytes."""
    line = f"{command} [{seq}] interface Gi0/{rng.randint(0, 47)} up {rng.randint(0, 10**6)} pkts\n"
    return (line * (size // len(line) + 1)).encode()[:size]
