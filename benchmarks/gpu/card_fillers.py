"""The cards of the lent GPU box for the benchmarks: NVML per card and per process, and filler
processes that hold all but a given amount of each card, as another user's job would."""

from __future__ import annotations

import ctypes.util
import glob
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pynvml

MiB, GiB = 1024**2, 1024**3

#: Holds memory on one card until killed: what another user's job looks like to NVML.
FILLER = r"""
import ctypes, sys, time
lib = ctypes.CDLL(sys.argv[1])
assert lib.cudaSetDevice(int(sys.argv[2])) == 0
free, total = ctypes.c_size_t(), ctypes.c_size_t()
lib.cudaFree(None)  # create the context first, so what is left free is exact
lib.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total))
p = ctypes.c_void_p()
rc = lib.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(max(0, free.value - int(sys.argv[3]))))
print("ready" if rc == 0 else f"cudaMalloc failed {rc}", flush=True)
time.sleep(3600)
"""


class Cards:
    def __init__(self) -> None:
        pynvml.nvmlInit()
        self.n = pynvml.nvmlDeviceGetCount()
        self.h = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(self.n)]
        self.names = [str(pynvml.nvmlDeviceGetName(h)) for h in self.h]

    def snapshot(self) -> dict[int, dict[int, int]]:
        return {i: {p.pid: int(p.usedGpuMemory or 0) for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)}
                for i, h in enumerate(self.h)}  # fmt: skip

    def new_since(self, base: dict[int, dict[int, int]]) -> dict[int, int]:
        """Bytes per card of processes that were not there at ``base``: the engine. (Matching by pid
        fails where the container's pid namespace differs from the driver's.)"""
        now = self.snapshot()
        out = {
            i: sum(m for pid, m in procs.items() if pid not in base.get(i, {})) for i, procs in now.items()
        }
        return {i: m for i, m in out.items() if m}

    def total(self) -> int:
        return int(pynvml.nvmlDeviceGetMemoryInfo(self.h[0]).total)

    def free(self) -> list[int]:
        return [int(pynvml.nvmlDeviceGetMemoryInfo(h).free) for h in self.h]


def cudart() -> str | None:
    pats = ["/usr/local/cuda/lib64/libcudart.so*", "/usr/local/cuda*/targets/*/lib/libcudart.so*",
            "/usr/lib/x86_64-linux-gnu/libcudart.so*"]  # fmt: skip
    for p in pats:
        hits = sorted(glob.glob(p))
        if hits:
            return hits[0]
    return ctypes.util.find_library("cudart")


def wait_released(cards: Cards, base: dict[int, dict[int, int]]) -> None:
    end = time.monotonic() + 10
    while cards.new_since(base) and time.monotonic() < end:
        time.sleep(0.2)


def start_fillers(
    cards: Cards, leave_gib: float, logdir: Path
) -> tuple[list[subprocess.Popen[bytes]], dict[str, Any]]:
    lib = cudart()
    info: dict[str, Any] = {"cudart": lib}
    procs: list[subprocess.Popen[bytes]] = []
    if lib is None:
        info["error"] = "no libcudart found"
        return procs, info
    for i in range(cards.n):
        n = int(leave_gib * GiB)  # bytes the filler leaves free on its card
        with open(logdir / f"filler{i}.log", "wb") as err:
            p = subprocess.Popen([sys.executable, "-c", FILLER, lib, str(i), str(max(n, 0))],
                                 stdout=subprocess.PIPE, stderr=err, start_new_session=True)  # fmt: skip
        procs.append(p)
        line = p.stdout.readline().decode().strip() if p.stdout else ""
        info[f"filler{i}"] = {"pid": p.pid, "leaves_free": n, "said": line}
    time.sleep(0.5)
    info["free_after_mib"] = [f // MiB for f in cards.free()]
    return procs, info


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
        p.wait()
