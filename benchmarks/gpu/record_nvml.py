"""Dump everything NVMLDetector reads, per device, to JSON (a replay fixture for tests).

Run on a box with an NVIDIA GPU and nvidia-ml-py installed:

    python benchmarks/gpu/record_nvml.py [OUT.json]

Each call's result is recorded under the pynvml function's name; a call that fails is
recorded as ``{"error": "<NVMLError text>"}`` so the replay raises the same way.
Standalone on purpose: it needs only pynvml, not this package.
"""

from __future__ import annotations

import datetime
import json
import platform
import socket
import sys
from collections.abc import Callable
from typing import Any

import pynvml


def _s(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def _call(fn: Callable[..., Any], *args: Any, conv: Callable[[Any], Any] = _s) -> Any:
    try:
        return conv(fn(*args))
    except pynvml.NVMLError as e:
        return {"error": str(e)}


def _mem(m: Any) -> dict[str, int]:
    return {"total": int(m.total), "free": int(m.free), "used": int(m.used)}


def _util(u: Any) -> dict[str, int]:
    return {"gpu": int(u.gpu), "memory": int(u.memory)}


def _pci(p: Any) -> dict[str, Any]:
    return {"busId": _s(p.busId), "pciDeviceId": int(p.pciDeviceId), "pciSubSystemId": int(p.pciSubSystemId)}


def record() -> dict[str, Any]:
    pynvml.nvmlInit()
    try:
        n = pynvml.nvmlDeviceGetCount()
        devices = []
        for i in range(n):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            devices.append(
                {
                    "index": i,
                    "nvmlDeviceGetName": _call(pynvml.nvmlDeviceGetName, h),
                    "nvmlDeviceGetMemoryInfo": _call(pynvml.nvmlDeviceGetMemoryInfo, h, conv=_mem),
                    "nvmlDeviceGetCudaComputeCapability": _call(
                        pynvml.nvmlDeviceGetCudaComputeCapability, h, conv=list
                    ),
                    "nvmlDeviceGetPciInfo": _call(pynvml.nvmlDeviceGetPciInfo, h, conv=_pci),
                    "nvmlDeviceGetUUID": _call(pynvml.nvmlDeviceGetUUID, h),
                    "nvmlDeviceGetMigMode": _call(pynvml.nvmlDeviceGetMigMode, h, conv=list),
                    "nvmlDeviceGetUtilizationRates": _call(
                        pynvml.nvmlDeviceGetUtilizationRates, h, conv=_util
                    ),
                }
            )
        return {
            "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": {"hostname": socket.gethostname(), "platform": platform.platform()},
            "pynvml_version": getattr(pynvml, "__version__", None),
            "nvmlSystemGetDriverVersion": _call(pynvml.nvmlSystemGetDriverVersion),
            "nvmlSystemGetNVMLVersion": _call(pynvml.nvmlSystemGetNVMLVersion),
            "nvmlSystemGetCudaDriverVersion": _call(pynvml.nvmlSystemGetCudaDriverVersion),
            "nvmlDeviceGetCount": n,
            "devices": devices,
        }
    finally:
        pynvml.nvmlShutdown()


def main(argv: list[str]) -> int:
    data = record()
    text = json.dumps(data, indent=2)
    if len(argv) > 1:
        with open(argv[1], "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
