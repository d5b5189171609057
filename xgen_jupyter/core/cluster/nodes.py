"""The Ray side of the Jupyter process: connect, find live nodes, keep one NodeAgent per node.

Ray is imported here only, and only when a cluster is configured.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from .. import errors
from ..config import CoreConfig
from ..errors import XGenError
from .agent import NodeAgent

log = logging.getLogger("xgen.cluster")

#: Seconds to wait for a node agent's answer (the node may be busy starting an engine).
CALL_TIMEOUT = 60.0


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise XGenError("c.XGen.cluster is set but Ray is not installed",
                        "pip install 'xgen-jupyter[ray]' (ray must be the same version as the cluster's)") from exc
    return ray


def reachable(address: str, timeout: float = 5.0) -> None:
    """Raise XGenError when nothing listens at ``host:port`` (``ray.init`` would retry it for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return  # "auto", or a form Ray itself judges
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout).close()
    except OSError as exc:
        raise XGenError(f"nothing answers at the Ray cluster address {address!r}: {exc}",
                        "start it with `ray start --head`, and check the address (ray://HEAD:10001, HEAD:6379 or auto)"
                        ) from None


def connect(address: str) -> Any:
    """Join the cluster (``ray://host:port`` through Ray Client, ``host:port`` or ``auto`` as a driver)."""
    ray = _ray()
    if not ray.is_initialized():
        reachable(address)
        try:
            ray.init(address=address, namespace="xgen", logging_level=logging.WARNING, log_to_driver=False,
                     configure_logging=False)
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError, grpc errors...
            raise XGenError(f"cannot join the Ray cluster at {address!r}: {exc}",
                            "start it with `ray start --head`, and check c.XGen.cluster "
                            "(ray://HEAD:10001, HEAD:6379 or auto)") from exc
    return ray


def raise_error(err: dict[str, Any]) -> None:
    cls = getattr(errors, str(err.get("error")), XGenError)
    if not (isinstance(cls, type) and issubclass(cls, XGenError)):
        cls = XGenError
    raise cls(str(err.get("message")), err.get("hint"))


class Nodes:
    """Live nodes and their agents. Agents are owned by this process: they (and their engines) end with it."""

    def __init__(self, address: str, settings: dict[str, Any], make_core: Callable[[CoreConfig], Any]) -> None:
        self.ray = connect(address)
        self.settings = settings
        self.make_core = make_core  # the core class each agent runs (passed in: agent.py imports no service)
        self._agents: dict[str, Any] = {}
        self._lock = threading.Lock()

    def alive(self) -> dict[str, dict[str, Any]]:
        """node_id → {node_id, address, hostname} of every node Ray reports alive."""
        out = {}
        for n in self.ray.nodes():
            if n.get("Alive"):
                nid = n["NodeID"]
                out[nid] = {"node_id": nid, "address": n.get("NodeManagerAddress"), "hostname": n.get("NodeManagerHostname")}
        return out

    def agent(self, node_id: str) -> Any:
        with self._lock:
            handle = self._agents.get(node_id)
            if handle is None:
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

                # Pinned to its node (soft=False: never elsewhere); num_cpus=0 so it never competes with
                # engines for the node's CPUs; threaded, so a slow unload does not hold up polls. It keeps
                # its node's environment (XGEN_STATE_DIR, XGEN_HARDWARE_REPORT ... of that node's `ray start`).
                handle = self.ray.remote(NodeAgent).options(
                    num_cpus=0, max_concurrency=16, max_restarts=0,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                ).remote(self.settings, node_id, make_core=self.make_core)  # fmt: skip
                self._agents[node_id] = handle
            return handle

    def drop(self, node_id: str) -> None:
        with self._lock:
            handle = self._agents.pop(node_id, None)
        if handle is not None:
            try:
                self.ray.kill(handle)
            except Exception:
                pass

    def call(self, node_id: str, method: str, *args: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """Call an agent method; user errors come back as XGenError, Ray's own errors as they are."""
        ref = getattr(self.agent(node_id), method).remote(*args)
        answer = self.ray.get(ref, timeout=timeout)
        if isinstance(answer, dict) and "error" in answer and "ok" not in answer:
            raise_error(answer["error"])
        return answer["ok"] if isinstance(answer, dict) and "ok" in answer else answer

    def gather(self, method: str, *args: Any, timeout: float = CALL_TIMEOUT) -> dict[str, Any]:
        """Call ``method`` on every live node's agent at once; a node that fails maps to its exception."""
        nodes = self.alive()
        refs = {nid: getattr(self.agent(nid), method).remote(*args) for nid in nodes}
        out: dict[str, Any] = {}
        for nid, ref in refs.items():
            try:
                out[nid] = self.ray.get(ref, timeout=timeout)
            except Exception as exc:  # a node dying right now: reported, not fatal
                out[nid] = exc
        return out

    def shutdown(self) -> None:
        with self._lock:
            agents = list(self._agents.items())
            self._agents.clear()
        refs = [h.shutdown.remote() for _, h in agents]
        try:
            self.ray.wait(refs, num_returns=len(refs), timeout=30)
        except Exception:
            pass
        for _, h in agents:
            try:
                self.ray.kill(h)
            except Exception:
                pass
