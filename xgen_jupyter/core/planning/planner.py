"""The planner: a pure function from (hardware, model facts, request, installed engines) to a plan."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..hardware.types import GPUInfo
from . import fitting, jinja, placement, vllm_fit
from .choice import choose_backend
from .context import PlanInputs, RuleCtx
from .plan import EngineSettings, LaunchPlan, Prediction, Reason
from .rules import RULES

_SETTING_FIELDS = {f.name for f in fields(EngineSettings)}


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
    reasons += jinja.settle(ctx, values, user)
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
    prediction: Prediction | None = None
    if traits.memory_fit:
        estimate, fit_reasons, prediction = fitting.fit_single(inp, ctx, values, user)
    elif device != "cpu" and ctx.gpu is not None and values["tensor_parallel_size"] == 1:
        # Sized from an estimate (vllm_fit.py), not a share of the card.
        estimate, fit_reasons = vllm_fit.fit(inp.facts, values, ctx.gpu, placement.margin_of(inp), install.flags)
    else:
        if device != "cpu":
            values.setdefault("gpu_memory_utilization", traits.gpu_memory_share)
        estimate, fit_reasons = None, []
    reasons += fit_reasons
    multi = fitting.plan_split(inp, ctx, values, user, estimate, wanted_ctx) if estimate is not None else None
    if multi is not None:
        estimate, split_reasons, gpus = multi
        prediction = None  # the split's reasons carry its own prediction (text only for now)
        # The single-card fit's notes no longer hold: the split has its own.
        reasons = [r for r in reasons if r.rule not in ("memory-fit", "placement", "calibration")] + split_reasons
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
        fallbacks=fallbacks, gpus=gpu_ids, prediction=prediction,
    )  # fmt: skip
