"""The box service's fair queues (boxd/slots.py) driven directly over real socket pairs: the grant
order is round-robin across users, a client gone while queued leaves the queue, eviction's claim is
refused while a request holds or waits for the server and, once given, refuses new requests until
released; the server going away fails every waiter at once. The server object stands in for an
engine (only its name, state, slots and touch() are read here); the engine paths are
test_box_fair_slots.py's and test_box_evict_svc.py's."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from xgen_jupyter.boxd.slots import BoxSlots
from xgen_jupyter.core.process.events import Event


class Core:
    """A user's core as the slots see it: manager.subscribe and manager.roster.emit."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[Event], None]] = []
        self.emitted: list[Event] = []
        self.manager = SimpleNamespace(subscribe=self.subscribe, roster=SimpleNamespace(emit=self.emitted.append))

    def subscribe(self, cb: Callable[[Event], None]) -> Callable[[], None]:
        self.listeners.append(cb)
        return lambda: self.listeners.remove(cb)


def server(name: str = "one") -> Any:
    return SimpleNamespace(name=name, state="ready", plan=SimpleNamespace(settings=SimpleNamespace(n_parallel=1)),
                           touch=lambda: None)


class Request:
    """One request's slot, on its own thread, as a connection of the listener would run it."""

    def __init__(self, slots: BoxSlots, srv: Any, user: str) -> None:
        self.user = user
        self.client, conn = socket.socketpair()
        self.messages: list[dict[str, Any]] = []
        self.granted = threading.Event()
        self.done = threading.Event()

        def run() -> None:
            for msg in slots.hold("alice", srv, user, conn):
                self.messages.append(msg)
                if msg["kind"] == "granted":
                    self.granted.set()
            conn.close()
            self.done.set()

        threading.Thread(target=run, daemon=True).start()

    def leave(self) -> None:
        self.client.close()


def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_round_robin_dequeue_claim_and_close() -> None:
    slots, core, srv = BoxSlots(queue_limit=10), Core(), server()
    slots.watch("alice", core)
    try:
        first = Request(slots, srv, "alice")
        wait_for(first.granted.is_set)
        assert not slots.claim("alice", "one")  # a request holds it: never evicted
        burst = [Request(slots, srv, "alice") for _ in range(3)]
        wait_for(lambda: (slots.snapshot("alice", "one") or {}).get("queued") == 3)
        bob, carol = Request(slots, srv, "bob"), Request(slots, srv, "carol")
        wait_for(lambda: (slots.snapshot("alice", "one") or {}).get("queued") == 5)
        gone = Request(slots, srv, "dave")
        wait_for(lambda: (slots.snapshot("alice", "one") or {}).get("queued") == 6)
        gone.leave()  # dave's client leaves while queued: out of the queue at once, not at its turn
        wait_for(lambda: (slots.snapshot("alice", "one") or {}).get("queued") == 5)
        assert gone.done.wait(5) and not gone.granted.is_set()
        order: list[str] = []
        holder, waiting = first, [*burst, bob, carol]
        for _ in range(5):  # each request ends in turn; the next user in round-robin gets the slot
            holder.leave()
            wait_for(lambda: any(r.granted.is_set() for r in waiting))
            holder = next(r for r in waiting if r.granted.is_set())
            waiting.remove(holder)
            order.append(holder.user)
        assert order == ["alice", "bob", "carol", "alice", "alice"], order
        burst = [holder]
        assert any(e.kind == "queue" and e.server == "one" for e in core.emitted)  # the owner's events
        # Idle: claimed for eviction; a new request is refused until released.
        burst[0].leave()
        wait_for(lambda: (slots.snapshot("alice", "one") or {}).get("in_flight") == 0)
        assert slots.claim("alice", "one")
        late = Request(slots, srv, "bob")
        assert late.done.wait(5) and late.messages[-1]["error"] == "QueueClosed", late.messages
        slots.unclaim("alice", "one")
        # The server goes away while requests wait: every waiter gets the error at once.
        holder, waiters = Request(slots, srv, "alice"), [Request(slots, srv, u) for u in ("bob", "carol")]
        wait_for(lambda: (slots.snapshot("alice", "one") or {}).get("queued") == 2)
        for cb in list(core.listeners):
            cb(Event("state", "one", {"state": "crashed", "stop_reason": "crashed: killed"}))
        for w in waiters:
            assert w.done.wait(2) and "crashed: killed" in w.messages[-1]["message"], w.messages
        assert (slots.snapshot("alice", "one") or {}).get("queued") == 0
        holder.leave()
    finally:
        slots.close()
