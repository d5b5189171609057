"""The planner: a pure function from (hardware, model facts, request, installed engines) to a plan."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..errors import RequestError
from ..hardware.types import GPUInfo
from ..units import gib
from . import memory, placement, split, vllm_fit
from .choice import choose_backend
from .context import PlanInputs, RuleCtx
from .plan import EngineSettings, LaunchPlan, MemoryEstimate, Reason
from .rules import RULES

_SETTING_FIELDS = {f.name for f in fields(EngineSettings)}
MIN_CTX = 2048


def _pick_gpus(inp: PlanInputs, device: str) -> tuple[GPUInfo, ...]:
    if device == "cpu":
        return ()
    gpus = inp.hardware.gpus
    if inp.request.main_gpu is not None:
        return tuple(g for g in gpus if g.index == inp.request.main_gpu) or gpus[:1]
    # Most free memory first: on a shared box that is the least busy card.
    return tuple(sorted(gpus, key=lambda g: -(g.memory_free or g.memory_total)))


def _base_settings(inp: PlanInputs) -> dict[str, Any]:
    cpu = inp.hardware.cpu
    n_ctx = min(inp.default_n_ctx, inp.facts.n_ctx_train or inp.default_n_ctx)
    return {
        "n_ctx": n_ctx,
        "n_batch": 2048,
        "n_ubatch": 512,
        "n_threads": max(1, cpu.cores_physical or cpu.cores_logical),
        "n_parallel": 1,
        "n_gpu_layers": 0,
        "flash_attn": "auto",
    }


def _apply_rules(ctx: RuleCtx, values: dict[str, Any], user: dict[str, Any]) -> list[Reason]:
    reasons: list[Reason] = []
    for rule in RULES:
        if not rule.when(ctx):
            continue
        wanted = rule.sets(ctx)
        clash = {k: v for k, v in wanted.items() if k in user and user[k] != v}
        values.update({k: v for k, v in wanted.items() if k not in user})
        if clash:
            mine = ", ".join(f"{k}={user[k]!r}" for k in clash)
            reasons.append(
                Reason(rule.id, f"kept your {mine}", f"rule suggests {rule.effect}: {rule.why}", "warning")
            )
        else:
            reasons.append(Reason(rule.id, rule.effect, rule.why))
    return reasons


def _cpu_vulkan_device(inp: PlanInputs) -> int | None:
    for d in inp.hardware.vulkan_devices:
        if d.device_type == "cpu":
            return d.index
    return None


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


def _fit(
    inp: PlanInputs, ctx: RuleCtx, values: dict[str, Any], user: dict[str, Any]
) -> tuple[MemoryEstimate, list[Reason]]:
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
        return memory.estimate(facts, n_ctx=values["n_ctx"], n_gpu_layers=ngl, **kw), []
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
) -> tuple[split.SplitFit, list[int]]:
    budgets = [_budget(inp, g)[0] for g in gpus]
    res = split.fit_split(
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


def _plan_split(
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
        if values["n_gpu_layers"] > inp.facts.n_layer and values["n_ctx"] >= wanted_ctx:
            return None  # one card holds it all
        mode = "layer"
        # The fewest cards that hold every layer: each extra card adds a hop per token.
        for k in range(2, len(cards) + 1):
            chosen = cards[:k]
            res, budgets = _fit_split(inp, ctx, trial, user, chosen, mode)
            if res.fits and res.n_gpu_layers > inp.facts.n_layer and res.n_ctx >= wanted_ctx:
                break
        if not res.fits or (res.n_gpu_layers, res.n_ctx) <= (values["n_gpu_layers"], values["n_ctx"]):
            return None  # splitting gains nothing: keep the single-card plan
    if not res.fits:
        return None
    values.update(split_mode=mode, tensor_split=values.get("tensor_split") or res.tensor_split,
                  n_gpu_layers=res.n_gpu_layers, n_ctx=res.n_ctx)  # fmt: skip
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


def plan(inp: PlanInputs) -> LaunchPlan:
    """Choose the backend, apply the rules, fit memory and build the command line."""
    backend, fallbacks, reasons = choose_backend(inp)
    install = inp.backends[backend]
    device, traits = install.row.device, install.row.traits
    gpus = _pick_gpus(inp, device)
    env_extra: dict[str, str] = {}
    if device == "vulkan" and not gpus:
        lava = _cpu_vulkan_device(inp)
        if lava is not None:
            # ggml skips CPU-type Vulkan devices unless they are named explicitly.
            env_extra["GGML_VK_VISIBLE_DEVICES"] = str(lava)
            reasons.append(
                Reason(
                    "vulkan-cpu-device",
                    f"Vulkan device {lava} (CPU type), -ngl {inp.facts.n_layer + 1}",
                    "no Vulkan GPU here; ggml uses a CPU-type device only when named, and it "
                    "shares system RAM, so every layer goes to it",
                    "warning",
                )
            )
    ctx = RuleCtx(inp, install, gpus)
    req = inp.request
    user = {k: v for k in req.user_set() if k in _SETTING_FIELDS and (v := getattr(req, k)) is not None}
    values = _base_settings(inp)
    if "GGML_VK_VISIBLE_DEVICES" in env_extra and inp.request.n_gpu_layers is None:
        values["n_gpu_layers"] = inp.facts.n_layer + 1
    reasons += _apply_rules(ctx, values, user)
    values.update(user)
    if traits.slots_share_ctx and values["n_parallel"] > 1 and "n_ctx" not in user:
        # llama-server's -c is shared by its slots: give each slot the default context.
        values["n_ctx"] *= values["n_parallel"]
        reasons.append(
            Reason(
                "ctx-per-slot",
                f"--ctx-size {values['n_ctx']}",
                f"{values['n_ctx'] // values['n_parallel']} tokens for each of {values['n_parallel']} slots; "
                "llama-server divides -c among its slots",
            )
        )
    # llama-server gives each slot n_ctx / n_parallel tokens: that is what must stay within training.
    per_seq = req.n_ctx // values["n_parallel"] if req.n_ctx and traits.slots_share_ctx else req.n_ctx
    if per_seq and inp.facts.n_ctx_train and per_seq > inp.facts.n_ctx_train:
        reasons.append(
            Reason(
                "ctx-beyond-training",
                f"kept your n_ctx={req.n_ctx}",
                f"each request may use {per_seq} tokens but the model was trained for "
                f"{inp.facts.n_ctx_train}; quality drops past it",
                "warning",
            )
        )
    if not traits.memory_fit:  # the engine sizes itself (vLLM): its context and its share of each GPU
        values.setdefault("max_model_len", values["n_ctx"])
        if device != "cpu":
            values.setdefault("tensor_parallel_size", 1)
    wanted_ctx = values["n_ctx"]
    if traits.memory_fit:
        estimate, fit_reasons = _fit(inp, ctx, values, user)
    elif device != "cpu" and ctx.gpu is not None and values["tensor_parallel_size"] == 1:
        # Sized from an estimate (vllm_fit.py), not a share of the card.
        estimate, fit_reasons = vllm_fit.fit(inp.facts, values, ctx.gpu, placement.margin_of(inp), install.flags)
    else:
        if device != "cpu":
            values.setdefault("gpu_memory_utilization", traits.gpu_memory_share)
        estimate, fit_reasons = None, []
    reasons += fit_reasons
    multi = _plan_split(inp, ctx, values, user, estimate, wanted_ctx) if estimate is not None else None
    if multi is not None:
        estimate, split_reasons, gpus = multi
        # The single-card fit's notes no longer hold: the split has its own.
        reasons = [r for r in reasons if r.rule != "memory-fit"] + split_reasons
    elif traits.memory_fit and gpus and values["n_gpu_layers"] > 0:
        gpus = gpus[:1]
        values.pop("tensor_split", None)
    settings = EngineSettings(**{k: v for k, v in values.items() if k in _SETTING_FIELDS})
    adapter = install.launcher()
    gpu_ids = tuple(g.index for g in gpus) if values["n_gpu_layers"] or not traits.memory_fit else ()
    argv = adapter.argv(settings, inp.facts.path, alias=inp.name)
    env = {**adapter.env(settings, gpu_ids), **env_extra}
    return LaunchPlan(
        name=inp.name, backend=backend, model_path=inp.facts.path, server_type=req.server_type,
        settings=settings, argv=tuple(argv), env=env, reasons=tuple(reasons), memory=estimate,
        fallbacks=fallbacks, gpus=gpu_ids,
    )  # fmt: skip
