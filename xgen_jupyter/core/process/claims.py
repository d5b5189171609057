"""Claims: one loader per server name at a time, without a lock held while it plans.

A load claims its name (a dict entry under a lock held for microseconds), plans, admits and
hands the server to the supervisor, then lets go. A second load of the same name waits for
that claim to end (on an Event, holding no lock), then finds the server loading or ready and
returns it: four concurrent loads of one name still give one engine. Loads of other names, and
every lookup, go on meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Claims:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, threading.Event] = {}

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        while True:
            with self._lock:
                busy = self._held.get(name)
                if busy is None:
                    mine = self._held[name] = threading.Event()
                    break
            busy.wait()
        try:
            yield
        finally:
            with self._lock:
                del self._held[name]
            mine.set()

    def held(self) -> set[str]:
        with self._lock:
            return set(self._held)
