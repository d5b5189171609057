"""Vulkan physical devices from ``vulkaninfo --summary`` (what llama.cpp's Vulkan build sees)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .base import guarded, run_tool
from .classify import amd_family, amd_integrated, vendor_from_pci_id
from .types import DetectorResult, GPUInfo, Vendor, VulkanDevice

_DEVICE_HDR = re.compile(r"^GPU(\d+):\s*$", re.MULTILINE)
_KV = re.compile(r"^\s+(\w+)\s*=\s*(.*?)\s*$", re.MULTILINE)
_TYPES = {
    "PHYSICAL_DEVICE_TYPE_DISCRETE_GPU": "discrete",
    "PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU": "integrated",
    "PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU": "virtual",
    "PHYSICAL_DEVICE_TYPE_CPU": "cpu",
}
_GFX_IN_NAME = re.compile(r"\bgfx[0-9a-f]{3,4}\b", re.IGNORECASE)


def parse_vulkaninfo_summary(text: str) -> tuple[VulkanDevice, ...]:
    """Each ``GPUn:`` block of ``vulkaninfo --summary`` as a VulkanDevice (CPU ones too)."""
    out: list[VulkanDevice] = []
    chunks = _DEVICE_HDR.split(text)
    # split → [preamble, idx0, body0, idx1, body1, ...]
    for idx, body in zip(chunks[1::2], chunks[2::2], strict=True):
        kv = dict(_KV.findall(body))
        if "deviceName" not in kv:
            continue
        vendor: Vendor = vendor_from_pci_id(kv.get("vendorID"))  # type: ignore[assignment]
        out.append(
            VulkanDevice(
                index=int(idx),
                name=kv["deviceName"],
                vendor=vendor,
                device_type=_TYPES.get(kv.get("deviceType", ""), "other"),
                driver=kv.get("driverName") or kv.get("driverID"),
                api_version=kv.get("apiVersion", "").split(" ")[0] or None,
            )
        )
    return tuple(out)


def gpu_from_vulkan(dev: VulkanDevice, index: int) -> GPUInfo:
    """A GPUInfo for a non-CPU Vulkan device. Vulkan's summary has no memory size (0 = unknown)
    and rarely an arch; RADV names carry the gfx target (``AMD Radeon 8060S (RADV GFX1151)``)."""
    m = _GFX_IN_NAME.search(dev.name)
    gfx = m.group(0).lower() if m and dev.vendor == "amd" else None
    return GPUInfo(
        index=index,
        name=dev.name,
        vendor=dev.vendor,
        memory_total=dev.memory_total or 0,
        arch=gfx,
        family=amd_family(gfx),
        integrated=dev.device_type == "integrated" or amd_integrated(gfx),
        source="vulkan",
    )


@dataclass
class VulkanDetector:
    """Runs ``vulkaninfo --summary``; ``devices`` keeps every device, CPU ones (lavapipe) included."""

    name: str = "vulkan"
    devices: tuple[VulkanDevice, ...] = field(default=())

    def detect(self) -> DetectorResult:
        def body() -> tuple[GPUInfo, ...]:
            self.devices = parse_vulkaninfo_summary(run_tool(["vulkaninfo", "--summary"]))
            gpus = [d for d in self.devices if d.device_type != "cpu"]
            return tuple(gpu_from_vulkan(d, i) for i, d in enumerate(gpus))

        self.devices = ()
        return guarded(self.name, body)
