"""The planner is a pure function: hardware report + model facts + request + engines -> plan."""

from __future__ import annotations

from dataclasses import replace

import pytest

from xgen_jupyter.core.adapters.registry import backend_ids, row
from xgen_jupyter.core.errors import BackendUnavailable, RequestError
from xgen_jupyter.core.hardware.types import CPUInfo, GPUInfo, HardwareReport, VulkanDevice
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning.backend import BackendInstall
from xgen_jupyter.core.planning.context import GiB, Occupant, PlanInputs
from xgen_jupyter.core.planning.planner import plan
from xgen_jupyter.core.planning.request import parse_request

CPU = CPUInfo(16, 32, 128 * GiB, 100 * GiB, "test cpu")
# GPU descriptions as the detectors report them from the recorded devices in shared/devices.
STRIX = GPUInfo(0, "AMD Radeon 8060S Graphics", "amd", 96 * GiB, 90 * GiB, "gfx1151", None, "RDNA", True, source="amdsmi")
XTX = GPUInfo(0, "Radeon RX 7900 XTX", "amd", 24 * GiB, 23 * GiB, "gfx1100", None, "RDNA", False, source="amdsmi")
MI300X = GPUInfo(0, "AMD Instinct MI300X", "amd", 192 * GiB, 190 * GiB, "gfx942", None, "CDNA", False, source="amdsmi")
H100 = GPUInfo(0, "NVIDIA H100 80GB HBM3", "nvidia", 80 * GiB, 79 * GiB, "sm_90", "9.0", "Hopper", False, source="nvml")


def installs(*available: str) -> dict[str, BackendInstall]:
    return {b: BackendInstall(row(b), b in available, f"/opt/{b}" if b in available else None) for b in backend_ids()}


ALL = installs(*backend_ids())


@pytest.fixture(scope="module")
def gemma(default_model):
    return inspect_model(default_model)


def make(facts, gpus=(), backends=ALL, occupied=(), vulkan=(), **req):
    report = HardwareReport("test", tuple(gpus), CPU, tuple(vulkan))
    request = parse_request({"model": "default", **req})
    return plan(PlanInputs(report, facts, request, backends, "m", occupied=tuple(occupied)))


def rules(p):
    return {r.rule for r in p.reasons}


def test_strix_halo_igpu_gets_vulkan_with_the_seed_flags(gemma):
    p = make(gemma, [STRIX])
    assert p.backend == "llama-server-vulkan"
    assert {"vulkan-first-amd", "vulkan-no-flash-attn", "igpu-parallel-1", "own-fit", "mlock-if-ram"} <= rules(p)
    argv = " ".join(p.argv)
    assert "--flash-attn off" in argv and "--fit off" in argv and "--parallel 1" in argv and "--mlock" in argv
    assert p.fallbacks == ("llama-server-rocm", "llama-server-cpu", "llama-cpp-python")
    assert p.settings.n_gpu_layers == gemma.n_layer + 1  # everything, output head included
    assert p.env == {"GGML_VK_VISIBLE_DEVICES": "0"}


def test_rdna_without_vulkan_build_falls_to_rocm_with_fit_off(gemma):
    p = make(gemma, [XTX], installs("llama-server-rocm", "llama-cpp-python"))
    assert p.backend == "llama-server-rocm"
    assert {"rocm-fit-off", "rocm-no-flash-attn", "dgpu-parallel"} <= rules(p)
    assert "--fit" in p.argv and p.settings.flash_attn == "off"
    assert p.settings.n_parallel == 4  # 23 GiB free >= 16 GiB
    assert p.env == {"HIP_VISIBLE_DEVICES": "0"}


def test_mi300x_prefers_rocm(gemma):
    p = make(gemma, [MI300X])
    assert p.backend == "llama-server-rocm"
    assert p.fallbacks[0] == "llama-server-vulkan"


def test_gfx_target_missing_from_rocm_build_skips_rocm(gemma):
    report = HardwareReport("test", (MI300X,), CPU)
    request = parse_request({"model": "default"})
    p = plan(PlanInputs(report, gemma, request, ALL, "m", rocm_targets=("gfx1100", "gfx1151")))
    assert p.backend == "llama-server-vulkan"
    assert "gfx-target" in rules(p)


