"""Waiting slots' connections (the streamed op ``slot``) are counted apart from calls on the box
service's socket: they neither hit ``per_user`` before the fair queue's own limit nor crowd out
calls, and are capped on their own (``parked_per_user``): over it a 429-kind refusal. A real
Listener on a real Unix socket (SO_PEERCRED), its handler parking each ``wait`` until the client leaves."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xgen_jupyter.boxd import wire
from xgen_jupyter.boxd.listener import Listener, Stream
from xgen_jupyter.boxd.peer import Peer

if not hasattr(socket, "SO_PEERCRED"):
    pytest.skip("SO_PEERCRED is Linux-only", allow_module_level=True)


def handler(peer: Peer, req: dict[str, Any]) -> Any:
    if req.get("op") != "wait":
        return {"user": peer.user}

    def held(conn: socket.socket) -> Iterator[dict[str, Any]]:
        yield {"kind": "granted"}
        while not select.select([conn], [], [], 5)[0]:
            pass  # until the client closes

    return Stream(opener=held, parked=True)


def connect(path: Path, op: str) -> tuple[socket.socket, dict[str, Any]]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    wire.send(s, {"op": op})
    return s, wire.recv(s, wire.MAX_REPLY)


def test_waiting_connections_have_their_own_cap_and_leave_calls_alone(tmp_path: Path) -> None:
    path = tmp_path / "box.sock"
    listener = Listener(path, handler, max_clients=4, per_user=2, parked_per_user=5)
    listener.start()
    held: list[socket.socket] = []
    try:
        for _ in range(5):  # beyond per_user (2) and max_clients (4): waiting ones count apart
            s, first = connect(path, "wait")
            assert first == {"ok": True, "result": "stream"}, first
            assert wire.recv(s, wire.MAX_REPLY) == {"kind": "granted"}
            held.append(s)
        s, refused = connect(path, "wait")  # the sixth: over parked_per_user
        s.close()
        assert refused["ok"] is False and refused["error"] == "TooManyWaiting" and refused["status"] == 429, refused
        assert refused["limit"] == 5
        s, answered = connect(path, "hello")  # calls still served meanwhile
        s.close()
        assert answered["ok"] is True and answered["result"]["user"], answered
        for s in held:
            s.close()
        deadline = time.monotonic() + 10
        while (any(listener._parked.values()) or listener._total) and time.monotonic() < deadline:
            time.sleep(0.05)  # each parked connection's thread sees its client leave
        assert not any(listener._parked.values()) and listener._total == 0 and not listener._count, \
            (listener._parked, listener._total, listener._count)
    finally:
        for s in held:
            s.close()
        listener.stop()
