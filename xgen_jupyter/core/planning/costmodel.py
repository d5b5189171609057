"""Predicted tokens/s of a placement: bytes read per token from each memory over its bandwidth.

Decoding one token reads every weight it uses once: the GPU-side ones at the card's bandwidth,
the CPU-side ones at the host's. For a mixture of experts only the routed experts a token picks
are read (``expert_used_count / expert_count`` of the expert tensors), which is why moving
experts to the CPU costs far less than moving whole layers. A prompt is processed in ubatches:
the engine copies CPU-side weights to the GPU for each one (op offload), so its cost is those
bytes over the PCIe link plus the GPU's compute. A block whose experts are split between the GPU
and the CPU (``partial``) measured slower prompts than the whole block on the CPU, also with more of
it on the GPU (H200, benchmarks/results/plans.md): it gets no prompt credit for its GPU-side expert
tensors, and costs one more copy of its experts (SPLIT_BLOCK_COPIES).

The model ranks placements; its absolute numbers are leads. Constants are named and say where
they come from.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hardware.types import GPUInfo
from ..models.facts import ModelFacts
from .memory import kv_cells, layer_kv_bytes_per_cell

#: Datasheet memory bandwidth (bytes/s) by a lower-case substring of the device name; the
#: first match wins, so specific names come before general ones.
GPU_BANDWIDTH: tuple[tuple[str, float], ...] = (
    ("h200", 4.8e12), ("gh200", 4.0e12), ("h100 nvl", 3.9e12), ("h100 pcie", 2.0e12), ("h100", 3.35e12),
    ("h800", 3.35e12), ("b200", 8.0e12), ("a100-sxm4-80", 2.04e12), ("a100 80", 1.94e12), ("a100", 1.56e12),
    ("l40s", 0.864e12), ("l40", 0.864e12), ("l4", 0.3e12), ("a10", 0.6e12), ("rtx 5090", 1.79e12),
    ("rtx 4090", 1.01e12), ("rtx 3090", 0.936e12), ("rtx 4080", 0.717e12), ("mi300x", 5.3e12),
    ("mi325x", 6.0e12), ("mi300a", 5.3e12), ("mi250", 3.2e12), ("mi210", 1.6e12), ("7900 xtx", 0.96e12),
    ("7900 xt", 0.8e12), ("8060s", 0.256e12), ("8050s", 0.256e12), ("gfx1151", 0.256e12),
)  # fmt: skip
#: Dense fp16/bf16 tensor TFLOP/s by the same kind of substring (prompt processing is compute-bound).
GPU_TFLOPS: tuple[tuple[str, float], ...] = (
    ("h200", 990), ("h100 pcie", 756), ("h100", 990), ("b200", 2250), ("a100", 312), ("l40s", 362),
    ("l4", 121), ("rtx 5090", 210), ("rtx 4090", 165), ("rtx 3090", 71), ("mi300x", 1307), ("mi250", 362),
    ("mi210", 181), ("7900 xtx", 123), ("7900 xt", 103), ("8060s", 59), ("gfx1151", 59),
)  # fmt: skip
#: Unknown discrete card / unknown host: conservative guesses.
DEFAULT_GPU_BANDWIDTH = 0.5e12
DEFAULT_GPU_TFLOPS = 100.0
DEFAULT_HOST_BANDWIDTH = 20e9
#: Share of the datasheet bandwidth llama.cpp's matrix-vector kernels reach on large weights.
GPU_EFFICIENCY = 0.8
#: Share of the measured host copy bandwidth the CPU's quantized dot products reach.
CPU_EFFICIENCY = 0.6
#: Fixed cost per block per token on a GPU (kernel launches, syncs): an 8B Llama decodes at
#: ~215-220 t/s on both an H100 and an H200 (1.43x the bandwidth), so ~3 ms of each token's
#: ~4.6 ms does not scale with bandwidth: ~90 us over 32 blocks.
GPU_PER_LAYER_S = 90e-6
#: Fixed cost per block per token on the CPU (a dozen ops, each a barrier across threads), and
#: per block whose experts run on the CPU (the expert matmuls and the hand-over back).
CPU_PER_LAYER_S = 150e-6
CPU_EXPERTS_PER_LAYER_S = 20e-6
#: A round trip between GPU and CPU for a token (two small copies and a sync).
SWITCH_S = 60e-6
#: Effective host-to-GPU copy rate for CPU-side weights during prompt processing (PCIe 4/5 x16).
PCIE_BANDWIDTH = 25e9
#: Prompt cost of a block whose experts are split between GPU and CPU, in copies of that block's
#: experts beside the ones counted: its GPU-side tensors get no credit, and one copy more. Six
#: same-run pairs on an H200 (a split block vs the whole block on the CPU next to it, 512-token
#: prompts, runs 2-4 of benchmarks/results/plans.md): +5.3 ms per ubatch on average (-2.9 .. +13.8),
#: about one block's share of the ubatch time (4.2 ms at 37 CPU-side blocks, 6.1 ms at 18), also
#: where the split block kept one expert tensor more on the GPU than the whole-block plan.
SPLIT_BLOCK_COPIES = 1
#: Bytes of active weights per second a GPU "processes" in a 512-token ubatch per dense TFLOP/s:
#: an 8B Q4_K_M (4.62 GB) prompts at ~8970 t/s on an H100 (990 TFLOP/s): 4.62e9 * 8970 / 990.
PROMPT_BYTES_PER_TFLOP = 4.19e10
#: KV cells a typical decode step reads (a chat turn or two into the context).
TYPICAL_FILL = 1024


def _lookup(table: tuple[tuple[str, float], ...], name: str, default: float) -> float:
    low = name.lower()
    for key, value in table:
        if key in low:
            return value
    return default


def gpu_bandwidth(gpu: GPUInfo, host_bandwidth: float) -> float:
    """Datasheet bytes/s of ``gpu``; an unknown integrated GPU shares the host's memory."""
    bw = _lookup(GPU_BANDWIDTH, f"{gpu.name} {gpu.arch or ''}", 0.0)
    if bw:
        return bw
    return host_bandwidth if gpu.integrated else DEFAULT_GPU_BANDWIDTH


