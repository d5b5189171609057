"""The socket's framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON (an object).

Requests are capped (MAX_REQUEST) so a client cannot make the service buffer gigabytes; replies
may be larger (a log tail) and are capped by the client at MAX_REPLY.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

from ..core.errors import XGenError

MAX_REQUEST = 1024 * 1024
MAX_REPLY = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")


class WireError(XGenError):
    """A frame that is not a length-prefixed JSON object, too big, or cut off."""


class Closed(WireError):
    """The peer closed the connection cleanly between messages."""


def _recv_exact(sock: socket.socket, n: int, started: bool, deadline: float | None = None) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WireError(f"message not complete in time ({len(buf)} of {n} bytes)")
            sock.settimeout(left)
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
        except TimeoutError:
            if deadline is None:
                raise
            raise WireError(f"message not complete in time ({len(buf)} of {n} bytes)") from None
        if not chunk:
            if not buf and not started:
                raise Closed("connection closed")
            raise WireError(f"connection closed mid-message ({len(buf)} of {n} bytes)")
        buf += chunk
    return bytes(buf)


def recv(sock: socket.socket, limit: int = MAX_REQUEST, deadline_after: float | None = None) -> dict[str, Any]:
    """One message; WireError for a bad or oversized one (the caller then drops the connection).

    ``deadline_after``: once the first byte is in, the whole message must arrive within this many
    seconds (a client trickling bytes cannot hold a thread).
    """
    first = sock.recv(1)
    if not first:
        raise Closed("connection closed")
    deadline = None if deadline_after is None else time.monotonic() + deadline_after
    (size,) = _HEADER.unpack(first + _recv_exact(sock, _HEADER.size - 1, True, deadline))
    if size > limit:
        raise WireError(f"message of {size} bytes is over the limit of {limit}", "send smaller requests")
    body = _recv_exact(sock, size, True, deadline)
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"message is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireError(f"message must be a JSON object, not {type(data).__name__}")
    return data


def encode(data: dict[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"), default=str).encode()
    return _HEADER.pack(len(body)) + body


def send(sock: socket.socket, data: dict[str, Any]) -> None:
    sock.sendall(encode(data))
