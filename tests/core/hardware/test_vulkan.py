"""vulkaninfo --summary: a recorded Strix Halo (Windows) and the real lavapipe on this box."""

from __future__ import annotations

import shutil

import pytest

from tests.core.hardware.hwfixtures import FIXTURES, FakeTools
from xgen_jupyter.core.hardware.types import VulkanDevice
from xgen_jupyter.core.hardware.vulkan import VulkanDetector, gpu_from_vulkan, parse_vulkaninfo_summary


def test_strix_halo_windows_summary(fake_tools: FakeTools) -> None:
    fake_tools({"vulkaninfo": {"--summary": FIXTURES / "strix-halo-gfx1151-windows.vulkaninfo-summary.txt"}})
    det = VulkanDetector()
    res = det.detect()
    assert res.available, res.reason
    (d,) = det.devices
    assert d == VulkanDevice(
        index=0,
        name="AMD Radeon(TM) 8060S Graphics",
        vendor="amd",
        device_type="integrated",
        driver="AMD proprietary driver",
        api_version="1.4.315",
    )
    (g,) = res.gpus
    assert (g.vendor, g.integrated, g.source) == ("amd", True, "vulkan")
    assert g.name == "AMD Radeon(TM) 8060S Graphics"


def test_lavapipe_is_cpu_device_not_gpu() -> None:
    text = """Devices:
========
GPU0:
\tapiVersion         = 1.3.230
\tvendorID           = 0x10005
\tdeviceType         = PHYSICAL_DEVICE_TYPE_CPU
\tdeviceName         = llvmpipe (LLVM 15.0.6, 256 bits)
\tdriverName         = llvmpipe
GPU1:
\tapiVersion         = 1.3.296
\tvendorID           = 0x1002
\tdeviceType         = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
\tdeviceName         = AMD Radeon RX 7900 XTX (RADV NAVI31)
\tdriverName         = radv
"""
    devs = parse_vulkaninfo_summary(text)
    assert [(d.index, d.device_type, d.vendor) for d in devs] == [(0, "cpu", "other"), (1, "discrete", "amd")]
    assert gpu_from_vulkan(devs[1], 0).integrated is False


def test_radv_name_carries_gfx_target() -> None:
    d = VulkanDevice(0, "AMD Radeon 8060S Graphics (RADV GFX1151)", "amd", "integrated", "radv")
    g = gpu_from_vulkan(d, 0)
    assert (g.arch, g.family, g.integrated) == ("gfx1151", "RDNA", True)


@pytest.mark.skipif(shutil.which("vulkaninfo") is None, reason="vulkaninfo not installed")
def test_real_vulkaninfo_here() -> None:
    """Real vulkaninfo on this box (Mesa lavapipe): CPU devices are listed but are not GPUs."""
    det = VulkanDetector()
    res = det.detect()
    assert res.available, res.reason
    assert det.devices, "vulkaninfo ran but listed no devices"
    cpu_devs = [d for d in det.devices if d.device_type == "cpu"]
    assert len(res.gpus) == len(det.devices) - len(cpu_devs)


def test_vulkaninfo_missing(fake_tools: FakeTools) -> None:
    fake_tools({})
    det = VulkanDetector()
    res = det.detect()
    assert (res.available, det.devices) == (False, ())
    assert res.reason == "unavailable: vulkaninfo not found on PATH"


def test_vulkaninfo_failing(fake_tools: FakeTools) -> None:
    fake_tools({"vulkaninfo": {"--summary": None}})
    res = VulkanDetector().detect()
    assert res.available is False
    assert res.reason == "unavailable: vulkaninfo --summary exited 1: not recorded"
