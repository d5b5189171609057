"""NodeAgent: the Ray actor xgen keeps on every node of the cluster (one per node, pinned there).

It runs the same core as a single box does, on its node: hardware detection (so the report is
that node's GPUs and free memory), the planner, the ProcessManager and the node's shared-box
registry. Engines bind to the node's own address with their API key; the Jupyter side mirrors
their state and log through :meth:`poll`. This module imports nothing from Ray: Ray wraps the
class at run time (``ray.remote(NodeAgent)``), so the class stays testable without a cluster.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..box.devices import adjusted
from ..config import CoreConfig, default_state_dir
from ..errors import XGenError
from ..process.manager import name_for

if TYPE_CHECKING:
    from ..service import XGenCore


def node_config(settings: dict[str, Any], address: str, node_id: str) -> CoreConfig:
    """The node's CoreConfig: the Jupyter side's ``CoreConfig.for_nodes()``, this node's address and state folder
    (a folder per user where the box service runs an agent per user on the node: logs are named by server)."""
    state = Path(os.environ.get("XGEN_STATE_DIR") or default_state_dir()) / "nodes" / node_id[:12]
    user = settings.get("user")
    if isinstance(user, str) and user and "/" not in user and not user.startswith("."):
        state = state / "users" / user
    return CoreConfig.for_node(settings, address, state)


class NodeAgent:
    """One per node. Every method returns plain dicts (they cross Ray's wire)."""

    def __init__(self, settings: dict[str, Any], node_id: str, make_core: Callable[[CoreConfig], XGenCore],
                 address: str | None = None) -> None:
        self.node_id = node_id
        self.address = address or _node_address()
        # The core class comes from the Jupyter side (XGenCore): importing it here would close a
        # service -> cluster -> agent -> service import cycle.
        self.core = make_core(node_config(settings, self.address, node_id))

    def info(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "address": self.address, "hostname": socket.gethostname(), "pid": os.getpid()}

    def hardware(self, refresh: bool = False) -> dict[str, Any]:
        """This node's report, detected here, net of the node's shared-box reservations."""

        def run() -> dict[str, Any]:
            report = self.core.hardware(refresh)
            if self.core.registry is not None:
                report = adjusted(report, self.core.registry.held())
            return {"report": report.to_dict(), "registry": self.core.registry is not None}

        return _answer(run)

    def plan(self, request: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            req = self.core.request(request)
            return self.core.plan(req, name or name_for(req)).to_dict()

        return _answer(run)

    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        """Plan on this node and start the engine; the answer carries the endpoint's API key."""
        return _answer(lambda: self.core.load(request).to_dict(secrets=True))

    def poll(self, name: str, after: int = 0, limit: int = 2000) -> dict[str, Any]:
        """The server's state now and its log lines after sequence number ``after``."""

        def run() -> dict[str, Any]:
            server = self.core.manager.get(name)
            lines = server.logs.tail(limit, after=after)
            return {"server": server.to_dict(), "lines": [ln.to_dict() for ln in lines]}

        return _answer(run)

    def unload(self, name: str, reason: str = "unloaded on request") -> dict[str, Any]:
        return _answer(lambda: self.core.manager.unload(name, reason).to_dict())

    def forget(self, name: str) -> None:
        try:
            self.core.manager.forget(name)
        except XGenError:
            pass

    def shutdown(self) -> None:
        self.core.shutdown()


def _answer(fn: Callable[[], Any]) -> dict[str, Any]:
    """``{"ok": value}`` or ``{"error": XGenError.to_dict()}``: user errors cross Ray as data, not tracebacks."""
    try:
        return {"ok": fn()}
    except XGenError as exc:
        return {"error": exc.to_dict()}


def _node_address() -> str:
    import ray  # only ever called inside a Ray worker

    return str(ray.util.get_node_ip_address())
