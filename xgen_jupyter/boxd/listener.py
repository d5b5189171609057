"""The Unix socket: accepts local clients, learns who each is from SO_PEERCRED, and serves
length-prefixed JSON requests on a bounded number of threads.

Limits, so no client can take the service down: a request is at most MAX_REQUEST bytes and must
arrive whole within ``read_timeout`` seconds; an idle connection is closed after
``idle_timeout``; at most ``max_clients`` connections at once, ``per_user`` of them per uid.
A client over a limit gets an error reply ("busy") and is disconnected; it may retry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.errors import XGenError
from . import wire
from .peer import Peer, peer_of

log = logging.getLogger("xgen.boxd")

#: What a request handler returns: a reply, or an iterator of messages (a stream: events, a log).
Handler = Callable[[Peer, dict[str, Any]], Any]


class Busy(XGenError):
    status = 503


class TooManyWaiting(XGenError):
    status = 429


class Stream:
    """A streamed reply: each item goes out as one message until the iterator ends or the client leaves.

    ``opener``: the items made from the connection itself (a slot watches it to see the client leave).
    ``parked``: a request waiting in (or holding) a fair queue: counted apart from the calls
    (``per_user`` would cap a user's queued requests below the queue's own 429 limit, and waiting
    connections must not crowd out everyone's calls), at most ``parked_per_user`` per uid and
    ``max_parked`` in all; over either the client is told "TooManyWaiting" (its proxy: 429).
    """

    def __init__(self, items: Iterator[dict[str, Any]] | None = None, *,
                 opener: Callable[[socket.socket], Iterator[dict[str, Any]]] | None = None,
                 parked: bool = False) -> None:
        self.items, self.opener, self.parked = items, opener, parked


def error_reply(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, XGenError):
        return {"ok": False, "status": exc.status, **exc.to_dict()}
    return {"ok": False, "status": 500, "error": "InternalError",
            "message": f"the box service failed: {type(exc).__name__}", "hint": "see the box service's log"}


class Listener:
    def __init__(self, path: Path, handler: Handler, *, allowed: set[str] | None = None, max_clients: int = 128,
                 per_user: int = 32, read_timeout: float = 10.0, idle_timeout: float = 120.0,
                 parked_per_user: int = 128, max_parked: int = 1024) -> None:
        self.parked_per_user, self.max_parked = parked_per_user, max_parked
        self._parked: dict[int, int] = {}
        self.path, self.handler, self.allowed = Path(path), handler, allowed
        self.max_clients, self.per_user = max_clients, per_user
        self.read_timeout, self.idle_timeout = read_timeout, idle_timeout
        self._lock = threading.Lock()
        self._count: dict[int, int] = {}
        self._total = 0
        self._closed = threading.Event()
        self._sock: socket.socket | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)  # our own from before a crash (the caller checked none answers)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o666)  # any local user may connect; who they are is the kernel's word
            sock.listen(256)
        except OSError as exc:
            sock.close()
            raise XGenError(f"cannot listen at {self.path}: {exc.strerror}",
                            "something else is there (another user's file?): use a folder only the service's "
                            "account can write, e.g. --socket /run/xgen/box.sock") from None
        self._sock = sock
        threading.Thread(target=self._accept_loop, name="xgen-boxd-accept", daemon=True).start()

    def stop(self) -> None:
        self._closed.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._closed.is_set():
                    return
                time.sleep(0.05)  # EMFILE and friends: back off rather than spin
                continue
            try:
                peer = peer_of(conn)
            except OSError:
                conn.close()
                continue
            refusal = self._admit(peer)
            if refusal is not None:
                self._refuse(conn, refusal)
                continue
            threading.Thread(target=self._serve, args=(conn, peer), name=f"xgen-boxd-{peer.user}",
                             daemon=True).start()

    def _admit(self, peer: Peer) -> XGenError | None:
        if self.allowed is not None and peer.user not in self.allowed and not peer.is_root:
            log.warning("xgen box: refused %s (uid %d): not in the allowed users", peer.user, peer.uid)
            return XGenError(f"{peer.user} may not use the box service on this machine",
                             "ask the administrator to add you to the service's allowed users")
        with self._lock:
            if self._total >= self.max_clients or self._count.get(peer.uid, 0) >= self.per_user:
                return Busy(f"the box service is busy ({self._total} connections, "
                            f"{self._count.get(peer.uid, 0)} of them {peer.user}'s)", "retry in a moment")
            self._total += 1
            self._count[peer.uid] = self._count.get(peer.uid, 0) + 1
        return None

    def _refuse(self, conn: socket.socket, exc: XGenError) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(1.0)
            wire.send(conn, error_reply(exc))
        conn.close()

    def _serve(self, conn: socket.socket, peer: Peer) -> None:
        try:
            while not self._closed.is_set():
                conn.settimeout(self.idle_timeout)
                try:
                    request = wire.recv(conn, deadline_after=self.read_timeout)
                except wire.Closed:
                    return
                except wire.WireError as exc:
                    conn.settimeout(1.0)
                    wire.send(conn, error_reply(exc))
                    return  # framing is lost: drop the connection
                conn.settimeout(self.idle_timeout)
                try:
                    reply = self.handler(peer, request)
                except Exception as exc:  # one bad request must not take the connection's thread down uncaught
                    if not isinstance(exc, XGenError):
                        log.exception("xgen box: %s's request %r failed", peer.user, request.get("op"))
                    wire.send(conn, error_reply(exc))
                    continue
                if isinstance(reply, Stream):
                    self._stream(conn, reply, peer)
                    return
                wire.send(conn, {"ok": True, "result": reply})
        except OSError:
            pass  # the client went away (or timed out): nothing to answer
        finally:
            conn.close()
            with self._lock:
                self._total -= 1
                self._count[peer.uid] -= 1
                if not self._count[peer.uid]:
                    del self._count[peer.uid]

    def _stream(self, conn: socket.socket, reply: Stream, peer: Peer) -> None:
        if reply.parked and not self._park(peer, 1):
            refusal = error_reply(TooManyWaiting(f"{peer.user} has {self.parked_per_user} requests waiting or "
                                                 f"running on this box, or the box {self.max_parked}", "retry later"))
            wire.send(conn, {**refusal, "limit": self.parked_per_user})
            return
        items = reply.opener(conn) if reply.opener is not None else reply.items or iter(())
        try:
            wire.send(conn, {"ok": True, "result": "stream"})
            for item in items:
                wire.send(conn, item)
            wire.send(conn, {"kind": "end"})  # an end the client can tell from the service dying
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # unsubscribe
            if reply.parked:
                self._park(peer, -1)

    def _park(self, peer: Peer, n: int) -> bool:
        """Move a connection from the calls' counts to the waiting ones (n=1), or back (n=-1)."""
        with self._lock:
            mine, total = self._parked.get(peer.uid, 0), sum(self._parked.values())
            if n > 0 and (mine >= self.parked_per_user or total >= self.max_parked):
                return False
            self._parked[peer.uid] = mine + n
            self._count[peer.uid] = self._count.get(peer.uid, 0) - n
            self._total -= n
            return True
