"""A client of the box service: one short connection per call, retried while the service restarts.

Calls that only read (and ``route``) are retried when the connection breaks mid-call; a load or
an unload whose reply was lost is not sent twice: the caller gets ServiceUnavailable saying so.
The socket is trusted only if root, this user, or ``$XGEN_BOX_USER`` owns it: in a folder every
user may write, anyone could put a socket of their own there first.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.errors import XGenError, error_class
from . import wire

SOCKET_ENV = "XGEN_BOX_SOCKET"
SERVICE_USER_ENV = "XGEN_BOX_USER"
SOCKET_NAME = "box.sock"
#: Ops that change nothing (or change only a timestamp): safe to send again after a lost reply.
IDEMPOTENT = frozenset({"hello", "hardware", "backends", "models", "plan", "servers", "get", "logs", "box", "route",
                        "touch", "share"})


class ServiceUnavailable(XGenError):
    """The box service does not answer (stopped, restarting) or the connection broke."""

    status = 503


class RemoteError(XGenError):
    """An error the service answered with, of a kind this client has no class for (status kept)."""

    def __init__(self, name: str, message: str, hint: str | None, status: int) -> None:
        super().__init__(message, hint)
        self.name, self.status = name, status

    def to_dict(self) -> dict[str, str | None]:
        return {**super().to_dict(), "error": self.name}


def rebuild(reply: dict[str, Any]) -> XGenError:
    name, message = str(reply.get("error")), str(reply.get("message"))
    hint = reply.get("hint") if isinstance(reply.get("hint"), str) else None
    cls = error_class(name)
    if cls is XGenError:  # the service's own kinds (Forbidden, NotReady, Busy): keep name and status
        return RemoteError(name, message, hint, int(reply.get("status") or 500))
    return cls(message, hint)


def trusted_owners() -> set[int]:
    owners = {0, os.getuid()}
    name = os.environ.get(SERVICE_USER_ENV)
    if name:
        with contextlib.suppress(KeyError):
            owners.add(pwd.getpwnam(name).pw_uid)
    return owners


def find_socket(shared_dir: Path | str | None) -> Path | None:
    """``$XGEN_BOX_SOCKET``, else ``<shared_dir>/box.sock`` if a trusted owner's socket is there."""
    env = os.environ.get(SOCKET_ENV)
    path = Path(env) if env else Path(shared_dir) / SOCKET_NAME if shared_dir else None
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return path if stat.S_ISSOCK(st.st_mode) and st.st_uid in trusted_owners() else None


class BoxClient:
    def __init__(self, path: Path | str, timeout: float = 330.0, retry_for: float = 15.0) -> None:
        self.path, self.timeout, self.retry_for = Path(path), timeout, retry_for

    def _connect(self) -> socket.socket:
        st = os.stat(self.path)  # FileNotFoundError while the service restarts: retried
        if st.st_uid not in trusted_owners():
            raise XGenError(f"the box socket {self.path} belongs to uid {st.st_uid}, not to root or the service",
                            f"someone else's socket: ask the administrator (set ${SERVICE_USER_ENV})")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            raise
        return sock

    def _exchange(self, op: str, args: dict[str, Any]) -> tuple[socket.socket, dict[str, Any]]:
        """Connect (retrying while the service is away), send, read the first reply."""
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            sent = False
            sock = None
            try:
                sock = self._connect()
                try:
                    wire.send(sock, {"op": op, **args})
                except OSError:  # refused at the door: the service said why and closed; read that
                    sock.settimeout(2.0)
                    reply = wire.recv(sock, wire.MAX_REPLY)
                else:
                    sent = True
                    reply = wire.recv(sock, wire.MAX_REPLY)
                if reply.get("ok") is False and reply.get("error") == "Busy":
                    raise ConnectionRefusedError("busy")
                return sock, reply
            except (OSError, wire.WireError) as exc:
                if sock is not None:
                    sock.close()
                if sent and op not in IDEMPOTENT and not isinstance(exc, ConnectionRefusedError):
                    raise ServiceUnavailable(
                        f"the connection to the box service broke while it handled {op!r}: {exc}",
                        "it may or may not have been done: look at your servers, then retry") from None
                if time.monotonic() + delay > deadline:
                    raise ServiceUnavailable(
                        f"the box service at {self.path} does not answer: {exc}",
                        "it may be restarting: retry in a moment; if it stays down, tell the administrator") from None
                time.sleep(delay)
                delay = min(1.0, delay * 2)

    def call(self, op: str, **args: Any) -> Any:
        sock, reply = self._exchange(op, args)
        sock.close()
        if not reply.get("ok"):
            raise rebuild(reply)
        return reply.get("result")

    def stream(self, op: str, **args: Any) -> Iterator[dict[str, Any]]:
        """Messages of a streamed reply until the service ends it; ServiceUnavailable if it goes away."""
        sock, reply = self._exchange(op, args)
        try:
            if not reply.get("ok"):
                raise rebuild(reply)
            sock.settimeout(60.0)  # the service pings every 15 s
            while True:
                try:
                    msg = wire.recv(sock, wire.MAX_REPLY)
                except (OSError, wire.WireError) as exc:  # Closed too: the service ends a stream with "end"
                    raise ServiceUnavailable(f"lost the box service at {self.path}: {exc}",
                                             "it may be restarting; reconnect") from None
                if msg.get("kind") == "end":
                    return
                if msg.get("kind") != "ping":
                    yield msg
        finally:
            sock.close()