def test_h100_gets_cuda(gemma):
    p = make(gemma, [H100])
    assert p.backend == "llama-server-cuda"
    assert p.env == {"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert "backend-nvidia" in rules(p)


def test_cpu_box_prefers_llama_server_cpu_then_llama_cpp_python(gemma):
    p = make(gemma)
    assert p.backend == "llama-server-cpu" and p.fallbacks == ("llama-cpp-python",)
    assert p.settings.n_gpu_layers == 0 and "--fit" not in p.argv
    p2 = make(gemma, backends=installs("llama-cpp-python"))
    assert p2.backend == "llama-cpp-python"
    assert p2.argv[1:3] == ("-m", "xgen_jupyter.core.adapters.llama_cpp_entry")


def test_missing_chat_template_sets_the_gemma_format(gemma):
    assert not gemma.has_chat_template
    p = make(gemma, backends=installs("llama-cpp-python"))
    assert "chat-template-missing" in rules(p)
    assert "--chat_format" in p.argv and p.argv[p.argv.index("--chat_format") + 1] == "gemma"


def test_embedding_server_gets_batch_2048(gemma):
    p = make(gemma, backends=installs("llama-server-cpu"), server_type="embedding")
    assert "embed-batch" in rules(p)
    assert p.settings.n_batch == p.settings.n_ubatch == 2048 and p.settings.embedding
    assert "--embedding" in p.argv


def test_embedding_beside_llm_on_rocm_goes_to_cpu(gemma):
    llm = Occupant("chat", "llama-server-rocm", "llm", (0,))
    p = make(gemma, [XTX], installs("llama-server-rocm"), occupied=[llm], server_type="embedding")
    assert "embed-cpu-on-rocm" in rules(p)
    assert p.settings.n_gpu_layers == 0


def test_user_values_are_never_overridden_but_warned(gemma):
    p = make(gemma, [STRIX], flash_attn="on", n_parallel=4)
    assert p.settings.flash_attn == "on" and p.settings.n_parallel == 4
    warned = {r.rule for r in p.warnings}
    assert {"vulkan-no-flash-attn", "igpu-parallel-1"} <= warned


def test_user_backend_must_be_installed_and_match_the_format(gemma):
    with pytest.raises(BackendUnavailable, match="llama-server-cuda"):
        make(gemma, backends=installs("llama-cpp-python"), backend="llama-server-cuda")
    with pytest.raises(RequestError, match="cannot serve a GGUF"):
        make(gemma, backend="vllm-cpu")


def test_nothing_installed_says_what_to_install(gemma):
    with pytest.raises(BackendUnavailable) as err:
        make(gemma, backends=installs())
    assert "no installed backend" in str(err.value)


def test_lavapipe_is_used_only_when_vulkan_is_asked_for(gemma):
    lava = VulkanDevice(0, "llvmpipe (LLVM 15.0.6, 256 bits)", "other", "cpu", "llvmpipe")
    auto = make(gemma, vulkan=[lava])
    assert auto.backend == "llama-server-cpu"
    p = make(gemma, vulkan=[lava], backend="llama-server-vulkan")
    assert p.env["GGML_VK_VISIBLE_DEVICES"] == "0"
    assert p.settings.flash_attn == "off"
    assert "vulkan-cpu-device" in rules(p)


def test_hf_folder_goes_to_vllm(gemma):
    hf = replace(gemma, format="hf", path="/models/tiny-llama", has_chat_template=True)
    p = make(hf, backends=installs("vllm-cpu", "llama-cpp-python"))
    assert p.backend == "vllm-cpu"
    assert p.argv[1:3] == ("-m", "vllm.entrypoints.openai.api_server")
    first = p.reasons[0]
    assert (first.rule, first.effect) == ("hf-vllm-cpu", "chose vllm-cpu") and "Hugging Face" in first.why
    with pytest.raises(BackendUnavailable, match="HF"):
        make(hf, backends=installs("llama-cpp-python"))


def test_plan_is_pure_same_inputs_same_plan(gemma):
    assert make(gemma, [STRIX]) == make(gemma, [STRIX])


def test_context_is_per_slot_for_llama_server(gemma):
    p = make(gemma, [H100])
    s = p.settings
    assert s.n_parallel == 4 and s.n_ctx == 4 * 4096  # 4096 tokens for each slot
    assert "ctx-per-slot" in rules(p)
    # 4 slots x 32768 = the trained context per slot: no warning; one slot past it: a warning
    assert "ctx-beyond-training" not in rules(make(gemma, [H100], n_ctx=4 * 32768))
    assert "ctx-beyond-training" in {r.rule for r in make(gemma, [H100], n_ctx=40000, n_parallel=1).warnings}
