"""The box service on a Ray cluster (``xgen box --cluster ADDRESS``, the field ``CoreConfig.cluster``
that ``c.XGen.cluster`` sets in-process): each user's core runs a ClusterManager (core/cluster),
and this module makes them one authority.

- One placing lock and one ledger for every user: a placement sees all users' engines already on
  each node, so two users' loads never count on the same free bytes (the margin is the planner's,
  ``placement.gpu_budget``).
- The service's private registry holds each remote engine's reservation on its node's device,
  checked and written under that lock before the node starts anything: quotas (``max_servers``,
  ``gpu_bytes``, ``host_bytes``), refusals naming who holds what and the box view work as for
  engines on this machine; the device's label names the node.
- No engine pid goes into the registry: it names a process on another node, and reclaiming a
  dead run's entries must never signal a process here that only shares the number.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..core.box.devices import HOST_MARGIN, Claim, margin_of
from ..core.box.registry import BoxRegistry
from ..core.errors import XGenError
from ..core.hardware.types import HardwareReport
from ..core.planning.margin import Margin
from ..core.process.events import Event
from ..core.process.server import ACTIVE, FINAL, ManagedServer

log = logging.getLogger("xgen.boxd")


def node_claims(node: str, gpu: int | None, need: int, report: HardwareReport, margin: Margin) -> list[Claim]:
    """What a placement on ``node`` reserves: ``need`` bytes on its GPU ``gpu``, or in its RAM (no GPU)."""
    if gpu is not None:
        for g in report.gpus:
            if g.index == gpu:
                free = g.memory_free if g.memory_free is not None else g.memory_total
                device = f"node:{node}/gpu:{g.uuid or g.pci_bus_id or g.index}"
                return [Claim(device, f"node {node} GPU {g.index} ({g.name})", "gpu", need, g.memory_total,
                              max(0, g.memory_total - free), margin.for_bytes(need))]
        raise XGenError(f"node {node} no longer reports GPU {gpu}", "try the load again")
    cpu = report.cpu
    return [Claim(f"node:{node}/host", f"node {node} RAM", "host", need, cpu.memory_total,
                  max(0, cpu.memory_total - cpu.memory_available), margin_of(cpu.memory_total, HOST_MARGIN))]


class ClusterBooks:
    """One user's remote engines in the service's registry (ClusterManager.books)."""

    def __init__(self, registry: BoxRegistry, margin: Margin) -> None:
        self.registry, self.margin = registry, margin
        self._claims: dict[str, tuple[str, str, list[Claim]]] = {}  # kept across a crash: the node restarts it

    def admit(self, server: ManagedServer, best: Any, report: HardwareReport) -> None:
        """Reserve the placement's footprint (``best``: a core.cluster.placement.Candidate), or raise.
        Where only some layers fit, the node's planner fills what is free there: that much is reserved."""
        need = best.need if best.fits else min(best.need, best.budget)
        claims = node_claims(best.label, best.gpu, need, report, self.margin)
        self.registry.reserve(server.name, server.request.model, server.plan.backend, claims)
        self._claims[server.name] = (server.request.model, server.plan.backend, claims)
        server.logs.append(f"[xgen] box registry: reserved {claims[0].label} for {self.registry.user}/{server.name}")

    def release(self, name: str) -> None:
        self._claims.pop(name, None)
        try:
            self.registry.release(name)
        except XGenError as exc:
            log.warning("xgen: box registry release of %r failed: %s", name, exc)

    def on_event(self, event: Event) -> None:
        """Keep the entry in step with the mirrored state (no pid: see the module's note)."""
        if event.kind != "state":
            return
        state, name = event.data.get("state"), event.server
        try:
            if state in FINAL:
                if state != "crashed":  # an on-crash restart (the node's) books it again, as admitted
                    self._claims.pop(name, None)
                self.registry.release(name)
            elif state in ACTIVE and not self.registry.update(name, str(state), None, event.data.get("endpoint")):
                known = self._claims.get(name)  # restarted after a crash, or the file was recreated
                if known is not None:
                    self.registry.reserve(name, *known, force=True)
                    self.registry.update(name, str(state), None, event.data.get("endpoint"))
        except XGenError as exc:  # the registry must never take an engine down
            log.warning("xgen: box registry update for %r failed: %s", event.server, exc)


class Placement:
    """What the users' cluster managers share: the placing lock and the ledger's servers."""

    def __init__(self, cores: Callable[[], Iterable[Any]]) -> None:
        self.lock = threading.Lock()
        self.cores = cores

    def servers(self) -> list[ManagedServer]:
        return [s for c in self.cores() if c.cluster is not None for s in c.manager.servers()]

    def join(self, core: Any, registry: BoxRegistry) -> None:
        """Tie a new user's core (its supervisor a ClusterManager) to the others and to the registry."""
        cluster = core.cluster
        cluster._placing = self.lock
        cluster.placed = self.servers
        books = ClusterBooks(registry, Margin.of(core.config.gpu_margin_mib, core.config.gpu_margin))
        cluster.books = books
        cluster.subscribe(books.on_event)
        core.registry = registry  # shares, the box view; no core.admission: the books admit, under the lock
        core.janitor.registry = registry
