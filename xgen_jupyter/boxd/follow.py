"""A live feed (manager events, a log) turned into a stream of messages for one client.

Items are queued by the core's threads and sent by the connection's thread; a ping every
PING seconds finds clients that left. A client too slow to keep up gets an error and is dropped
rather than letting the queue grow without bound.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

PING = 15.0
MAX_QUEUED = 10000


class Follower:
    def __init__(self, convert: Callable[[Any], dict[str, Any] | None]) -> None:
        self.convert = convert
        self.q: queue.Queue[dict[str, Any]] = queue.Queue(MAX_QUEUED)
        self.overflow = threading.Event()

    def __call__(self, item: Any) -> None:  # on a core thread: never block it
        msg = self.convert(item)
        if msg is None:
            return
        try:
            self.q.put_nowait(msg)
        except queue.Full:
            self.overflow.set()

    def stream(self, first: list[dict[str, Any]], unsubscribe: Callable[[], None]) -> Iterator[dict[str, Any]]:
        try:
            yield from first
            while True:
                if self.overflow.is_set():
                    yield {"kind": "error", "message": "this client read too slowly; messages were dropped"}
                    return
                try:
                    yield self.q.get(timeout=PING)
                except queue.Empty:
                    yield {"kind": "ping"}
        finally:
            unsubscribe()
