"""Shared pieces of the placement tests: a real small MoE GGUF, backends with a build's flags, a card."""

from __future__ import annotations

from pathlib import Path

from tests.model_files import write_moe_gguf
from xgen_jupyter.core.adapters import registry
from xgen_jupyter.core.hardware.types import CPUInfo, GPUInfo, HardwareReport
from xgen_jupyter.core.planning import experts
from xgen_jupyter.core.planning.backend import BackendInstall
from xgen_jupyter.core.planning.context import GiB, PlanInputs
from xgen_jupyter.core.planning.margin import Margin
from xgen_jupyter.core.planning.plan import LaunchPlan
from xgen_jupyter.core.planning.planner import plan
from xgen_jupyter.core.planning.request import parse_request

CPU = CPUInfo(16, 32, 128 * GiB, 100 * GiB, "test cpu")
CUDA_FLAGS = frozenset({"--n-cpu-moe", "--override-tensor", "--fit", "--split-mode=tensor", "--split-mode=layer"})


def write_moe(path: Path) -> Path:
    """8 blocks of 16 experts (2 used), f32: ~12 MiB of experts per block."""
    return write_moe_gguf(path, n_layer=8, n_embd=128, n_head=4, n_head_kv=2, n_expert=16, n_expert_used=2,
                          n_ff_exp=512, n_vocab=256)  # fmt: skip


def installs(flags: frozenset[str] = CUDA_FLAGS) -> dict[str, BackendInstall]:
    return {
        r.id: BackendInstall(r, r.id == "llama-server-cuda", "/opt/llama-server" if r.id == "llama-server-cuda" else None,
                             flags=flags if r.id == "llama-server-cuda" else frozenset())
        for r in registry.rows()
    }  # fmt: skip


def h200(free: int) -> GPUInfo:
    return GPUInfo(0, "NVIDIA H200", "nvidia", 141 * GiB, free, "sm_90", "9.0", "Hopper", source="nvml")


def plan_on(facts, free: int, flags: frozenset[str] = CUDA_FLAGS, **kw) -> LaunchPlan:  # type: ignore[no-untyped-def]
    req = parse_request({"model": facts.path, "n_ctx": 4096, "n_parallel": 1, "mlock": False})
    hw = HardwareReport("test", (h200(free),), CPU)
    return plan(PlanInputs(hw, facts, req, installs(flags), "m", **kw))


def full_gpu(facts) -> int:
    """GPU bytes of the whole model on the card, as the planner estimates it for plan_on's request."""
    return experts.estimate(facts, n_ctx=4096, n_gpu_layers=-1, n_ubatch=512, n_outputs=1, per_seq_attention=True,
                            flash_attn=True, head_first=True, device="cuda").gpu_total  # fmt: skip


def free_for(planned: int) -> int:
    """Free memory that leaves ``planned`` bytes (and a few KiB for rounding) after the default margin."""
    return planned + Margin().for_bytes(planned) + 4096
