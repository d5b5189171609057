"""Tier 4 hardware detection: amdsmi → rocminfo → NVML → torch ROCm → torch CUDA → Vulkan, + CPU."""

from .chain import build_report, clear_cache, default_detectors, detect_hardware, sample_gpus, use_detectors
from .types import CPUInfo, DetectorResult, GPUInfo, HardwareReport, VulkanDevice

__all__ = [
    "CPUInfo",
    "DetectorResult",
    "GPUInfo",
    "HardwareReport",
    "VulkanDevice",
    "build_report",
    "clear_cache",
    "default_detectors",
    "detect_hardware",
    "sample_gpus",
    "use_detectors",
]
