"""What the GPU benchmarks share to drive a llama-server engine and read it: a log line, the card
through NVML, a free loopback port, a timed /completion, prompt ids, and the engine log's memory
breakdown and facts."""

from __future__ import annotations

import re
import socket
import time
from typing import Any

import httpx
import pynvml


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class GPU:
    def __init__(self, index: int = 0) -> None:
        pynvml.nvmlInit()
        self.h = pynvml.nvmlDeviceGetHandleByIndex(index)
        self.name = pynvml.nvmlDeviceGetName(self.h)
        self.name = self.name.decode() if isinstance(self.name, bytes) else self.name

    def procs(self) -> dict[int, int]:
        return {p.pid: int(p.usedGpuMemory or 0) for p in pynvml.nvmlDeviceGetComputeRunningProcesses(self.h)}

    def used(self) -> int:
        return int(pynvml.nvmlDeviceGetMemoryInfo(self.h).used)

    def proc_mem(self, pid: int | None) -> int | None:
        procs = self.procs()
        if pid in procs:
            return procs[pid]
        # PID namespaces can hide the real pid: with one process on the card, it is ours.
        return next(iter(procs.values())) if len(procs) == 1 else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def complete(port: int, key: str | None, prompt: list[int], n_predict: int) -> dict[str, Any]:
    h = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"prompt": prompt, "n_predict": n_predict, "ignore_eos": True, "cache_prompt": False,
            "temperature": 0.0}
    t0 = time.perf_counter()
    r = httpx.post(f"http://127.0.0.1:{port}/completion", json=body, headers=h, timeout=600)
    r.raise_for_status()
    t = r.json()["timings"]
    t["wall_s"] = time.perf_counter() - t0
    return t


def prompt_tokens(n: int, seed: int) -> list[int]:
    # Ids past the byte and character tokens of make_model.py's vocabulary; any will do.
    return [400 + (seed * 7919 + i * 104729) % 120000 for i in range(n)]


def breakdown(log_text: str) -> dict[str, int] | None:
    """llama_memory_breakdown_print's CUDA0 row: total = free + (self = model + context + compute) + unaccounted."""
    for line in log_text.splitlines():
        if "memory_breakdown" in line and "CUDA0" in line:
            nums = [int(x) for x in re.findall(r"(?<![\w.])(\d+)(?![\w.])", line)]
            if len(nums) >= 7:
                keys = ["total", "free", "self", "model", "context", "compute", "unaccounted"]
                return dict(zip(keys, nums[-7:], strict=True))
    return None


def engine_facts(log_text: str) -> dict[str, Any]:
    pats = {"offloaded": r"offloaded (\d+/\d+) layers", "n_ctx": r"llama_context: n_ctx\s+= (\d+)",
            "n_ctx_seq": r"n_ctx_seq\s+= (\d+)", "flash_attn": r"llama_context: flash_attn\s+= (\S+)",
            "n_ubatch": r"llama_context: n_ubatch\s+= (\d+)", "kv_mib": r"llama_kv_cache: .*size =\s+([\d.]+) MiB",
            "compute_mib": r"CUDA0 compute buffer size =\s+([\d.]+) MiB", "model_mib": r"CUDA0 model buffer size =\s+([\d.]+) MiB",
            "slots": r"n_slots = (\d+)", "fit": r"(llama_params_fit[^\n]*)"}
    out: dict[str, Any] = {}
    for k, p in pats.items():
        m = re.findall(p, log_text)
        if m:
            out[k] = m[-1] if k != "fit" else m
    return out
