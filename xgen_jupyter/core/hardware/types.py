"""Plain data for what detection found: GPUs, the CPU, and how each detector fared."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Vendor = Literal["amd", "nvidia", "intel", "other"]


@dataclass(frozen=True)
class GPUInfo:
    """One GPU as the planner sees it. Memory is in bytes."""

    index: int
    name: str
    vendor: Vendor
    memory_total: int
    memory_free: int | None = None
    #: AMD gfx target (``gfx1151``) or NVIDIA compute capability as ``sm_90``.
    arch: str | None = None
    compute_capability: str | None = None
    #: ``CDNA`` / ``RDNA`` / ``GCN`` for AMD, the generation name for NVIDIA (``Hopper``).
    family: str | None = None
    integrated: bool = False
    pci_bus_id: str | None = None
    uuid: str | None = None
    mig: bool = False
    utilization: float | None = None
    #: Which detector reported it (``amdsmi``, ``nvml``, ``vulkan`` ...).
    source: str = ""
    #: Integrated GPUs: the GTT (shared system RAM) pool the GPU can map, in bytes. On an APU
    #: ``memory_total`` already counts it (carve-out + GTT); this keeps the split visible.
    memory_shared: int | None = None
    #: On a Ray cluster (core/cluster): the address of the node the GPU is on; None on one box.
    node: str | None = None

    @property
    def memory_used(self) -> int | None:
        return None if self.memory_free is None else self.memory_total - self.memory_free

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["memory_used"] = self.memory_used
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GPUInfo:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**d)


@dataclass(frozen=True)
class VulkanDevice:
    """A Vulkan physical device (llama.cpp's Vulkan build enumerates these)."""

    index: int
    name: str
    vendor: Vendor
    device_type: str  # discrete / integrated / cpu / virtual / other
    driver: str | None = None
    api_version: str | None = None
    memory_total: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CPUInfo:
    cores_physical: int
    cores_logical: int
    memory_total: int
    memory_available: int
    model_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DetectorResult:
    """The outcome of one detector: GPUs found, or ``unavailable: <reason>``."""

    name: str
    available: bool
    gpus: tuple[GPUInfo, ...] = ()
    reason: str = ""
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "available": self.available,
            "reason": self.reason,
            "gpus": [g.to_dict() for g in self.gpus],
            "elapsed_s": self.elapsed_s,
        }


@dataclass(frozen=True)
class HardwareReport:
    """Everything the planner needs to know about the box."""

    #: Name of the detector whose GPUs won (``cpu`` when none did).
    method: str
    gpus: tuple[GPUInfo, ...]
    cpu: CPUInfo
    vulkan_devices: tuple[VulkanDevice, ...] = ()
    detectors: tuple[DetectorResult, ...] = ()
    detected_at: float = field(default_factory=time.time)

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "gpus": [g.to_dict() for g in self.gpus],
            "cpu": self.cpu.to_dict(),
            "vulkan_devices": [v.to_dict() for v in self.vulkan_devices],
            "detectors": [d.to_dict() for d in self.detectors],
            "detected_at": self.detected_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HardwareReport:
        return cls(
            method=d["method"],
            gpus=tuple(GPUInfo.from_dict(g) for g in d.get("gpus", [])),
            cpu=CPUInfo(**d["cpu"]),
            vulkan_devices=tuple(VulkanDevice(**v) for v in d.get("vulkan_devices", [])),
            detectors=tuple(
                DetectorResult(
                    name=x["name"],
                    available=x["available"],
                    reason=x.get("reason", ""),
                    gpus=tuple(GPUInfo.from_dict(g) for g in x.get("gpus", [])),
                    elapsed_s=x.get("elapsed_s", 0.0),
                )
                for x in d.get("detectors", [])
            ),
            detected_at=d.get("detected_at", time.time()),
        )
