"""Box-wide fair queues: one FairQueue per server, for every user's requests, in the box service.

A proxy asks for a slot with the streamed op ``slot`` and holds the connection for the length of
its request: the service answers ``queued`` (this user's positions, the queue's length) as the queue
moves, then ``granted``; closing the connection releases the slot, or leaves the queue if it was
still waiting (a client gone while queued is dequeued at once, not when its turn comes). A service
restart drops every connection, so every slot and waiter with it. The queues are
core/scheduler/fairqueue.py's (round-robin across users by the peer's uid, FIFO within a user),
run on one asyncio loop of their own; connection threads wait on them through a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from typing import Any

from ..core.process.events import Event
from ..core.process.server import ManagedServer
from ..core.process.states import FINAL
from ..core.scheduler.fairqueue import FairQueue, QueueClosed, QueueFull

GONE = frozenset({*FINAL, "stopping"})
PING = 15.0
#: A waiter hears its position at most this often: every handoff moves everyone up one place, and
#: telling all n waiters each time (n threads woken, n messages) is what made a long queue slow.
UPDATE_EVERY = 1.0
Key = tuple[str, str]  # (owner, server name)


class BoxSlots:
    def __init__(self, queue_limit: int = 64) -> None:
        self.queue_limit = queue_limit
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="xgen-boxd-slots", daemon=True).start()
        self._queues: dict[Key, tuple[ManagedServer, FairQueue]] = {}  # changed on the loop only
        self._snaps: dict[Key, dict[str, Any]] = {}
        self._claimed: set[Key] = set()
        self._cores: dict[int, Callable[[], None]] = {}
        self._emit: dict[str, Callable[[Event], None]] = {}
        self._lock = threading.Lock()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the queues' loop, waited for."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    # -- queues (on the loop) --------------------------------------------------------------------
    def _queue(self, key: Key, server: ManagedServer) -> FairQueue:
        known = self._queues.get(key)
        if known is not None and known[0] is server and not known[1].closed:
            return known[1]
        if known is not None and not known[1].closed:
            known[1].close(f"{key[1]!r} was loaded again")
        slots = max(1, int(getattr(server.plan.settings, "n_parallel", 1) or 1))
        q = FairQueue(key[1], slots, self.queue_limit, on_change=lambda q: self._changed(key, q))
        self._queues[key] = (server, q)
        return q

    def _changed(self, key: Key, q: FairQueue) -> None:
        snap = self._snaps[key] = q.snapshot()
        emit = self._emit.get(key[0])
        if emit is not None:  # the owner's events stream (and panels) show the queue
            emit(Event("queue", key[1], snap))

    def _close(self, key: Key, why: str) -> None:
        known = self._queues.get(key)
        if known is not None and not known[1].closed:
            known[1].close(why)

    def _claim(self, key: Key) -> bool:
        known = self._queues.get(key)
        if known is not None and (known[1].in_flight or known[1].queued):
            return False
        self._claimed.add(key)
        return True

    # -- what other parts of the service ask -------------------------------------------------------
    def watch(self, owner: str, core: Any) -> None:
        """Close a server's queue the moment it goes away (its waiters get an error at once)."""
        with self._lock:
            if id(core) in self._cores:
                return
            emit = getattr(getattr(core.manager, "roster", None), "emit", None)
            if emit is not None:
                self._emit[owner] = emit

            def on_event(event: Event) -> None:  # on a manager thread
                state = event.data.get("state") if event.kind == "state" else None
                if state not in GONE:
                    return
                why = f"the server {event.server!r} is {state}"
                reason = event.data.get("stop_reason") or (event.data.get("error") or {}).get("summary")
                self.loop.call_soon_threadsafe(self._close, (owner, event.server), f"{why}: {reason}" if reason else why)

            self._cores[id(core)] = core.manager.subscribe(on_event)

    def snapshot(self, owner: str, name: str) -> dict[str, Any] | None:
        return self._snaps.get((owner, name))

    def busy(self, owner: str, name: str) -> bool:
        snap = self._snaps.get((owner, name))
        return bool(snap and (snap["in_flight"] or snap["queued"]))

    def claim(self, owner: str, name: str) -> bool:
        """Mark an idle server as being evicted: False if a request holds or waits for it. While
        claimed, slot requests for it are refused, so none can start between the check and the unload."""
        return bool(self._call(self._claim, (owner, name)))

    def unclaim(self, owner: str, name: str) -> None:
        self._call(self._claimed.discard, (owner, name))

    # -- one request's slot (on the connection's thread) --------------------------------------------
    def hold(self, owner: str, server: ManagedServer, user: str, conn: socket.socket) -> Generator[dict[str, Any]]:
        key = (owner, server.name)
        rd, wr = os.pipe()
        os.set_blocking(wr, False)

        def wake() -> None:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(wr, b"x")

        async def acquire() -> None:
            if key in self._claimed:
                raise QueueClosed(f"{server.name!r} is being unloaded to make room for another model")
            await self._queue(key, server).acquire(user)

        fut: Future[None] = asyncio.run_coroutine_threadsafe(acquire(), self.loop)
        fut.add_done_callback(lambda _f: wake())
        try:
            yield from self._wait(key, server, user, fut, conn, rd)
        finally:
            os.close(rd)
            os.close(wr)

    def _wait(self, key: Key, server: ManagedServer, user: str, fut: Future[None], conn: socket.socket,
              rd: int) -> Iterator[dict[str, Any]]:
        shown: Any = None
        quiet = 0.0
        while not fut.done():
            ready: list[Any] = select.select([conn.fileno(), rd], [], [], UPDATE_EVERY if shown else 0.05)[0]
            if conn.fileno() in ready and _gone(conn):
                if not fut.cancel() and fut.exception() is None:  # granted just as it left: pass it on
                    self.loop.call_soon_threadsafe(self._release, key, None)
                return
            if rd in ready:
                os.read(rd, 4096)
            snap = self._snaps.get(key) or {}
            mine = (snap.get("positions") or {}).get(user) or []
            now = (mine[0] if mine else None, snap.get("queued"))
            if now != shown and not fut.done():
                shown, quiet = now, 0.0
                yield {"kind": "queued", "position": now[0], "positions": mine, "queued": now[1]}
            elif not ready:
                quiet += UPDATE_EVERY
                if quiet >= PING:
                    quiet = 0.0
                    yield {"kind": "ping"}
        exc = fut.exception()
        if isinstance(exc, QueueFull):
            yield {"kind": "error", "error": "QueueFull", "message": str(exc), "limit": exc.limit,
                   "retry_after": exc.retry_after}
            return
        if exc is None and server.state != "ready":  # its engine died as the slot passed on: not a grant
            self.loop.call_soon_threadsafe(self._release, key, None)
            exc = QueueClosed(f"the server {server.name!r} is {server.state}")
        if exc is not None:
            yield {"kind": "error", "error": "QueueClosed", "message": str(exc)}
            return
        t0 = time.monotonic()
        try:
            yield {"kind": "granted"}
            while True:  # held until the client closes the connection (its request ended)
                if select.select([conn], [], [], PING)[0] and _gone(conn):
                    return
        finally:
            server.touch()  # idle unload and eviction's least-recently-used count from the request's end
            self.loop.call_soon_threadsafe(self._release, key, time.monotonic() - t0)

    def _release(self, key: Key, seconds: float | None) -> None:
        known = self._queues.get(key)
        if known is not None:
            known[1].release(seconds)

    def close(self) -> None:
        with self._lock:
            for unsubscribe in self._cores.values():
                unsubscribe()
        self.loop.call_soon_threadsafe(self.loop.stop)


def _gone(conn: socket.socket) -> bool:
    """The client closed its end (or broke it); anything it sent is read and dropped."""
    try:
        return not conn.recv(4096)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
