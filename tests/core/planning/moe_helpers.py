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


def write_a3b_header(path: Path, layers: int = 48) -> Path:
    """The Qwen3-30B-A3B shape of the H200 benchmark (benchmarks/gpu/make_shapes.py: qwen3moe, 48 blocks,
    128 experts of which 8 used, Q4_0) as tensor infos only, in a sparse file of the full size: the
    planner reads headers, so the 17 GB of weights need not exist."""
    import gguf
    import numpy as np

    q4 = gguf.GGMLQuantizationType.Q4_0
    w = gguf.GGUFWriter(str(path), "qwen3moe")
    for add, v in ((w.add_block_count, layers), (w.add_embedding_length, 2048), (w.add_feed_forward_length, 6144),
                   (w.add_expert_feed_forward_length, 768), (w.add_expert_count, 128), (w.add_expert_used_count, 8),
                   (w.add_head_count, 32), (w.add_head_count_kv, 4), (w.add_key_length, 128),
                   (w.add_value_length, 128), (w.add_context_length, 40960)):  # fmt: skip
        add(v)
    data = 0

    def info(name: str, *shape: int, quant: bool = True) -> None:
        nonlocal data
        if quant:  # Q4_0: 18 bytes per 32 values; the writer takes the byte shape
            shape = (*shape[:-1], shape[-1] // 32 * 18)
        n = int(np.prod(shape)) * (1 if quant else 4)
        w.add_tensor_info(name, shape, np.dtype(np.uint8 if quant else np.float32), n, raw_dtype=q4 if quant else None)
        data += -(-n // 32) * 32

    info("token_embd.weight", 151936, 2048)
    for i in range(layers):
        b = f"blk.{i}."
        for name, rows, cols in (("attn_q", 4096, 2048), ("attn_k", 512, 2048), ("attn_v", 512, 2048),
                                 ("attn_output", 2048, 4096)):  # fmt: skip
            info(b + name + ".weight", rows, cols)
        for name, n in (("attn_norm", 2048), ("attn_q_norm", 128), ("attn_k_norm", 128), ("ffn_norm", 2048)):
            info(b + name + ".weight", n, quant=False)
        info(b + "ffn_gate_inp.weight", 128, 2048, quant=False)  # the router stays f32
        info(b + "ffn_gate_exps.weight", 128, 768, 2048)
        info(b + "ffn_up_exps.weight", 128, 768, 2048)
        info(b + "ffn_down_exps.weight", 128, 2048, 768)
    info("output_norm.weight", 2048, quant=False)
    info("output.weight", 151936, 2048)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    with open(path, "r+b") as f:
        f.truncate(f.seek(0, 2) + 32 + data)
    return path
