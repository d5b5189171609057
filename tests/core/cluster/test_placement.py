"""Placement on a cluster, without Ray: the node and GPU where the model fits with the best headroom."""

from __future__ import annotations

import pytest

from xgen_jupyter.core.cluster.placement import NodeView, candidates, gpu_need
from xgen_jupyter.core.hardware.types import CPUInfo, GPUInfo, HardwareReport
from xgen_jupyter.core.models.facts import ModelFacts
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.models.resolve import resolve_model
from xgen_jupyter.core.planning.margin import Margin
from xgen_jupyter.core.planning.request import LoadRequest

GiB = 1024**3
CPU = CPUInfo(8, 16, 64 * GiB, 48 * GiB)


@pytest.fixture(scope="module")
def facts() -> ModelFacts:
    return inspect_model(resolve_model("default", []))


def with_margin(budget: int) -> int:
    """Free memory that leaves ``budget`` for plans after the planner's margin (margin.py)."""
    return budget + Margin.of().for_bytes(budget)


def node(nid: str, *gpus: tuple[int, int], placed: dict[int, int] | None = None) -> NodeView:
    infos = tuple(GPUInfo(i, f"{nid}-gpu{i}", "nvidia", total, free) for i, (total, free) in enumerate(gpus))
    return NodeView(nid, nid, HardwareReport("injected", infos, CPU), placed or {})


def test_most_headroom_wins_and_the_ledger_moves_the_next_load(facts: ModelFacts) -> None:
    req = LoadRequest(model="default", n_ctx=2048)
    need = gpu_need(facts, req, None, 4096)
    big = node("a", (24 * GiB, with_margin(int(1.5 * need))))
    small = node("b", (8 * GiB, with_margin(int(1.2 * need))))
    best = candidates([small, big], facts, req)[0]
    assert (best.node_id, best.gpu, best.fits) == ("a", 0, True)
    assert best.need == need and best.reason().rule == "cluster-placement"
    # The first model is on a now: its footprint in a's ledger leaves too little there.
    big_after = node("a", (24 * GiB, with_margin(int(1.5 * need))), placed={0: need})
    ranked = candidates([big_after, small], facts, req)
    assert (ranked[0].node_id, ranked[0].fits) == ("b", True) and not ranked[1].fits


def test_the_best_gpu_of_a_node_and_partial_fits_last(facts: ModelFacts) -> None:
    req = LoadRequest(model="default", n_ctx=2048)
    need = gpu_need(facts, req, None, 4096)
    two = node("a", (8 * GiB, GiB), (8 * GiB, 6 * GiB))
    tight = node("b", (8 * GiB, with_margin(need // 2)))  # only some layers fit
    ranked = candidates([tight, two], facts, req)
    assert (ranked[0].node_id, ranked[0].gpu) == ("a", 1)
    rest = ranked[1:]
    assert rest and all(not c.fits and c.reason().level == "warning" for c in rest)
    assert all(c.n_gpu_layers <= facts.n_layer for c in rest)  # some layers at most, never all


def test_gpu_nodes_before_cpu_nodes(facts: ModelFacts) -> None:
    req = LoadRequest(model="default")
    cpu_only = NodeView("c", "c", HardwareReport("cpu", (), CPU), {})
    gpu = node("g", (8 * GiB, 8 * GiB))
    assert candidates([cpu_only, gpu], facts, req)[0].node_id == "g"
    only = candidates([cpu_only], facts, req)[0]
    assert only.gpu is None and only.fits and "RAM" in only.reason().why
