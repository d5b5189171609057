"""ClusterManager: the ProcessManager of a Jupyter server whose engines run on Ray nodes.

Same surface as ProcessManager (get, servers, subscribe, wait, load, unload, forget, shutdown),
so the proxy, the panels, the websockets and the janitor work unchanged. Loads are placed on
the node where the model fits best (core/cluster/placement.py) and started by that node's agent;
a mirror thread polls each node for its servers' state and new log lines and replays them
here as Events and LogBuffer lines. A node that leaves the cluster turns its servers ``crashed``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import CoreConfig
from ..errors import ServerConflict, XGenError
from ..hardware.types import DetectorResult, GPUInfo, HardwareReport
from ..models.facts import ModelFacts
from ..models.inspect import inspect_model
from ..planning.plan import LaunchPlan
from ..planning.request import LoadRequest
from ..process.logbuffer import LogBuffer
from ..process.manager import Event, ProcessManager, name_for
from ..process.server import ACTIVE, FINAL, ManagedServer
from .agent import FORWARDED
from .nodes import Nodes
from .placement import Candidate, NodeView, candidates
from .remote import RemoteServer, plan_from_dict

log = logging.getLogger("xgen.cluster")


class ClusterManager(ProcessManager):
    def __init__(self, core: Any, config: CoreConfig, poll_interval: float = 0.5, report_ttl: float = 2.0) -> None:
        super().__init__(core, log_dir=Path(config.state_dir) / "logs", host=config.host,
                         ready_timeout=config.ready_timeout, grace_period=config.grace_period,
                         log_lines=config.log_lines, log_file_bytes=config.log_file_bytes)
        self.core, self.config = core, config
        settings = {k: getattr(config, k) for k in FORWARDED if hasattr(config, k)}
        if settings.get("shared_dir") is not None:
            settings["shared_dir"] = str(settings["shared_dir"])
        self.nodes = Nodes(str(config.cluster), settings)
        self.poll_interval, self.report_ttl = poll_interval, report_ttl
        self._reports: tuple[float, dict[str, tuple[dict[str, Any], HardwareReport, bool]]] | None = None
        self._placing = threading.Lock()  # place + start one load at a time: the ledger sees each placement
        self._stop = threading.Event()
        self._mirror = threading.Thread(target=self._mirror_loop, name="xgen-cluster-mirror", daemon=True)
        self._mirror.start()

    # -- hardware --------------------------------------------------------------------
    def reports(self, refresh: bool = False) -> dict[str, tuple[dict[str, Any], HardwareReport, bool]]:
        """node_id → (node info, that node's report net of its box reservations, registry on?)."""
        cached = self._reports
        if cached is not None and not refresh and time.time() - cached[0] < self.report_ttl:
            return cached[1]
        alive = self.nodes.alive()
        out = {}
        for nid, ans in self.nodes.gather("hardware", refresh).items():
            if isinstance(ans, Exception) or "ok" not in ans or nid not in alive:
                log.warning("xgen: node %s did not report its hardware: %s", alive.get(nid, {}).get("address"), ans)
                continue
            report = HardwareReport.from_dict(ans["ok"]["report"])
            out[nid] = (alive[nid], report, bool(ans["ok"]["registry"]))
        self._reports = (time.time(), out)
        return out

    def hardware(self, refresh: bool = False) -> HardwareReport:
        """Every node's GPUs in one report, each GPU tagged with its node; one detector row per node."""
        reports = self.reports(refresh)
        if not reports:
            raise XGenError("no live node in the Ray cluster answered", "check `ray status` on the head node")
        gpus: list[GPUInfo] = []
        rows: list[DetectorResult] = []
        for info, report in ((i, r) for i, r, _ in reports.values()):
            tagged = tuple(replace(g, node=info["address"]) for g in report.gpus)
            gpus += tagged
            rows.append(DetectorResult(f"node {info['address']}", True, tagged,
                                       f"{info.get('hostname') or '?'}: {report.method}, {len(tagged)} GPU(s)"))
        first = next(iter(reports.values()))[1]
        return HardwareReport("cluster", tuple(gpus), first.cpu, (), tuple(rows))

    # -- placement ---------------------------------------------------------------------
    def _ledger(self, node_id: str, registry: bool) -> dict[int, int]:
        """Bytes this cluster placed per GPU (-1: host RAM) on a node, less what its registry already counts."""
        placed: dict[int, int] = defaultdict(int)
        for s in self.servers():
            if not isinstance(s, RemoteServer) or s.node["node_id"] != node_id or s.state not in ACTIVE:
                continue
            counted = 0
            if registry and s.plan.memory is not None:
                counted = s.plan.memory.gpu_total if s.gpu in s.plan.gpus else s.plan.memory.host_total if s.gpu is None else 0
            placed[-1 if s.gpu is None else s.gpu] += max(0, s.footprint - counted)
        return dict(placed)

    def place(self, request: LoadRequest) -> tuple[Candidate, ModelFacts, dict[str, Any]]:
        facts = inspect_model(self.core.resolve(request.model))
        reports = self.reports(refresh=True)
        views = [NodeView(nid, info["address"], report, self._ledger(nid, reg)) for nid, (info, report, reg) in reports.items()]
        ranked = candidates(views, facts, request, margin=self.config.gpu_margin, default_n_ctx=self.config.default_n_ctx)
        if not ranked:
            raise XGenError("no live node in the Ray cluster can take this model", "check `ray status` and the GPUs")
        best = ranked[0]
        return best, facts, reports[best.node_id][0]

    def _node_request(self, request: LoadRequest, best: Candidate) -> dict[str, Any]:
        d = {k: v for k, v in request.to_dict().items() if v is not None}
        reports = self._reports[1] if self._reports else {}
        report = reports.get(best.node_id, (None, None, False))[1]
        if best.gpu is not None and request.main_gpu is None and report is not None and len(report.gpus) > 1:
            d["main_gpu"] = best.gpu  # the GPU placement chose, not whichever the node's planner would
        return d

    def plan(self, request: LoadRequest, name: str | None = None) -> LaunchPlan:
        """The plan the chosen node would run, with the placement as its first reason (nothing started)."""
        best, _, _ = self.place(request)
        plan = plan_from_dict(self.nodes.call(best.node_id, "plan", self._node_request(request, best), name))
        return replace(plan, reasons=(best.reason(), *plan.reasons))

    # -- lifecycle -------------------------------------------------------------------------
    def load(self, request: LoadRequest) -> ManagedServer:
        if self._closed:
            raise XGenError("the cluster manager is shutting down")
        name = name_for(request)
        with self._placing:
            with self._lock:
                old = self._servers.get(name)
            if old is not None and old.state in ACTIVE:
                if old.request.model != request.model or old.request.server_type != request.server_type:
                    raise ServerConflict(f"a server named {name!r} already serves {old.request.model}",
                                         "unload it first or pick another name")
                return old
            best, _, info = self.place(request)
            remote = self.nodes.call(best.node_id, "load", self._node_request(request, best))
            logs = old.logs if old is not None else LogBuffer(self.log_dir / f"{name}.log", self.log_lines,
                                                                 self.log_file_bytes)
            server = RemoteServer(request, remote, logs, info, best.reason(), best.need, best.gpu)
            server.logs.append(f"[xgen] {best.reason()}")
            with self._lock:
                self._servers[name] = server
        self._emit_state(server)
        return server

    def unload(self, name: str, reason: str = "unloaded on request") -> ManagedServer:
        server = self.get(name)
        if not isinstance(server, RemoteServer) or server.state in FINAL:
            return server
        server.stop_reason = reason
        server.stop_requested.set()
        server.logs.append(f"[xgen] stopping: {reason}")
        self._set_state(server, "stopping")
        nid = server.node["node_id"]
        try:
            remote = self.nodes.call(nid, "unload", name, reason, timeout=self.grace_period + 30)
            self._copy_lines(server)
            server.apply(remote)
            self.nodes.agent(nid).forget.remote(name)
        except Exception as exc:  # the node is gone or unreachable: its engine went with it
            server.logs.append(f"[xgen] node {server.node['address']} did not answer the unload: {exc}")
        server.stopped_at = server.stopped_at or time.time()
        self._set_state(server, "stopped")
        return server

    def shutdown(self) -> None:
        self._closed = True
        self.unload_all("the manager (Jupyter server) is shutting down")
        self._stop.set()
        self.nodes.shutdown()
        self._spawner.shutdown()

    # -- the mirror ------------------------------------------------------------------------
    def _mirror_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            watched = [s for s in self.servers() if isinstance(s, RemoteServer) and self._watched(s)]
            if not watched:
                continue
            try:
                alive = self.nodes.alive()
            except Exception as exc:
                log.warning("xgen: cannot reach the Ray cluster: %s", exc)
                continue
            for s in watched:
                if s.node["node_id"] not in alive:
                    self._lost(s, f"node {s.node['address']} left the Ray cluster (Ray reports it dead)")
                else:
                    self._sync(s)

    @staticmethod
    def _watched(s: RemoteServer) -> bool:
        """Active, or crashed on a live node whose restart policy will start it again."""
        return s.state in ACTIVE or (s.state == "crashed" and s.next_restart_at is not None
                                     and (s.error or {}).get("id") != "node-lost")

    def _copy_lines(self, s: RemoteServer) -> dict[str, Any] | None:
        try:
            ans = self.nodes.call(s.node["node_id"], "poll", s.name, s.remote_seq, timeout=10)
        except XGenError:
            return None
        for ln in ans["lines"]:
            s.logs.append(ln["text"], ln.get("attempt", 0))
            s.remote_seq = ln["seq"]
        return dict(ans["server"])

    def _sync(self, s: RemoteServer) -> None:
        try:
            remote = self._copy_lines(s)
        except Exception as exc:
            if isinstance(exc, self.nodes.ray.exceptions.ActorDiedError):
                self._lost(s, f"the xgen agent on node {s.node['address']} died: {exc}")
            return  # a timeout or a node going away: try again; node death shows in ray.nodes()
        if remote is None or not self._watched(s):
            return
        before = (s.progress, s.progress_message)
        s.apply(remote)
        if remote["state"] != s.state:
            self._set_state(s, remote["state"])
        elif (s.progress, s.progress_message) != before:
            self._emit(Event("progress", s.name, {"progress": s.progress, "message": s.progress_message}))

    def _lost(self, s: RemoteServer, reason: str) -> None:
        s.logs.append(f"[xgen] {reason}")
        s.error = {"id": "node-lost", "summary": reason, "engine_fault": False, "log_tail": s.logs.text_tail(30)}
        s.stop_reason, s.next_restart_at = f"crashed: {reason}", None
        s.stopped_at = time.time()
        self._set_state(s, "crashed")
        self.nodes.drop(s.node["node_id"])
