"""The supervisor protocol: what the core asks of whatever runs its engines.

Two implement it: ProcessManager (engines are child processes of this one) and ClusterManager
(engines run on Ray nodes, mirrored here). A supervisor only starts, watches and stops: the core
names the server, plans it and admits it (box registry) before ``start``, outside every lock a
supervisor holds, and gives the one callback (:data:`Replan`) a supervisor calls for a new
plan when an engine fails (fallback) or crashes (on-crash restart).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from ..adapters.base import BackendAdapter
from ..planning.plan import LaunchPlan
from .events import Listener
from .server import ManagedServer

#: (server, backends to leave out) → a new (plan, adapter), already admitted; raises XGenError
#: when there is none or it is refused. Called on a supervisor's thread, holding none of its locks.
Replan = Callable[[ManagedServer, frozenset[str]], tuple[LaunchPlan, BackendAdapter]]


class Supervisor(Protocol):
    def get(self, name: str) -> ManagedServer:
        """The server named ``name`` (ServerNotFound when there is none)."""
        ...

    def find(self, name: str) -> ManagedServer | None: ...

    def servers(self) -> list[ManagedServer]: ...

    def subscribe(self, cb: Listener) -> Callable[[], None]:
        """Call ``cb`` with every Event (on a supervisor thread); returns the unsubscribe."""
        ...

    def wait(self, name: str, timeout: float | None = None, until: Iterable[str] = ...) -> ManagedServer: ...

    def start(self, server: ManagedServer, adapter: BackendAdapter | None) -> ManagedServer:
        """List a planned (and admitted) server and start its engine in the background."""
        ...

    def unload(self, name: str, reason: str = ...) -> ManagedServer:
        """Stop the engine and wait for it; a pending restart is cancelled."""
        ...

    def unload_all(self, reason: str = ...) -> None: ...

    def forget(self, name: str) -> None:
        """Drop a stopped, failed or crashed server from the list."""
        ...

    def shutdown(self) -> None: ...
