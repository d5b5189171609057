"""The planner's fitting step: memory on one card (placement.py) or split over several (split.py),
and the settings the memory model needs from a plan's values. planner.py calls ``fit_single`` and
``plan_split``."""

from __future__ import annotations

from typing import Any

from ..errors import RequestError
from ..hardware.types import GPUInfo
from ..units import gib
from . import costmodel, memory, placement, split_fit
from .context import PlanInputs, RuleCtx
from .plan import MemoryEstimate, Prediction, Reason

MIN_CTX = 2048


def _fit_kw(ctx: RuleCtx, values: dict[str, Any]) -> dict[str, Any]:
    server = ctx.traits.slots_share_ctx
    return dict(
        n_parallel=values["n_parallel"], n_ubatch=values["n_ubatch"],
        cache_type_k=values.get("cache_type_k") or "f16", cache_type_v=values.get("cache_type_v") or "f16",
        device=ctx.device, flash_attn=_flash_attn_on(ctx, values.get("flash_attn", "auto")),
        # llama-server reserves one logit row per slot and, with --parallel N, attends over
        # one slot's n_ctx/N cells (both measured on an H100, benchmarks/results/h100.md).
        n_outputs=values["n_parallel"] if server and not ctx.embedding else None,
        per_seq_attention=server,
    )  # fmt: skip


def _single_kw(ctx: RuleCtx, values: dict[str, Any]) -> dict[str, Any]:
    """_fit_kw for one card: llama-server b11434 (what xgen builds) offloads the output head
    first, llama-cpp-python's older llama.cpp last (split.py always places blocks as b11434)."""
    return {**_fit_kw(ctx, values), "head_first": ctx.traits.head_first}


def _budget(inp: PlanInputs, gpu: GPUInfo) -> tuple[int, int]:
    """(what a plan may take on one card, the margin kept beside it): placement.budget."""
    return placement.budget(inp, gpu)


def fit_single(
    inp: PlanInputs, ctx: RuleCtx, values: dict[str, Any], user: dict[str, Any]
) -> tuple[MemoryEstimate, list[Reason], Prediction | None]:
    facts, gpu = inp.facts, ctx.gpu
    kw = _single_kw(ctx, values)
    if (
        gpu is None
        or "n_gpu_layers" in user
        or (
            "n_gpu_layers" in values
            and values["n_gpu_layers"] == 0
            and ctx.embedding
            and ctx.device == "rocm"
        )
    ):
        # A CPU-type Vulkan device (lavapipe) has no memory of its own to fit: all layers go to it.
        ngl = values.get("n_gpu_layers", 0) if gpu or ctx.device == "vulkan" else 0
        values["n_gpu_layers"] = ngl
        est = memory.estimate(facts, n_ctx=values["n_ctx"], n_gpu_layers=ngl, **kw)
        if gpu is not None or ctx.device != "cpu":
            return est, [], None  # pinned layers on a GPU: the cost model is not asked
        speed = costmodel.predict(
            facts, costmodel.Placement(0), n_ctx=values["n_ctx"], gpu=None, host_bandwidth=inp.host_bandwidth
        )
        return est, [], Prediction(speed.decode_tps, speed.prompt_tps, "cpu")
    # The fastest placement that fits (expert offload for a MoE on a tight card): placement.py.
    return placement.fit(inp, ctx, values, user, kw)


def _split_gpus(ctx: RuleCtx) -> tuple[GPUInfo, ...]:
    """Cards one engine may split over: llama-server on GPUs, dedicated cards only when the box
    has any (llama.cpp itself skips integrated GPUs beside discrete ones)."""
    if not ctx.traits.gpu_split or ctx.device == "cpu" or len(ctx.gpus) < 2:
        return ()
    cards = tuple(g for g in ctx.gpus if not g.integrated) or ctx.gpus
    return cards if len(cards) > 1 else ()


def _fit_split(
    inp: PlanInputs,
    ctx: RuleCtx,
    values: dict[str, Any],
    user: dict[str, Any],
    gpus: tuple[GPUInfo, ...],
    mode: str,
) -> tuple[split_fit.SplitFit, list[int]]:
    budgets = [_budget(inp, g)[0] for g in gpus]
    res = split_fit.fit_split(
        inp.facts, budgets=budgets, mode=mode, n_ctx=values["n_ctx"], n_ctx_min=min(MIN_CTX, values["n_ctx"]),
        ctx_pinned="n_ctx" in user, tensor_split=values.get("tensor_split"), **_fit_kw(ctx, values),
    )  # fmt: skip
    return res, budgets


def _check_split_mode(ctx: RuleCtx, mode: str) -> None:
    """Refuse a split the chosen engine build cannot run, before anything starts."""
    if not ctx.traits.gpu_split or mode in ("none", "layer"):
        return
    flags = ctx.install.flags
    has_tensor = "--split-mode=tensor" in flags
    if mode == "row" and ctx.device == "vulkan":
        raise RequestError(
            "split_mode row needs CUDA or ROCm: ggml's Vulkan backend has no row split",
            "use split_mode layer (or leave it unset) on Vulkan",
        )
    if mode == "row" and has_tensor and ctx.device in ("cuda", "rocm"):
        # Builds with `tensor` (b11434 on) dropped CUDA/HIP split buffers: row fails at load.
        raise RequestError(
            f"this llama-server build has no row split on {ctx.device.upper()}: llama.cpp replaced it with "
            "split_mode tensor",
            "use split_mode tensor (matrices and KV cut across the GPUs, experimental) or layer",
        )
    if mode == "tensor" and flags and not has_tensor:
        raise RequestError(
            "this llama-server build has no tensor split (its --help lists none)",
            "use split_mode layer, or row on CUDA/ROCm",
        )
    if mode == "tensor" and ctx.inputs.request.flash_attn == "off":
        raise RequestError(
            "split_mode tensor needs flash attention (llama.cpp refuses the context without it)",
            "drop flash_attn=off, or use split_mode layer",
        )


