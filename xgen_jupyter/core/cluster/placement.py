"""Where a model goes on the cluster: the node (and GPU) where it fits with the best headroom.

Pure: from each node's hardware report (detected on that node, net of that node's shared-box
reservations) and the cluster's own ledger of what it already placed there, plus the model's
facts and the request. Each GPU is scored with the same memory fit the planner uses:
``memory.fit`` at the request's context with every layer offloaded, against the GPU's free
memory less the planner's margin. The ledger counts each placed model at that footprint, so a
GPU is never promised twice, whatever engine the node then runs (a node without a GPU engine
runs it on its CPU, and the ledger stays conservative).

Ranking: a GPU where the whole model fits beats one where only some layers fit, which beats a
node without GPUs; among equals, the most headroom (budget left after the model) wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..box.devices import HOST_MARGIN, margin_of
from ..hardware.types import GPUInfo, HardwareReport
from ..models.facts import ModelFacts
from ..planning import memory
from ..planning.margin import Margin
from ..planning.plan import Reason
from ..planning.request import LoadRequest
from ..units import gib

DEVICE = {"nvidia": "cuda", "amd": "rocm"}


@dataclass(frozen=True)
class NodeView:
    """One live node as placement sees it."""

    node_id: str
    label: str  # what people read: the node's address
    report: HardwareReport
    #: Bytes this cluster already placed per GPU index on the node (its ledger).
    placed: dict[int, int]


@dataclass(frozen=True)
class Candidate:
    node_id: str
    label: str
    gpu: int | None  # None: no GPU on the node, the CPU serves
    fits: bool  # the whole model on that GPU (or in that node's RAM)
    n_gpu_layers: int
    need: int  # bytes the model takes there (GPU bytes, or host bytes on a CPU node)
    budget: int  # free bytes there, after the margin and the ledger
    gpu_name: str = ""

    @property
    def headroom(self) -> int:
        return self.budget - self.need

    def key(self) -> tuple[int, int, int, int]:
        return (int(self.gpu is not None and self.fits), int(self.gpu is not None), self.n_gpu_layers, self.headroom)

    def reason(self) -> Reason:
        where = f"node {self.label}" + (f" GPU {self.gpu} ({self.gpu_name})" if self.gpu is not None else " (CPU)")
        if self.gpu is None:
            why = f"no node has a GPU for it; {_gib(self.need)} GiB of RAM needed, {_gib(self.budget)} GiB free"
        elif self.fits:
            why = (f"the model needs {_gib(self.need)} GiB there and {_gib(self.budget)} GiB is free after the "
                   f"margin: the most headroom ({_gib(self.headroom)} GiB) of the nodes where it fits")
        else:
            why = (f"no GPU holds all of it; {self.n_gpu_layers} layer(s) fit in the {_gib(self.budget)} GiB "
                   "free there, the most of any node")
        return Reason("cluster-placement", f"placed on {where}", why, "info" if self.fits else "warning")


def _gib(n: int) -> str:
    return gib(n, 2, unit=False)


def context_of(facts: ModelFacts, request: LoadRequest, default_n_ctx: int) -> int:
    """The context the planner would start from (before any shrinking to fit)."""
    return request.n_ctx or min(default_n_ctx, facts.n_ctx_train or default_n_ctx)


def gpu_budget(g: GPUInfo, margin: float, placed: int, margin_mib: float | None = None) -> int:
    """What a plan may take on ``g`` beside the ledger's placements: the planner's own margin
    (core/planning/margin.py, ``margin_mib`` + ``margin`` x the plan)."""
    free = g.memory_free if g.memory_free is not None else g.memory_total
    return Margin.of(margin_mib, margin).budget(max(0, free - placed))


def gpu_need(facts: ModelFacts, request: LoadRequest, gpu: GPUInfo | None, default_n_ctx: int) -> int:
    """Bytes the whole model takes on ``gpu`` at the request's context (the placement footprint)."""
    device = DEVICE.get(gpu.vendor, "vulkan") if gpu is not None else "cuda"
    est = memory.estimate(facts, n_ctx=context_of(facts, request, default_n_ctx), n_parallel=request.n_parallel or 1,
                          n_gpu_layers=-1, device=device)
    return est.gpu_total


def candidates(nodes: list[NodeView], facts: ModelFacts, request: LoadRequest, *, margin: float = 0.01,
               default_n_ctx: int = 4096, margin_mib: float | None = None) -> list[Candidate]:
    """Every (node, GPU) with its fit, best first."""
    out: list[Candidate] = []
    n_ctx = context_of(facts, request, default_n_ctx)
    for node in nodes:
        gpus = node.report.gpus
        if request.main_gpu is not None:
            gpus = tuple(g for g in gpus if g.index == request.main_gpu)
        for g in gpus:
            budget = gpu_budget(g, margin, node.placed.get(g.index, 0), margin_mib)
            res = memory.fit(facts, budget_bytes=budget, n_ctx=n_ctx, n_ctx_min=n_ctx, ctx_pinned=True,
                             n_parallel=request.n_parallel or 1, device=DEVICE.get(g.vendor, "vulkan"))
            full = res.fits and res.n_gpu_layers > facts.n_layer
            need = gpu_need(facts, request, g, default_n_ctx)
            out.append(Candidate(node.node_id, node.label, g.index, full, res.n_gpu_layers if res.fits else 0, need,
                                 budget, g.name))
        if not node.report.gpus:
            est = memory.estimate(facts, n_ctx=n_ctx, n_parallel=request.n_parallel or 1, n_gpu_layers=0, device="cpu")
            cpu = node.report.cpu
            budget = max(0, cpu.memory_available - margin_of(cpu.memory_total, HOST_MARGIN) - node.placed.get(-1, 0))
            out.append(Candidate(node.node_id, node.label, None, est.host_total <= budget, 0, est.host_total, budget))
    return sorted(out, key=lambda c: c.key(), reverse=True)
