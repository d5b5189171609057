"""A fair queue in front of one server's slots: round-robin across users, FIFO within a user.

Requests beyond the engine's slots (its plan's ``n_parallel``) wait here instead of in the
engine, where they would be served first-come-first-served: one user's burst of 20 would then
delay everyone else by 20 requests. Lives on one asyncio loop (the proxy's); nothing in it blocks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


class QueueFull(Exception):
    """The server's queue is at its limit: answer 429 with ``retry_after`` seconds."""

    def __init__(self, server: str, limit: int, retry_after: int) -> None:
        super().__init__(f"{limit} requests are already waiting for {server!r}")
        self.server, self.limit, self.retry_after = server, limit, retry_after


class QueueClosed(Exception):
    """The server went away (stopped, crashed, unloaded) while the request waited."""


@dataclass
class _Waiter:
    user: str
    future: asyncio.Future[None]


@dataclass
class FairQueue:
    server: str
    slots: int
    limit: int = 64
    on_change: Callable[[FairQueue], None] | None = None
    in_flight: int = 0
    _waiting: dict[str, deque[_Waiter]] = field(default_factory=dict)
    _turns: deque[str] = field(default_factory=deque)  # users with waiters, next to be served first
    _served: float = 0.0  # mean seconds per request (for Retry-After)
    _closed: str | None = None

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def try_acquire(self, user: str) -> bool:
        """Take a free slot now if nobody waits (the common, unqueued case: no task, no await)."""
        if self._closed is None and self.in_flight < self.slots and not self._turns:
            self.in_flight += 1
            self._changed()
            return True
        return False

    async def acquire(self, user: str) -> None:
        """Wait for a slot. Raises QueueFull at the limit, QueueClosed if the server goes away;
        a cancelled wait (the client left) leaves the queue as if it never came."""
        if self._closed is not None:
            raise QueueClosed(self._closed)
        if self.try_acquire(user):
            return
        if self.queued >= self.limit:
            raise QueueFull(self.server, self.limit, self.retry_after())
        waiter = _Waiter(user, asyncio.get_running_loop().create_future())
        if user not in self._waiting:
            self._waiting[user] = deque()
            self._turns.append(user)
        self._waiting[user].append(waiter)
        self._changed()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
                self.release()  # the slot was handed over just as the client left: pass it on
            else:
                self._drop(waiter)
            raise

    def release(self, seconds: float | None = None) -> None:
        """A request ended: its slot goes to the next user in turn (or is freed)."""
        if seconds is not None:  # a moving mean of service time, for Retry-After
            self._served = seconds if self._served == 0 else 0.8 * self._served + 0.2 * seconds
        while self._turns:
            user = self._turns.popleft()
            waiter = self._waiting[user].popleft()
            if self._waiting[user]:
                self._turns.append(user)  # round-robin: this user's next request waits its turn
            else:
                del self._waiting[user]
            if not waiter.future.done():
                waiter.future.set_result(None)  # the slot passes on: in_flight stays
                self._changed()
                return
        self.in_flight = max(0, self.in_flight - 1)
        self._changed()

    def close(self, why: str) -> int:
        """Fail every waiter at once (the engine is gone); returns how many there were."""
        self._closed = why
        failed = 0
        for q in self._waiting.values():
            for w in q:
                if not w.future.done():
                    w.future.set_exception(QueueClosed(why))
                    failed += 1
        self._waiting.clear()
        self._turns.clear()
        self._changed()
        return failed

    def _drop(self, waiter: _Waiter) -> None:
        q = self._waiting.get(waiter.user)
        if q is None or waiter not in q:
            return
        q.remove(waiter)
        if not q:
            del self._waiting[waiter.user]
            self._turns.remove(waiter.user)
        self._changed()

    def order(self) -> list[str]:
        """The users of the waiting requests in the order they will be served."""
        queues = {u: len(q) for u, q in self._waiting.items()}
        turns, out = deque(self._turns), []
        while turns:
            user = turns.popleft()
            out.append(user)
            queues[user] -= 1
            if queues[user]:
                turns.append(user)
        return out

    def retry_after(self) -> int:
        per = self._served or 1.0
        return max(1, round(per * (self.queued + 1) / max(1, self.slots)))

    def snapshot(self) -> dict[str, object]:
        """Slots, requests in flight and waiting, and each user's positions (1 = next)."""
        positions: dict[str, list[int]] = {}
        for i, user in enumerate(self.order(), 1):
            positions.setdefault(user, []).append(i)
        return {"slots": self.slots, "in_flight": self.in_flight, "queued": self.queued, "limit": self.limit,
                "positions": positions}

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)