def plan_split(
    inp: PlanInputs,
    ctx: RuleCtx,
    values: dict[str, Any],
    user: dict[str, Any],
    single: MemoryEstimate,
    wanted_ctx: int,
) -> tuple[MemoryEstimate, list[Reason], tuple[GPUInfo, ...]] | None:
    """Split over several cards when the user asks for it, or when the best card alone cannot
    hold every layer at the planned context and two or more cards together can."""
    cards = _split_gpus(ctx)
    mode = values.get("split_mode") or "none"
    asked = "split_mode" in user and mode != "none"
    _check_split_mode(ctx, mode)
    if "n_gpu_layers" in user or (not asked and mode == "none" and "split_mode" in user) or not cards:
        return None
    trial = {**values, "n_ctx": wanted_ctx}
    extra: list[Reason] = []
    if mode == "tensor" and values.get("flash_attn") != "on":
        values["flash_attn"] = trial["flash_attn"] = "on"
        extra.append(Reason("tensor-needs-fa", "--flash-attn on",
                            "llama.cpp's tensor split refuses to create a context without flash attention"))  # fmt: skip
    if asked:
        chosen = cards
        if values.get("tensor_split") and len(values["tensor_split"]) != len(chosen):
            raise RequestError(
                f"tensor_split has {len(values['tensor_split'])} values for {len(chosen)} GPUs",
                f"give one share per GPU, e.g. [{', '.join('1' for _ in chosen)}]",
            )
        res, budgets = _fit_split(inp, ctx, trial, user, chosen, mode)
    else:
        # A MoE whose experts partly went to the CPU does not count as held by one card.
        experts_off = bool(values.get("n_cpu_moe") or values.get("override_tensor"))
        if values["n_gpu_layers"] > inp.facts.n_layer and values["n_ctx"] >= wanted_ctx and not experts_off:
            return None  # one card holds it all
        mode = "layer"
        # The fewest cards that hold every layer: each extra card adds a hop per token.
        for k in range(2, len(cards) + 1):
            chosen = cards[:k]
            res, budgets = _fit_split(inp, ctx, trial, user, chosen, mode)
            if res.fits and res.n_gpu_layers > inp.facts.n_layer and res.n_ctx >= wanted_ctx:
                break
        if experts_off:
            if not (res.fits and res.n_gpu_layers > inp.facts.n_layer and res.n_ctx >= wanted_ctx):
                return None  # experts on the CPU beside one card beat blocks on the CPU beside two
        elif not res.fits or (res.n_gpu_layers, res.n_ctx) <= (values["n_gpu_layers"], values["n_ctx"]):
            return None  # splitting gains nothing: keep the single-card plan
    if not res.fits:
        return None
    values.update(split_mode=mode, tensor_split=values.get("tensor_split") or res.tensor_split,
                  n_gpu_layers=res.n_gpu_layers, n_ctx=res.n_ctx)  # fmt: skip
    values.pop("n_cpu_moe", None)  # the split places whole blocks: no expert offload
    values.pop("override_tensor", None)
    shares = ", ".join(
        f"GPU {g.index}: {_gib(p)} of {_gib(b)} GiB"
        for g, p, b in zip(chosen, res.split.per_gpu, budgets, strict=True)
    )
    ts = ",".join(f"{x:g}" for x in values["tensor_split"])
    what = f"--split-mode {mode} --tensor-split {ts} over GPUs {','.join(str(g.index) for g in chosen)}"
    if asked:
        why = f"you asked for split_mode={mode}; planned per card ({shares})"
    else:
        need = memory.estimate(
            inp.facts, n_ctx=wanted_ctx, n_gpu_layers=-1, **_single_kw(ctx, trial)
        ).gpu_total
        why = (
            f"every layer with a {wanted_ctx}-token context needs {_gib(need)} GiB and the best card can give "
            f"{_gib(single.budget or 0)} GiB (free less the margin); split by blocks, in proportion to free memory ({shares})"
        )
    reasons = [Reason("multi-gpu-split", what, why), *extra]
    reasons += [Reason("multi-gpu-split", "adjusted", n, "warning") for n in res.notes]
    return res.split.estimate, reasons, chosen


def _flash_attn_on(ctx: RuleCtx, mode: str) -> bool:
    """What ``--flash-attn auto`` resolves to: llama-server enables it where the backend has
    kernels for it (CUDA, CPU); llama-cpp-python leaves it off unless asked."""
    if mode != "auto":
        return mode == "on"
    return ctx.device in ctx.traits.flash_attn_auto_on


def _gib(n: int) -> str:
    return gib(n, unit=False)