@dataclass(frozen=True)
class Placement:
    """Where a llama.cpp engine's weights live: ``n_gpu_layers`` as given to the engine, the
    experts of the first ``n_cpu_moe`` blocks kept on the CPU."""

    n_gpu_layers: int
    n_cpu_moe: int = 0
    head_first: bool = True
    #: Expert tensors (of three) of block ``n_cpu_moe`` also on the CPU.
    partial: int = 0


@dataclass(frozen=True)
class Speed:
    decode_tps: float
    prompt_tps: float
    gpu_read: int  # bytes per decoded token, from the GPU's memory
    cpu_read: int  # ... and from host RAM
    cpu_weights: int  # weight bytes resident on the CPU (copied to the GPU for each prompt ubatch)

    def text(self) -> str:
        return f"~{self.decode_tps:.0f} t/s decode, ~{self.prompt_tps:.0f} t/s prompt"


def token_bytes(facts: ModelFacts, place: Placement, n_ctx: int) -> tuple[int, int, int, int]:
    """(GPU bytes, CPU bytes) read per decoded token, CPU-resident weight bytes, GPU blocks."""
    n = facts.n_layer
    ngl = n + 1 if place.n_gpu_layers < 0 or place.n_gpu_layers > n else place.n_gpu_layers
    blocks = max(ngl - 1, 0) if place.head_first else min(ngl, n)
    first_gpu = n - blocks
    head_gpu = ngl > n or (place.head_first and ngl > 0)
    share = facts.expert_used_count / facts.expert_count if facts.is_moe else 1.0
    experts = facts.layer_expert_bytes or (0,) * n
    gpu = cpu = resident = 0
    fill = min(TYPICAL_FILL, n_ctx)
    for il in range(n):
        exp = experts[il] if il < len(experts) else 0
        rest = facts.layer_bytes[il] - exp
        kv = kv_cells(facts, il, fill, 1, 0) * layer_kv_bytes_per_cell(facts, il)
        kv = min(kv, fill * layer_kv_bytes_per_cell(facts, il))
        on_gpu = il >= first_gpu
        exp_cpu = not on_gpu or il < place.n_cpu_moe
        if on_gpu and il == place.n_cpu_moe and place.partial:
            part = exp * place.partial // 3  # that share of the block's experts is read from the CPU
            cpu += int(part * share)
            resident += part
            exp -= part
        if on_gpu:
            gpu += rest + kv
        else:
            cpu += rest + kv
            resident += rest
        if exp_cpu:
            cpu += int(exp * share)
            resident += exp
        else:
            gpu += int(exp * share)
    if head_gpu:
        gpu += facts.output_bytes
    else:
        cpu += facts.output_bytes
        resident += facts.output_bytes
    return gpu, cpu, resident, blocks


def predict(
    facts: ModelFacts,
    place: Placement,
    *,
    n_ctx: int,
    gpu: GPUInfo | None,
    host_bandwidth: float | None = None,
    n_ubatch: int = 512,
) -> Speed:
    """Predicted decode and prompt tokens/s of ``place`` on ``gpu`` (None: CPU only)."""
    host = (host_bandwidth or DEFAULT_HOST_BANDWIDTH) * CPU_EFFICIENCY
    if gpu is None:
        place = Placement(0, 0, place.head_first)
    g_read, c_read, resident, blocks = token_bytes(facts, place, n_ctx)
    if gpu is None:
        t = c_read / host
        # CPU prompt: bound by arithmetic; a modest multiple of decode per token.
        return Speed(1 / max(t, 1e-9), 8 / max(t, 1e-9), 0, c_read, resident)
    bw = gpu_bandwidth(gpu, host_bandwidth or DEFAULT_HOST_BANDWIDTH) * GPU_EFFICIENCY
    cpu_blocks = facts.n_layer - blocks
    first_gpu = facts.n_layer - blocks
    split = facts.is_moe and place.partial > 0 and first_gpu <= place.n_cpu_moe < facts.n_layer
    exp_blocks = max(0, min(place.n_cpu_moe, blocks)) if facts.is_moe else 0
    if split:
        # Hand-overs of the split block: down alone on the CPU is one; up and down on the CPU with
        # gate on the GPU between them (llama.cpp computes up, gate, then down) are two.
        exp_blocks += 2 if place.partial >= 2 else 1
    t = (g_read / bw + c_read / host + blocks * GPU_PER_LAYER_S + cpu_blocks * CPU_PER_LAYER_S
         + exp_blocks * CPU_EXPERTS_PER_LAYER_S)
    if blocks < facts.n_layer or c_read:
        t += SWITCH_S
    tflops = _lookup(GPU_TFLOPS, f"{gpu.name} {gpu.arch or ''}", DEFAULT_GPU_TFLOPS)
    active = g_read + c_read
    ub = max(1, n_ubatch)
    copied = resident
    if split:
        exp = facts.layer_expert_bytes[place.n_cpu_moe]
        copied += exp - exp * place.partial // 3 + SPLIT_BLOCK_COPIES * exp
    t_ub = ub * active / (PROMPT_BYTES_PER_TFLOP * tflops) + copied / PCIE_BANDWIDTH
    return Speed(1 / t, ub / t_ub, g_read, c_read, resident)
