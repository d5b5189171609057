"""NVIDIA GPUs through NVML (``pynvml`` from the nvidia-ml-py package)."""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

from .base import guarded, optional_import
from .classify import cc_string, nvidia_arch, nvidia_generation
from .types import DetectorResult, GPUInfo


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class NVMLDetector:
    """Reads NVML once per device and keeps the handles for cheap re-sampling.

    Like jupyterlab-nvdashboard, ``nvmlInit`` runs once and handles are cached: a poll
    then costs one memory + one utilisation query per GPU. ``nvml`` may be a replay
    module with pynvml's function names (tests).
    """

    name = "nvml"

    def __init__(self, nvml: ModuleType | Any | None = None) -> None:
        self._nvml = nvml
        self._handles: list[Any] | None = None
        self._static: list[GPUInfo] = []
        self._lock = threading.Lock()
        self.driver_version: str | None = None
        self.nvml_version: str | None = None

    def _lib(self) -> Any:
        if self._nvml is None:
            self._nvml = optional_import("pynvml")
            if self._nvml is None:
                raise ModuleNotFoundError("pynvml not installed (pip install nvidia-ml-py)")
        return self._nvml

    def _init(self) -> list[Any]:
        with self._lock:
            if self._handles is None:
                nv = self._lib()
                nv.nvmlInit()
                n = nv.nvmlDeviceGetCount()
                self._handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(n)]
                self.driver_version = self._try(nv.nvmlSystemGetDriverVersion)
                self.nvml_version = self._try(nv.nvmlSystemGetNVMLVersion)
            return self._handles

    def _try(self, fn: Any, *args: Any) -> Any:
        # Optional fields: a GPU or driver that does not support one must not hide the GPU.
        try:
            v = fn(*args)
        except Exception:
            return None
        return _s(v) if isinstance(v, bytes) else v

    def _read(self, index: int, h: Any) -> GPUInfo:
        nv = self._lib()
        mem = nv.nvmlDeviceGetMemoryInfo(h)
        cc = self._try(nv.nvmlDeviceGetCudaComputeCapability, h)
        pci = self._try(nv.nvmlDeviceGetPciInfo, h)
        mig = self._try(nv.nvmlDeviceGetMigMode, h)
        util = self._try(nv.nvmlDeviceGetUtilizationRates, h)
        uuid = self._try(nv.nvmlDeviceGetUUID, h)
        return GPUInfo(
            index=index,
            name=_s(nv.nvmlDeviceGetName(h)),
            vendor="nvidia",
            memory_total=int(mem.total),
            memory_free=int(mem.free),
            arch=nvidia_arch(cc),
            compute_capability=cc_string(cc),
            family=nvidia_generation(cc),
            integrated=False,
            pci_bus_id=_s(pci.busId) if pci is not None else None,
            uuid=uuid,
            # nvmlDeviceGetMigMode → (current, pending); 1 = NVML_DEVICE_MIG_ENABLE.
            mig=bool(mig and mig[0] == 1),
            utilization=float(util.gpu) if util is not None else None,
            source=self.name,
        )

    def detect(self) -> DetectorResult:
        def body() -> tuple[GPUInfo, ...]:
            handles = self._init()
            self._static = [self._read(i, h) for i, h in enumerate(handles)]
            return tuple(self._static)

        res = guarded(self.name, body)
        if not res.available and "LibraryNotFound" in res.reason:
            why = "unavailable: NVML library not found (no NVIDIA driver)"
            res = DetectorResult(self.name, False, reason=why, elapsed_s=res.elapsed_s)
        return res

    def sample(self) -> list[GPUInfo]:
        """Fresh memory and utilisation for each GPU, reusing cached handles and static facts."""
        from dataclasses import replace

        if self._handles is None or len(self._static) != len(self._handles):
            return list(self.detect().gpus)
        nv = self._lib()
        out: list[GPUInfo] = []
        for g, h in zip(self._static, self._handles, strict=True):
            mem = self._try(nv.nvmlDeviceGetMemoryInfo, h)
            util = self._try(nv.nvmlDeviceGetUtilizationRates, h)
            out.append(
                replace(
                    g,
                    memory_free=int(mem.free) if mem is not None else g.memory_free,
                    utilization=float(util.gpu) if util is not None else None,
                )
            )
        return out
