"""What the aiohttp integration tests share: polling with a deadline, a bare websocket upgrade, a broken emitter.

The ``serve`` fixture (an app on a free loopback port, with a plain ``AppRunner``) is in
``conftest.py``. aiohttp is imported by the test modules that use these helpers.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

from netauto_statsd.emitter import Emitter

#: Scales every deadline of ``eventually``. A mutation run sets it below 1 (``NETAUTO_TEST_PATIENCE=0.4``):
#: a mutant that stops a figure from arriving fails at the deadline, which is most of its run time.
PATIENCE = float(os.environ.get("NETAUTO_TEST_PATIENCE", "1"))


async def eventually(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll ``check`` on the event loop until it is truthy or the deadline passes."""
    loop = asyncio.get_running_loop()
    timeout *= PATIENCE
    deadline = loop.time() + timeout
    while True:
        result = check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)  # poll interval: lets the server run


async def raw_upgrade(port: int, path: str) -> socket.socket:
    """Ask for a websocket upgrade on a bare socket (which can then stop reading, or vanish)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        sock,
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode(),
    )
    return sock


def vanish(sock: socket.socket) -> None:
    """Reset the connection (SO_LINGER 0): no close frame, no FIN handshake."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class BrokenEmitter(Emitter):
    """An emitter whose every emission and flush fails inside (a bug in metrics code, a dead disk...)."""

    def _emit(self, name: str, kind: str, value: float, tags: Any) -> None:
        raise OSError("metrics are broken")

    def histogram_many(self, name: str, values: Any, tags: Any = None) -> None:
        raise OSError("metrics are broken")

    def flush(self) -> int:
        raise OSError("flush is broken")
