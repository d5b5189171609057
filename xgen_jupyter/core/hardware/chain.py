"""Run the detectors in order, keep every result, cache the report, and sample GPUs cheaply."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import replace

from .amd import AMDSMIDetector
from .base import Detector
from .cpu import CPUDetector
from .inject import ENV_VAR, load_report_file
from .nvml import NVMLDetector
from .rocminfo import RocminfoDetector
from .torch_gpu import TorchCudaDetector, TorchROCmDetector
from .types import DetectorResult, GPUInfo, HardwareReport, VulkanDevice
from .vulkan import VulkanDetector


def default_detectors() -> list[Detector]:
    """amdsmi → rocminfo → NVML → torch ROCm → torch CUDA → Vulkan.

    Vendor libraries first (they measure free memory), torch next (slow import, only when
    installed), Vulkan last (it names devices but not their memory).
    """
    return [
        AMDSMIDetector(),
        RocminfoDetector(),
        NVMLDetector(),
        TorchROCmDetector(),
        TorchCudaDetector(),
        VulkanDetector(),
    ]


def _always_runs(det: Detector) -> bool:
    # The Vulkan list is wanted even when another detector wins: the planner picks among
    # llama.cpp's Vulkan devices by that list.
    return hasattr(det, "devices")


def build_report(detectors: Sequence[Detector], cpu: CPUDetector | None = None) -> HardwareReport:
    """Run ``detectors`` in order; the first that finds ≥1 GPU wins. No caching here."""
    results: list[DetectorResult] = []
    winner: DetectorResult | None = None
    vulkan: tuple[VulkanDevice, ...] = ()
    for det in detectors:
        if winner is not None and not _always_runs(det):
            results.append(DetectorResult(det.name, False, reason=f"skipped: {winner.name} found GPUs first"))
            continue
        try:
            res = det.detect()
        except Exception as e:
            res = DetectorResult(det.name, False, reason=f"unavailable: {type(e).__name__}: {e}")
        results.append(res)
        if _always_runs(det):
            vulkan = tuple(getattr(det, "devices", ()) or ())
        if winner is None and res.available and res.gpus:
            winner = res
    return HardwareReport(
        method=winner.name if winner else "cpu",
        gpus=winner.gpus if winner else (),
        cpu=(cpu or CPUDetector()).detect_cpu(),
        vulkan_devices=vulkan,
        detectors=tuple(results),
    )


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.report: HardwareReport | None = None
        self.injected_from: str | None = None
        self.detectors: list[Detector] | None = None  # None: default_detectors()
        self.live: list[Detector] = []  # the instances that made ``report`` (NVML handles live here)


_state = _State()


def use_detectors(detectors: Sequence[Detector] | None) -> None:
    """Replace the detector chain (tests, a simulated box); None restores the default. Clears the cache."""
    with _state.lock:
        _state.detectors = list(detectors) if detectors is not None else None
        _state.report = None


def clear_cache() -> None:
    with _state.lock:
        _state.report = None


def detect_hardware(refresh: bool = False, detectors: Sequence[Detector] | None = None) -> HardwareReport:
    """The box's HardwareReport, detected once and cached (thread-safe).

    ``refresh=True`` detects again. ``detectors`` runs that chain instead (and caches it).
    When ``$XGEN_HARDWARE_REPORT`` names a JSON report, that report is returned with method
    ``injected`` (a simulated box); a bad file raises XGenError saying what to fix.
    """
    path = os.environ.get(ENV_VAR)
    with _state.lock:
        if path:
            if refresh or _state.report is None or _state.injected_from != path:
                _state.report = replace(load_report_file(path), method="injected")
                _state.injected_from, _state.live = path, []
            return _state.report
        if _state.report is not None and _state.injected_from is None and not refresh and detectors is None:
            return _state.report
        chain = list(detectors) if detectors is not None else _state.detectors or default_detectors()
        _state.report = build_report(chain)
        _state.injected_from, _state.live = None, chain
        return _state.report


def sample_gpus() -> list[GPUInfo]:
    """Current memory/utilisation per GPU for live polling.

    NVIDIA: re-reads NVML through the handles cached at detection (≈20 µs per GPU).
    Others (AMD, Vulkan, injected): the cached report's GPUs, as detected.
    """
    report = detect_hardware()
    with _state.lock:
        for det in _state.live:
            if det.name == report.method and isinstance(det, NVMLDetector):
                try:
                    return det.sample()
                except Exception:
                    break
    return list(report.gpus)
