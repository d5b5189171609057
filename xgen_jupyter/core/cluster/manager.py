"""ClusterManager: the supervisor of a Jupyter server whose engines run on Ray nodes.

A sibling of ProcessManager: it implements the same supervisor protocol (core/process/supervisor.py)
around the same Roster, so the proxy, the panels, the websockets and the janitor work unchanged.
``start`` places the server on the node where the model fits best (core/cluster/placement.py) and
has that node's agent start it; a mirror thread polls each node for its servers' state and new log
lines and replays them here as Events and LogBuffer lines. A node that leaves the cluster turns its
servers ``crashed``. Fallback and on-crash restart happen on the node, by that node's own core.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..adapters.base import BackendAdapter
from ..api import plan_from_dict
from ..config import CoreConfig
from ..errors import XGenError
from ..hardware.types import DetectorResult, GPUInfo, HardwareReport
from ..models.facts import ModelFacts
from ..models.inspect import inspect_model
from ..planning.plan import LaunchPlan
from ..planning.request import LoadRequest
from ..process.events import Event
from ..process.roster import SHUTTING_DOWN, Roster, unload_each
from ..process.server import ACTIVE, FINAL, ManagedServer
from ..process.states import IllegalTransition, path
from .nodes import Nodes
from .placement import Candidate, NodeView, candidates
from .remote import RemoteServer

log = logging.getLogger("xgen.cluster")


class ClusterManager:
    def __init__(self, resolve: Callable[[str], str], make_core: Callable[[CoreConfig], Any], config: CoreConfig,
                 poll_interval: float = 0.5, report_ttl: float = 2.0) -> None:
        """``resolve``: model spec → path (the core's); ``make_core``: the core class each node agent runs."""
        self.resolve, self.config, self.grace_period = resolve, config, config.grace_period
        self.roster = roster = Roster()
        # The read side of the supervisor protocol is the roster's (as in ProcessManager).
        self.get, self.find, self.servers, self.wait, self.forget = (roster.get, roster.find, roster.servers,
                                                                     roster.wait, roster.forget)
        self.subscribe = roster.subscribe
        self.nodes = Nodes(str(config.cluster), config.for_nodes(), make_core)
        self.poll_interval, self.report_ttl = poll_interval, report_ttl
        self._reports: tuple[float, dict[str, tuple[dict[str, Any], HardwareReport, bool]]] | None = None
        self._placing = threading.Lock()  # place + start one load at a time: the ledger sees each placement
        # The box service joins its users' managers (boxd/cluster.py): one lock, one ledger of every
        # user's placements, and its registry's books checked before a node starts anything.
        self.placed: Callable[[], list[ManagedServer]] = self.servers
        self.books: Any = None  # .admit(server, candidate, node report) / .release(name)
        self._closed = False
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
        for s in self.placed():
            if not isinstance(s, RemoteServer) or s.node["node_id"] != node_id or s.state not in ACTIVE:
                continue
            counted = 0
            if registry and s.plan.memory is not None:
                counted = s.plan.memory.gpu_total if s.gpu in s.plan.gpus else s.plan.memory.host_total if s.gpu is None else 0
            placed[-1 if s.gpu is None else s.gpu] += max(0, s.footprint - counted)
        return dict(placed)

    def place(self, request: LoadRequest) -> tuple[Candidate, ModelFacts, dict[str, Any]]:
        facts = inspect_model(self.resolve(request.model))
        reports = self.reports(refresh=True)
        views = [NodeView(nid, info["address"], report, self._ledger(nid, reg)) for nid, (info, report, reg) in reports.items()]
        ranked = candidates(views, facts, request, margin=self.config.gpu_margin, default_n_ctx=self.config.default_n_ctx,
                            margin_mib=self.config.gpu_margin_mib)
        if not ranked:
            raise XGenError("no live node in the Ray cluster can take this model", "check `ray status` and the GPUs")
        best = ranked[0]
        return best, facts, reports[best.node_id][0]

    def _node_request(self, request: LoadRequest, best: Candidate) -> dict[str, Any]:
        d = {k: v for k, v in request.to_dict().items() if v is not None}
        # Idle unload is this side's call: the node sees none of the traffic (the proxies touch the
        # mirror), so its janitor would stop a server in use once its own idle_ttl ran out.
        d.pop("idle_ttl", None)
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
    def start(self, server: ManagedServer, adapter: BackendAdapter | None = None) -> ManagedServer:
        """Place ``server``'s request on a node and have that node's core start it; the mirror is listed.

        The placement is made again here, under the placing lock (the cluster's admission: the
        ledger must see each placement before the next), and the node plans it on its own hardware.
        """
        if self._closed:
            raise XGenError("the cluster manager is shutting down")
        with self._placing:
            best, _, info = self.place(server.request)
            if self.books is not None:  # quotas and the box's books, before the node starts anything
                self.books.admit(server, best, self.reports()[best.node_id][1])
            try:
                remote = self.nodes.call(best.node_id, "load", self._node_request(server.request, best))
            except BaseException:
                if self.books is not None:
                    self.books.release(server.name)
                raise
            mirror = RemoteServer(server.request, remote, server.logs, info, best.reason(), best.need, best.gpu)
            mirror.logs.append(f"[xgen] {best.reason()}")
            self.roster.add(mirror)
        return mirror

    def unload(self, name: str, reason: str = "unloaded on request") -> ManagedServer:
        server = self.get(name)
        if not isinstance(server, RemoteServer) or server.state in FINAL:
            return server
        server.stop_reason = reason
        server.stop_requested.set()
        if not self.roster.transition(server, ACTIVE, "stopping"):
            self.wait(name, timeout=self.grace_period + 10, until=FINAL)  # it ended, or is stopping meanwhile
            return server
        server.logs.append(f"[xgen] stopping: {reason}")
        nid = server.node["node_id"]
        try:
            remote = self.nodes.call(nid, "unload", name, reason, timeout=self.grace_period + 30)
            self._copy_lines(server)
            server.apply(remote)
            self.nodes.agent(nid).forget.remote(name)
        except Exception as exc:  # the node is gone or unreachable: its engine went with it
            server.logs.append(f"[xgen] node {server.node['address']} did not answer the unload: {exc}")
        self.roster.transition(server, "stopping", "stopped")
        return server

    def unload_all(self, reason: str = "unloaded on request") -> None:
        unload_each(self.unload, self.servers(), reason)

    def shutdown(self) -> None:
        self._closed = True
        self._stop.set()  # the mirror stops; each unload copies its server's last lines itself
        self.unload_all(SHUTTING_DOWN)
        self.nodes.shutdown()

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
        """Active, stopping on its node's own account (an unload here copies its own last lines), or
        crashed on a live node whose restart policy will start it again."""
        return s.state in ACTIVE or (s.state == "stopping" and s.stopped_there) or (
            s.state == "crashed" and s.next_restart_at is not None and (s.error or {}).get("id") != "node-lost")

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
            self._follow(s, str(remote["state"]))
        elif (s.progress, s.progress_message) != before:
            self.roster.emit(Event("progress", s.name, {"progress": s.progress, "message": s.progress_message}))

    def _follow(self, s: RemoteServer, state: str) -> None:
        """Step to the node's state, replaying (as events) any state the poll missed on the way."""
        try:
            steps = path(s.state, state)
        except IllegalTransition as exc:  # a bug, on the node or here: say so, keep mirroring the others
            log.error("xgen: %s mirrors %s: %s", s.name, state, exc)
            return
        here: str = s.state
        for step in steps:
            if not self.roster.transition(s, here, step):  # type: ignore[arg-type]
                return  # an unload here moved it on
            here = step
            s.stopped_there = s.stopped_there or step == "stopping"  # followed until it ends

    def _lost(self, s: RemoteServer, reason: str) -> None:
        s.logs.append(f"[xgen] {reason}")
        s.error = {"id": "node-lost", "summary": reason, "engine_fault": False, "log_tail": s.logs.text_tail(30)}
        s.stop_reason, s.next_restart_at = f"crashed: {reason}", None
        if not (self.roster.transition(s, ACTIVE, "crashed") or self.roster.transition(s, "stopping", "stopped")):
            self.roster.emit_state(s)  # crashed already, its restart now never comes
        self.nodes.drop(s.node["node_id"])
