"""Roster: the named servers of one supervisor, their state changes and their subscribers.

Both supervisors (ProcessManager here, ClusterManager on Ray) hold one, so lookups, waiting,
events and compare-and-set state changes are written once. Its lock guards the dict and the
listener list only, and is held for microseconds: the proxy's lookups on the IOLoop never wait
behind planning, admission or an engine starting (none of which happen under it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from ..errors import ServerConflict, ServerNotFound, XGenError
from .events import Event, Listener
from .logbuffer import notify, remover
from .server import ACTIVE, FINAL, ManagedServer
from .states import State, transition


class Roster:
    def __init__(self) -> None:
        self._servers: dict[str, ManagedServer] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    # -- the read side of the supervisor protocol ----------------------------------------
    def get(self, name: str) -> ManagedServer:
        with self._lock:
            server = self._servers.get(name)
        if server is None:
            raise ServerNotFound(f"no server named {name!r}", "see the loaded servers with `%xgen ls`")
        return server

    def find(self, name: str) -> ManagedServer | None:
        with self._lock:
            return self._servers.get(name)

    def servers(self) -> list[ManagedServer]:
        with self._lock:
            return list(self._servers.values())

    def subscribe(self, cb: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(cb)
        return remover(self._lock, self._listeners, cb)

    def wait(self, name: str, timeout: float | None = None, until: Iterable[str] = ("ready", *FINAL)) -> ManagedServer:
        server = self.get(name)
        wanted = set(until)
        with server.changed:
            server.changed.wait_for(lambda: server.state in wanted, timeout)
        return server

    def forget(self, name: str) -> None:
        """Drop a stopped, failed or crashed server from the list."""
        server = self.get(name)
        if server.state in ACTIVE or server.state == "stopping":
            raise ServerConflict(f"{name!r} is {server.state}", "unload it first")
        with self._lock:
            if self._servers.get(name) is server:
                del self._servers[name]

    # -- changes -------------------------------------------------------------------------
    def add(self, server: ManagedServer) -> None:
        """List ``server`` under its name (replacing a stopped one of that name) and say so."""
        with self._lock:
            old = self._servers.get(server.name)
            if old is not None and old is not server and old.state not in FINAL:
                raise ServerConflict(f"a server named {server.name!r} is {old.state}",
                                     "wait until it has stopped, or pick another name")
            self._servers[server.name] = server
        self.emit_state(server)

    def transition(self, server: ManagedServer, expected: str | Iterable[str], to: State) -> bool:
        """Compare-and-set the state (core/process/states.py); the event follows a change."""
        if not transition(server, expected, to):
            return False
        self.emit_state(server)
        return True

    def emit_state(self, server: ManagedServer) -> None:
        self.emit(Event("state", server.name, server.to_dict()))

    def emit(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        notify(listeners, event)  # a broken subscriber must not break the engines


#: Why every server stops when its supervisor does.
SHUTTING_DOWN = "the manager (Jupyter server) is shutting down"


def unload_each(unload: Callable[[str, str], object], servers: Iterable[ManagedServer], reason: str) -> None:
    """Unload every named server at once (each waits for its engine), ignoring ones already gone."""

    def one(name: str) -> None:
        try:
            unload(name, reason)
        except XGenError:
            pass

    names = [s.name for s in servers]
    threads = [threading.Thread(target=one, args=(n,), name=f"xgen-unload-{n}") for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
