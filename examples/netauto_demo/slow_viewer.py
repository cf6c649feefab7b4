"""A slow live-view viewer: a browser on a bad link that reads far slower than the app sends.

It speaks just enough of the websocket protocol (RFC 6455) over a socket whose
receive buffer is a few KiB, and reads a few KiB at a time with pauses. The
kernel buffers fill, the app's transport goes over its high-water mark and the
app's ``send`` has to wait: real backpressure, which the live-view
instrumentation observes as "send waits" (``liveview.send_latency``) and a
growing transport backlog. aiohttp's own client cannot do it: it keeps reading
into memory whatever the handler does.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

#: bytes read per step, and the socket's receive buffer
READ_SIZE = 4096
#: pause between two reads: about READ_SIZE / PAUSE = 400 KiB/s
PAUSE = 0.01
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (every client frame must be masked), payload < 126 bytes."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def watch_slowly(host: str, port: int, path: str, seconds: float = 3.0, stall: float = 0.5) -> int:
    """Open the live view at ``path``, say hello, read it slowly for ``seconds``, freeze, then leave (1001).

    For the last ``stall`` seconds it reads nothing at all (a frozen tab), so the
    app's last send is still waiting when the viewer goes.

    Returns the payload bytes received. Raises ``ConnectionError`` if the
    upgrade is refused or the app closes the connection early.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, READ_SIZE)  # also turns receive autotuning off
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    reader, writer = await asyncio.open_connection(sock=sock, limit=READ_SIZE)
    try:
        await _handshake(reader, writer, host, port, path)
        received = await _read_for(reader, writer, seconds)
        await asyncio.sleep(stall)
        # going away without reading the rest: the app's pending send fails, as with a closed tab
        writer.write(_frame(_CLOSE, struct.pack("!H", 1001)))
        return received
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int,
                     path: str) -> None:  # fmt: skip
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    status_line = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n", 1)[0]
    if b" 101 " not in status_line:
        raise ConnectionError(f"live view refused the upgrade: {status_line!r}")
    writer.write(_frame(_TEXT, b"hello"))


async def _read_for(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float) -> int:
    """Read frames ``READ_SIZE`` bytes at a time with a pause after each, for ``seconds``."""
    received = 0
    deadline = asyncio.get_running_loop().time() + seconds
    pending = 0  # payload bytes of the current frame still to read
    while asyncio.get_running_loop().time() < deadline:
        if pending:
            data = await reader.read(min(READ_SIZE, pending))
            if not data:
                raise ConnectionError("the live view closed the connection")
            pending -= len(data)
            received += len(data)
            await asyncio.sleep(PAUSE)
            continue
        first, second = await reader.readexactly(2)
        opcode, length = first & 0x0F, second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await reader.readexactly(8))
        if opcode == _CLOSE:
            raise ConnectionError("the live view closed the session early")
        if opcode == _PING:
            writer.write(_frame(_PONG, await reader.readexactly(length)))
            continue
        pending = length
    return received
