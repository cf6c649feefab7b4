"""Pushing configurations: each push is counted and timed by decorators, the batch reports what is pending."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from config_push.metrics import PENDING, PUSH_SECONDS, PUSHES
from netauto_statsd import counted, get_emitter, timed


class PushError(RuntimeError):
    """The device refused the configuration."""


@dataclass(frozen=True)
class Device:
    """A device to configure; ``latency`` simulates how long it takes to accept a configuration."""

    name: str
    site: str
    latency: float = 0.01
    refuses: bool = False


def _site(device: Device, *_: object, **__: object) -> dict[str, object]:
    return {"site": device.site}


@counted(PUSHES.name, _site)
@timed(PUSH_SECONDS.name, _site)
def push_config(device: Device, config: str) -> int:
    """Push ``config`` to ``device``; return the bytes sent. Raises :class:`PushError` if it refuses."""
    time.sleep(device.latency)  # stands in for the SSH/NETCONF session
    if device.refuses:
        raise PushError(f"{device.name} refused the configuration")
    return len(config.encode())


def push_batch(devices: Iterable[Device], config: str, on_error: Callable[[Device, Exception], None]) -> int:
    """Push ``config`` to every device, one after another; return how many succeeded."""
    queue = list(devices)
    emitter = get_emitter()
    done = 0
    for index, device in enumerate(queue):
        waiting = sum(1 for d in queue[index:] if d.site == device.site)
        emitter.gauge(PENDING.name, waiting, {"site": device.site})
        try:
            push_config(device, config)
            done += 1
        except PushError as exc:
            on_error(device, exc)
    for site in {d.site for d in queue}:
        emitter.gauge(PENDING.name, 0, {"site": site})
    return done
