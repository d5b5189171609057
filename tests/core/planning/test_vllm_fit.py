"""vLLM plans on a GPU sized from an estimate (weights, KV, activations), not 90% of the card."""

from __future__ import annotations

import pytest

from tests.core.planning.moe_helpers import CPU
from tests.model_files import write_hf
from xgen_jupyter.core.adapters import registry
from xgen_jupyter.core.box.devices import claims_for
from xgen_jupyter.core.hardware.types import GPUInfo, HardwareReport
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning import vllm_fit
from xgen_jupyter.core.planning.backend import BackendInstall
from xgen_jupyter.core.planning.context import GiB, PlanInputs
from xgen_jupyter.core.planning.margin import Margin
from xgen_jupyter.core.planning.planner import plan
from xgen_jupyter.core.planning.request import parse_request


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    folder = write_hf(tmp_path_factory.mktemp("hf") / "tiny-llama", n_layer=4, hidden=256, heads=4, kv_heads=2,
                      vocab=1000)  # fmt: skip
    return inspect_model(str(folder))


def vllm_only(device: str, flags: frozenset[str] = frozenset()) -> dict[str, BackendInstall]:
    want = f"vllm-{device}"
    return {r.id: BackendInstall(r, r.id == want, "/venv/bin/python" if r.id == want else None,
                                 flags=flags if r.id == want else frozenset()) for r in registry.rows()}  # fmt: skip


def h100(free_gib: float) -> GPUInfo:
    return GPUInfo(0, "NVIDIA H100 80GB HBM3", "nvidia", 80 * GiB, int(free_gib * GiB), "sm_90", "9.0", "Hopper")


def test_kv_and_weights_terms(hf):
    # 4 layers x 2 KV heads x 64 dims x K and V x 2 bytes = 2 KiB a token; 4096 tokens x 2 sequences.
    assert vllm_fit.kv_bytes(hf, 4096, 2) == 4096 * 2 * 4 * 2 * 64 * 2 * 2
    assert vllm_fit.kv_bytes(hf, 4097, 1) == 4112 * 4 * 2 * 64 * 2 * 2  # whole 16-token blocks
    assert vllm_fit.weight_bytes(hf, None) == hf.weight_bytes  # bf16 served as stored
    assert vllm_fit.weight_bytes(hf, "float32") == hf.n_params * 4


def test_gpu_plan_takes_its_estimate_not_ninety_percent(hf):
    card = h100(30)
    report = HardwareReport("t", (card,), CPU)
    p = plan(PlanInputs(report, hf, parse_request({"model": hf.path, "n_ctx": 4096, "n_parallel": 2}),
                        vllm_only("cuda"), "m"))  # fmt: skip
    assert p.backend == "vllm-cuda" and p.memory is not None
    s = p.settings
    assert s.kv_cache_memory_bytes == vllm_fit.kv_bytes(hf, 4096, 2)
    argv = " ".join(p.argv)
    assert f"--kv-cache-memory-bytes {s.kv_cache_memory_bytes}" in argv
    assert s.gpu_memory_utilization is not None and s.gpu_memory_utilization < 0.1  # a small model: a few GiB
    want = p.memory.gpu_total + Margin().for_bytes(p.memory.gpu_total)
    assert s.gpu_memory_utilization * card.memory_total >= want
    assert "vllm-size" in {r.rule for r in p.reasons}
    (claim,) = [c for c in claims_for(p, report, Margin()) if c.kind == "gpu"]
    assert claim.bytes == p.memory.gpu_total  # the box registry reserves the estimate, not 90%


def test_busy_card_warns_and_old_builds_get_only_the_fraction(hf):
    p = plan(PlanInputs(HardwareReport("t", (h100(1.0),), CPU), hf,
                        parse_request({"model": hf.path, "n_ctx": 4096}), vllm_only("cuda"), "m"))  # fmt: skip
    assert any(r.rule == "vllm-size" and r.level == "warning" for r in p.reasons)
    old = plan(PlanInputs(HardwareReport("t", (h100(30),), CPU), hf, parse_request({"model": hf.path}),
                          vllm_only("cuda", frozenset({"--gpu-memory-utilization"})), "m"))  # fmt: skip
    assert old.settings.kv_cache_memory_bytes is None and "--kv-cache-memory-bytes" not in old.argv
    assert "--gpu-memory-utilization" in old.argv


def test_cpu_vllm_plan_is_unchanged(hf):
    p = plan(PlanInputs(HardwareReport("t", (), CPU), hf, parse_request({"model": hf.path}), vllm_only("cpu"), "m"))
    assert p.backend == "vllm-cpu" and p.memory is None and p.settings.kv_cache_memory_bytes is None
