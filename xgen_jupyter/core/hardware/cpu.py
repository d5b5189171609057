"""The CPU and system RAM (always present: the planner's last resort)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from .types import CPUInfo


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``model name`` from /proc/cpuinfo (x86), else ``Model``/``Hardware`` (ARM), else platform."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == key and v.strip():
                return v.strip()
    return platform.processor() or platform.machine()


class CPUDetector:
    """psutil for cores and memory; never raises (falls back to os.cpu_count and zeros)."""

    name = "cpu"

    def __init__(self, cpuinfo: Path = Path("/proc/cpuinfo")) -> None:
        self._cpuinfo = cpuinfo

    def detect_cpu(self) -> CPUInfo:
        logical = os.cpu_count() or 1
        physical, total, avail = logical, 0, 0
        try:
            import psutil

            logical = psutil.cpu_count(logical=True) or logical
            physical = psutil.cpu_count(logical=False) or logical
            vm = psutil.virtual_memory()
            total, avail = int(vm.total), int(vm.available)
        except Exception:
            pass
        return CPUInfo(
            cores_physical=physical,
            cores_logical=logical,
            memory_total=total,
            memory_available=avail,
            model_name=cpu_model_name(self._cpuinfo),
        )
