"""RemoteServer: a server whose engine runs on another Ray node, mirrored here.

It is a ManagedServer, so the proxy (``endpoint`` + ``api_key``), the panels (``to_dict``), the
log websockets (``logs``: a local LogBuffer the mirror appends to) and the janitor use it
unchanged. The mirror (core/cluster/manager.py) copies the node's state into it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..api import plan_from_dict
from ..planning.plan import Reason
from ..planning.request import LoadRequest
from ..process.logbuffer import LogBuffer
from ..process.server import ManagedServer

#: Fields copied from the node's ``to_dict()`` as they are.
MIRRORED = ("port", "pid", "ready_at", "stopped_at", "error", "progress", "progress_message", "stop_reason",
            "owner")


class RemoteServer(ManagedServer):
    def __init__(self, request: LoadRequest, remote: dict[str, Any], logs: LogBuffer, node: dict[str, Any],
                 placement: Reason, footprint: int, gpu: int | None) -> None:
        plan = plan_from_dict(remote["plan"])
        super().__init__(remote["name"], request, replace(plan, reasons=(placement, *plan.reasons)), logs,
                         remote["api_key"])
        self.node = node  # {node_id, address, hostname}
        self.footprint, self.gpu = footprint, gpu  # what the cluster's ledger holds on that node's GPU
        self.remote_seq = 0  # the node's last log line copied here
        self.stopped_there = False  # the node began stopping it on its own: the mirror follows it to the end
        self.remote_attempts: list[dict[str, Any]] = []
        self.host = node["address"]
        self.apply(remote)

    def apply(self, remote: dict[str, Any]) -> None:
        """Copy the node's view (not the state: the manager sets it, to emit the event)."""
        for key in MIRRORED:
            if key in remote:
                setattr(self, key, remote[key])
        if remote.get("plan"):
            plan = plan_from_dict(remote["plan"])
            self.plan = replace(plan, reasons=(self.plan.reasons[0], *plan.reasons))
        restart = remote.get("restart") or {}  # the node restarts it: its count and next time
        self.next_restart_at = restart.get("next_restart_at")
        self.restarts = int(restart.get("restarts") or self.restarts)
        self.remote_attempts = list(remote.get("attempts") or [])
        self.remote_log_file = remote.get("log_file")

    def to_dict(self, secrets: bool = False) -> dict[str, Any]:
        d = super().to_dict(secrets)
        d["attempts"] = self.remote_attempts
        d["node"] = {k: self.node.get(k) for k in ("node_id", "address", "hostname")}
        d["node"]["gpu"] = self.gpu
        d["node"]["log_file"] = self.remote_log_file
        return d
