"""GPUs as PyTorch sees them (ROCm builds expose HIP devices through ``torch.cuda``)."""

from __future__ import annotations

from typing import Any

from .base import guarded, optional_import, unavailable
from .classify import amd_family, amd_integrated, cc_string, normalize_gfx, nvidia_arch, nvidia_generation
from .types import DetectorResult, GPUInfo


def _torch() -> Any | None:
    # find_spec first: importing torch costs seconds, and a failing import costs more.
    return optional_import("torch")


def _mem(torch: Any, i: int) -> tuple[int | None, int | None]:
    try:
        free, total = torch.cuda.mem_get_info(i)
        return int(total), int(free)
    except Exception:
        return None, None


def _bus(p: Any) -> str | None:
    pci = [getattr(p, a, None) for a in ("pci_domain_id", "pci_bus_id", "pci_device_id")]
    if any(x is None for x in pci):
        return None
    return f"{pci[0]:08x}:{pci[1]:02x}:{pci[2]:02x}.0"


class _TorchDetector:
    name = "torch"
    _want_hip: bool

    def __init__(self, torch: Any | None = None) -> None:
        self._torch_mod = torch

    def detect(self) -> DetectorResult:
        def body() -> tuple[GPUInfo, ...] | DetectorResult:
            t = self._torch_mod
            if t is None:
                t = self._torch_mod = _torch()
                if t is None:
                    return unavailable(self.name, "torch not installed")
            hip = getattr(t.version, "hip", None)
            if bool(hip) != self._want_hip:
                kind = "a ROCm (HIP)" if self._want_hip else "a CUDA"
                return unavailable(self.name, f"torch {t.__version__} is not {kind} build")
            if not t.cuda.is_available():
                return unavailable(self.name, f"torch {t.__version__} sees no GPU (driver or device missing)")
            return tuple(self._gpu(t, i) for i in range(t.cuda.device_count()))

        return guarded(self.name, body)

    def _gpu(self, torch: Any, i: int) -> GPUInfo:
        p = torch.cuda.get_device_properties(i)
        total, free = _mem(torch, i)
        total = total or int(p.total_memory)
        uuid = getattr(p, "uuid", None)
        common: dict[str, Any] = dict(
            index=i, name=str(p.name), memory_total=total, memory_free=free,
            pci_bus_id=_bus(p), uuid=str(uuid) if uuid is not None else None, source=self.name,
        )
        if self._want_hip:
            gfx = normalize_gfx(getattr(p, "gcnArchName", None))
            return GPUInfo(vendor="amd", arch=gfx, family=amd_family(gfx), integrated=amd_integrated(gfx),
                           **common)
        cc = (int(p.major), int(p.minor))
        return GPUInfo(
            vendor="nvidia", arch=nvidia_arch(cc), compute_capability=cc_string(cc),
            family=nvidia_generation(cc), integrated=bool(getattr(p, "is_integrated", 0)), **common,
        )


class TorchROCmDetector(_TorchDetector):
    name = "torch-rocm"
    _want_hip = True


class TorchCudaDetector(_TorchDetector):
    name = "torch-cuda"
    _want_hip = False
