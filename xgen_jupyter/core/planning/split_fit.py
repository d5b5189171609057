"""Fitting one model over several GPUs: whole blocks per card in proportion to free memory,
the context shrunk before blocks move to the CPU (split.py estimates each placement)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..models.facts import ModelFacts
from ..units import GiB, gib
from .memory import kv_cells, layer_kv_bytes_per_cell
from .split import SplitEstimate, estimate_split


@dataclass(frozen=True)
class SplitFit:
    #: ``--tensor-split`` values: whole block counts per device (the head counted last).
    tensor_split: tuple[float, ...]
    n_gpu_layers: int
    n_ctx: int
    split: SplitEstimate
    notes: list[str] = field(default_factory=list)
    fits: bool = True


def _counts(costs: Sequence[int], capacity: Sequence[int]) -> list[int]:
    """Contiguous block counts per device, each device's share of the bytes proportional to
    its room (llama.cpp's own default splits by free memory too, so cards fill evenly)."""
    n_dev, n = len(capacity), len(costs)
    room = [max(c, 1) for c in capacity]
    total_cost, total_room = sum(costs) or 1, sum(room)
    counts, start, acc_room = [], 0, 0
    for j in range(n_dev - 1):
        acc_room += room[j]
        target = total_cost * acc_room / total_room
        acc, end = sum(costs[:start]), start
        while end < n and acc + costs[end] / 2 <= target:
            acc += costs[end]
            end += 1
        counts.append(end - start)
        start = end
    counts.append(n - start)
    return counts


def fit_split(
    facts: ModelFacts,
    *,
    budgets: Sequence[int],
    mode: str = "layer",
    n_ctx: int,
    n_ctx_min: int = 2048,
    ctx_pinned: bool = False,
    tensor_split: Sequence[float] | None = None,
    n_parallel: int = 1,
    n_ubatch: int = 512,
    cache_type_k: str = "f16",
    cache_type_v: str = "f16",
    device: str = "cuda",
    flash_attn: bool = False,
    n_outputs: int | None = None,
    per_seq_attention: bool = False,
) -> SplitFit:
    """Largest offload (then largest context, never below ``n_ctx_min`` nor a pinned one) whose
    share fits every card's budget. ``tensor_split`` given by the user is kept as it is."""
    n_dev = len(budgets)

    def est(shares: Sequence[float], ngl: int, ctx: int) -> SplitEstimate:
        return estimate_split(
            facts, shares=shares, mode=mode, n_ctx=ctx, n_gpu_layers=ngl, budgets=budgets, n_parallel=n_parallel,
            n_ubatch=n_ubatch, cache_type_k=cache_type_k, cache_type_v=cache_type_v, device=device,
            flash_attn=flash_attn, n_outputs=n_outputs, per_seq_attention=per_seq_attention,
        )  # fmt: skip

    def shares_for(ngl: int, ctx: int) -> tuple[float, ...]:
        if tensor_split:
            return tuple(tensor_split)
        if mode in ("row", "tensor"):
            # Rows follow the shares, so weights spread by room (in tenths of a GiB, a
            # readable --tensor-split); blocks and their KV follow the same shares.
            return tuple(max(round(b / GiB, 1), 0.1) for b in budgets)
        # Each block costs its weights and KV; the room for blocks is the budget less the
        # card's fixed costs (compute, runtime), measured on an even probe split.
        probe = est((1.0,) * n_dev, ngl, ctx)
        costs = [
            facts.output_bytes
            if il == facts.n_layer
            else facts.layer_bytes[il]
            + kv_cells(facts, il, ctx, n_parallel, n_ubatch)
            * layer_kv_bytes_per_cell(facts, il, cache_type_k, cache_type_v)
            for il in range(facts.n_layer + 1 - ngl, facts.n_layer + 1)
        ]
        room = [b - f for b, f in zip(budgets, probe.fixed, strict=True)]
        return _repair(_counts(costs, room), ngl, ctx)

    def _repair(counts: list[int], ngl: int, ctx: int) -> tuple[float, ...]:
        # Rounding to whole blocks can tip a card over: move single blocks to a neighbour with room.
        for _ in range(2 * n_dev):
            cur = est(tuple(map(float, counts)), ngl, ctx)
            overs = [j for j in range(n_dev) if cur.per_gpu[j] > budgets[j]]
            if not overs:
                break
            j = overs[0]
            slack = [budgets[i] - cur.per_gpu[i] for i in range(n_dev)]
            nbrs = [i for i in (j - 1, j + 1) if 0 <= i < n_dev and slack[i] > 0 and counts[j] > 1]
            if not nbrs:
                break
            i = max(nbrs, key=lambda k: slack[k])
            counts[j] -= 1
            counts[i] += 1
        return tuple(map(float, counts))

    def over(s: SplitEstimate) -> bool:
        return any(p > b for p, b in zip(s.per_gpu, budgets, strict=True))

    all_layers = facts.n_layer + 1
    notes: list[str] = []
    ctx = n_ctx
    floor = n_ctx if ctx_pinned else min(n_ctx, n_ctx_min)
    sh = shares_for(all_layers, ctx)
    cur = est(sh, all_layers, ctx)
    full_need = cur.estimate.gpu_total
    while over(cur) and ctx > floor:
        ctx = max(ctx // 2, floor)
        sh = shares_for(all_layers, ctx)
        cur = est(sh, all_layers, ctx)
    if not over(cur):
        if ctx < n_ctx:
            notes.append(
                f"Context reduced from {n_ctx} to {ctx} tokens so that all {facts.n_layer} layers fit "
                f"on {n_dev} GPUs ({gib(full_need)} needed at {n_ctx}, {gib(sum(budgets))} available)."
            )
        return SplitFit(sh, all_layers, ctx, cur, notes)
    for ngl in range(facts.n_layer, 0, -1):
        sh = shares_for(ngl, ctx)
        cur = est(sh, ngl, ctx)
        if not over(cur):
            notes.append(
                f"{all_layers - ngl} of {facts.n_layer} layers run on the CPU because the model needs "
                f"{gib(full_need)} and the {n_dev} GPUs have {gib(sum(budgets))}; generation will be slower."
            )
            return SplitFit(sh, ngl, ctx, cur, notes)
    notes.append(f"Even one layer per GPU does not fit the {n_dev} GPUs' {gib(sum(budgets))}.")
    return SplitFit(sh, 0, ctx, cur, notes, fits=False)
