"""The planner's fitting step on one card: the budget after the margin, the calibration of earlier
loads, the fastest placement (strategies.py), and the reasons that say so."""

from __future__ import annotations

from typing import Any

from ..hardware.types import GPUInfo
from ..units import gib
from . import calibration, experts, strategies
from .context import PlanInputs, RuleCtx
from .margin import Margin
from .plan import MemoryEstimate, Prediction, Reason


def margin_of(inp: PlanInputs) -> Margin:
    return Margin.of(inp.gpu_margin_mib, inp.gpu_margin)


def budget(inp: PlanInputs, gpu: GPUInfo) -> tuple[int, int]:
    """(the most a plan may take on ``gpu``, the margin kept beside a plan of that size)."""
    total = gpu.memory_total
    free = gpu.memory_free if gpu.memory_free is not None else total
    if gpu.integrated:
        # Shared memory: the GPU's pool is also the system's RAM.
        free = min(free, inp.hardware.cpu.memory_available)
    m = margin_of(inp)
    b = m.budget(free)
    return b, m.for_bytes(b)


def experts_form(ctx: RuleCtx) -> tuple[str, str]:
    """How this build keeps experts on the CPU: ("n-cpu-moe" | "override-tensor" | "", why not)."""
    flags = ctx.install.flags
    if "--n-cpu-moe" in flags:
        return "n-cpu-moe", ""
    if "--override-tensor" in flags:
        return "override-tensor", ""
    if not flags:
        return "", f"{ctx.backend} does not say (no --help read) whether it can place tensors"
    return "", f"this {ctx.backend} build has neither --n-cpu-moe nor --override-tensor"


def build_id(ctx: RuleCtx) -> str:
    return ctx.install.executable or ctx.backend


def fit(
    inp: PlanInputs, ctx: RuleCtx, values: dict[str, Any], user: dict[str, Any], kw: dict[str, Any]
) -> tuple[MemoryEstimate, list[Reason], Prediction]:
    """Fit ``values`` to the first card of ``ctx``: sets n_gpu_layers, n_ctx and, for a mixture of
    experts on a tight card, n_cpu_moe or override_tensor."""
    facts, gpu = inp.facts, ctx.gpu
    assert gpu is not None
    room, _ = budget(inp, gpu)
    key = calibration.key_of(facts.path, ctx.backend, build_id(ctx), values)
    delta, rec = calibration.bias(inp.calibration, key)
    form, why_not = experts_form(ctx) if facts.is_moe else ("", "")
    choice = strategies.choose(
        facts, budget=room, n_ctx=values["n_ctx"], n_ctx_min=min(2048, values["n_ctx"]),
        ctx_pinned="n_ctx" in user, gpu=gpu, host_bandwidth=inp.host_bandwidth, est_kw=kw,
        experts_ok=bool(form), experts_why_not=why_not, bias=delta,
    )  # fmt: skip
    c = choice.chosen
    values["n_gpu_layers"], values["n_ctx"] = c.n_gpu_layers, choice.n_ctx
    if c.n_cpu_moe or c.partial:
        native = form == "n-cpu-moe"
        if native and c.n_cpu_moe:
            values["n_cpu_moe"] = c.n_cpu_moe
        if c.partial or not native:
            values["override_tensor"] = experts.override_pattern(c.n_cpu_moe, c.partial, full_blocks=not native)
    planned = c.estimate.gpu_total + delta
    margin = margin_of(inp).for_bytes(planned)
    free = room + margin_of(inp).for_bytes(room)
    what = f"-ngl {c.n_gpu_layers}, context {choice.n_ctx}"
    if c.n_cpu_moe and form == "n-cpu-moe":
        what += f", --n-cpu-moe {c.n_cpu_moe}"
    elif c.n_cpu_moe:
        what += f", -ot (experts of blocks 0-{c.n_cpu_moe - 1} on the CPU)"
    if c.partial:
        what += f", {c.partial} of block {c.n_cpu_moe}'s 3 expert tensors on the CPU (-ot)"
    why = (
        f"{gib(planned)} planned on {gpu.name} of {gib(free)} free, keeping a "
        f"{gib(margin)} margin ({margin_of(inp).describe()}); predicted {c.speed.text()}"
    )
    reasons = [Reason("memory-fit", what, why)]
    reasons += [Reason("memory-fit", "adjusted", n, "warning") for n in choice.notes]
    if rec is not None:
        mib = (int(rec["measured"]) - int(rec["predicted"])) // 2**20
        reasons.append(Reason(
            "calibration", f"predicted {gib(c.estimate.gpu_total)}, last measured {gib(rec['measured'])}",
            f"the last load of this model with these settings took {gib(rec['measured'])} where "
            f"{gib(rec['predicted'])} was predicted ({mib:+d} MiB); this plan counts that difference too",
        ))  # fmt: skip
    if facts.is_moe and c.strategy != "all-gpu":
        reasons.append(_placement_reason(c, choice.runner_up, facts.expert_used_count, facts.expert_count))
    if facts.is_moe and choice.experts_unavailable and c.strategy != "all-gpu":
        reasons.append(Reason("placement", "no expert offload", choice.experts_unavailable + "; whole layers "
                              "move to the CPU instead (slower for a mixture of experts)", "warning"))  # fmt: skip
    return c.estimate, reasons, prediction_of(c, choice.runner_up)


def prediction_of(c: strategies.Candidate, runner: strategies.Candidate | None = None) -> Prediction:
    up = prediction_of(runner) if runner is not None else None
    return Prediction(c.speed.decode_tps, c.speed.prompt_tps, c.strategy, c.flags(), up)


def _placement_reason(
    c: strategies.Candidate, runner: strategies.Candidate | None, used: int, count: int
) -> Reason:
    names = {"experts": "experts on the CPU", "layers": "whole layers on the CPU", "all-gpu": "all on the GPU"}
    what = f"{names[c.strategy]} ({c.flags()}): predicted {c.speed.text()}"
    if c.strategy == "experts":
        why = (f"a token reads only {used} of {count} experts, so keeping experts of {c.n_cpu_moe} blocks "
               "in host RAM costs less than moving whole layers; attention, KV and shared weights stay on the GPU")  # fmt: skip
    else:
        why = "the fastest placement that fits"
    if runner is not None:
        why += f"; runner-up {names[runner.strategy]} ({runner.flags()}): {runner.speed.text()}"
    return Reason("placement", what, why)
