"""Where a llama.cpp engine's tensors go on one card, chosen by predicted speed.

Candidates, each fitted to the card's budget at the wanted context:

* ``all-gpu``: every block, the head and the KV cache on the GPU;
* ``experts``: a mixture of experts keeps the routed experts of its first K blocks on the CPU
  (``--n-cpu-moe K``), attention, KV, router and shared weights on the GPU; K is the fewest
  blocks that make it fit (only when the engine build can place tensors), or K-1 blocks and one
  or two of block K-1's three expert tensors (a split block, ``-ot``);
* ``layers``: whole blocks on the CPU (``-ngl``), the classic partial offload.

The cost model (costmodel.py) predicts each one's tokens/s; the fastest that fits wins: by
decode, where a near-tie goes to the faster prompt (``ranked``). When
nothing fits at the wanted context, memory.fit's older path (shrink the context, then move
layers) decides, as before. A dense model's plan is memory.fit's, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..hardware.types import GPUInfo
from ..models.facts import ModelFacts
from . import experts, memory
from .costmodel import Placement, Speed, predict
from .plan import MemoryEstimate


@dataclass(frozen=True)
class Candidate:
    strategy: str  # all-gpu | experts | layers
    n_gpu_layers: int
    n_cpu_moe: int
    estimate: MemoryEstimate
    speed: Speed
    #: Expert tensors (of 3) of block n_cpu_moe also on the CPU (experts.PARTIAL_TENSORS).
    partial: int = 0

    def flags(self) -> str:
        moe = f" --n-cpu-moe {self.n_cpu_moe}" if self.n_cpu_moe else ""
        part = f" + {self.partial}/3 of block {self.n_cpu_moe}'s experts" if self.partial else ""
        return f"-ngl {self.n_gpu_layers}{moe}{part}"


@dataclass(frozen=True)
class Choice:
    chosen: Candidate
    n_ctx: int
    runner_up: Candidate | None = None
    notes: list[str] = field(default_factory=list)
    fits: bool = True
    #: Why expert offload was not considered (a MoE on a build that cannot place tensors).
    experts_unavailable: str = ""


#: Predicted decode within this share of the fastest is a tie, which prompt speed decides: below
#: the spread between engine instances of one plan (+-5% on an H200), and more than a split block's
#: fill gains (one or two expert tensors of one block).
DECODE_TIE = 0.02


def ranked(cands: list[Candidate]) -> list[Candidate]:
    """Fastest first: by predicted decode, where those within DECODE_TIE of the fastest go by
    predicted prompt speed (and come before the rest)."""
    top = max(c.speed.decode_tps for c in cands)

    def key(c: Candidate) -> tuple[bool, float]:
        near = c.speed.decode_tps >= top * (1 - DECODE_TIE)
        return near, c.speed.prompt_tps if near else c.speed.decode_tps

    return sorted(cands, key=key, reverse=True)


def _largest(ok: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """Largest x in [lo, hi] with ok(x), for ok monotone (true up to some x); None if none."""
    if not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def choose(
    facts: ModelFacts,
    *,
    budget: int,
    n_ctx: int,
    n_ctx_min: int,
    ctx_pinned: bool,
    gpu: GPUInfo,
    host_bandwidth: float | None,
    est_kw: dict[str, Any],
    experts_ok: bool = True,
    experts_why_not: str = "",
    bias: int = 0,
) -> Choice:
    """The fastest placement of ``facts`` within ``budget`` GPU bytes. ``bias`` is added to every
    prediction (the last measured load of the same model and settings took that much more)."""
    n = facts.n_layer
    kw = {k: v for k, v in est_kw.items() if k != "budget"}
    head_first = bool(kw.get("head_first", False))

    def cand(strategy: str, ngl: int, k: int, part: int = 0) -> Candidate:
        est = experts.estimate(facts, n_ctx=n_ctx, n_gpu_layers=ngl, n_cpu_moe=k, partial=part, budget=budget, **kw)
        sp = predict(facts, Placement(ngl, k, head_first, part), n_ctx=n_ctx, gpu=gpu,
                     host_bandwidth=host_bandwidth, n_ubatch=int(kw.get("n_ubatch", 512)))  # fmt: skip
        return Candidate(strategy, ngl, k, est, sp, part)

    def fits(c: Candidate) -> bool:
        return c.estimate.gpu_total + bias <= budget

    full = cand("all-gpu", n + 1, 0)
    moe = facts.is_moe
    if fits(full) or not moe:
        return _classic(facts, budget=budget, n_ctx=n_ctx, n_ctx_min=n_ctx_min, ctx_pinned=ctx_pinned,
                        kw=kw, bias=bias, moe_why=experts_why_not if moe else "", gpu=gpu, host_bw=host_bandwidth)  # fmt: skip
    found: list[Candidate] = []
    ngl_l = _largest(lambda g: fits(cand("layers", g, 0)), 0, n)
    if ngl_l is not None:
        found.append(cand("layers", ngl_l, 0))
    if experts_ok:
        # The fewest expert blocks on the CPU that make every block fit on the GPU ...
        k = _largest(lambda x: not fits(cand("experts", n + 1, x)), 0, n)
        k = 0 if k is None else k + 1
        if k <= n:
            group = [cand("experts", n + 1, k)]
            if k > 0 and experts.can_split_block(facts):
                # Or fill the rest: one or two of block k-1's three expert tensors on the GPU; the
                # cost model decides (a split block gains little decode and costs prompt speed).
                fill = (cand("experts", n + 1, k - 1, part) for part in (1, 2))
                split = next((c for c in fill if fits(c)), None)
                if split is not None:
                    group.append(split)
            found.append(ranked(group)[0])
        else:
            # ... or, when even all experts on the CPU are not enough, fewer blocks as well.
            g = _largest(lambda x: fits(cand("experts", x, n)), 0, n)
            if g is not None and g > 0:
                found.append(cand("experts", g, n))
    if not found:
        return _classic(facts, budget=budget, n_ctx=n_ctx, n_ctx_min=n_ctx_min, ctx_pinned=ctx_pinned,
                        kw=kw, bias=bias, moe_why=experts_why_not, gpu=gpu, host_bw=host_bandwidth)  # fmt: skip
    found = ranked(found)
    return Choice(found[0], n_ctx, found[1] if len(found) > 1 else None,
                  experts_unavailable="" if experts_ok else experts_why_not)  # fmt: skip


def _classic(
    facts: ModelFacts,
    *,
    budget: int,
    n_ctx: int,
    n_ctx_min: int,
    ctx_pinned: bool,
    kw: dict[str, Any],
    bias: int,
    moe_why: str,
    gpu: GPUInfo,
    host_bw: float | None,
) -> Choice:
    """memory.fit (shrink the context, then whole layers), its prediction and its runner-up."""
    res = memory.fit(facts, budget_bytes=max(0, budget - bias), n_ctx=n_ctx, n_ctx_min=n_ctx_min,
                     ctx_pinned=ctx_pinned, **kw)  # fmt: skip
    est = replace(res.estimate, budget=budget)
    all_in = res.n_gpu_layers > facts.n_layer
    sp = predict(facts, Placement(res.n_gpu_layers, 0, bool(kw.get("head_first"))), n_ctx=res.n_ctx,
                 gpu=gpu, host_bandwidth=host_bw, n_ubatch=int(kw.get("n_ubatch", 512)))  # fmt: skip
    chosen = Candidate("all-gpu" if all_in else "layers", res.n_gpu_layers, 0, est, sp)
    return Choice(chosen, res.n_ctx, None, list(res.notes), res.fits, moe_why)
