"""The host's memory bandwidth, measured once (a numpy copy) and cached in the state dir.

The cost model (core/planning/costmodel.py) divides CPU-side bytes per token by it. The cache
is keyed by the CPU's name and core count, so a moved state dir measures again; a corrupt cache
is measured over.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from pathlib import Path

from .types import CPUInfo

log = logging.getLogger(__name__)
FILENAME = "host_bandwidth.json"
#: 256 MiB: far beyond any cache, ~0.1 s a copy on a laptop.
SIZE = 256 * 1024**2


def measure(size: int = SIZE, repeats: int = 3, threads: int | None = None) -> float:
    """Bytes/s of the best of ``repeats`` copies (read + write counted), ``threads`` copying
    slices at once (numpy releases the GIL while copying): llama.cpp reads CPU-side weights
    with every core, and one thread alone reaches a fraction of the memory's bandwidth."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    n = max(1, threads or min(os.cpu_count() or 1, 16))
    src = np.ones(size // 8, dtype=np.float64)
    dst = np.empty_like(src)
    cuts = [len(src) * i // n for i in range(n + 1)]
    parts = [(dst[a:b], src[a:b]) for a, b in itertools.pairwise(cuts)]
    best = float("inf")
    with ThreadPoolExecutor(n) as pool:
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(lambda p: np.copyto(*p), parts))
            best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / max(best, 1e-9)


def host_bandwidth(state_dir: Path | str, cpu: CPUInfo) -> float | None:
    """The cached figure for this CPU, measuring (and caching) it the first time; None if
    measuring fails (the cost model then uses its default)."""
    key = f"{cpu.model_name}|{cpu.cores_logical}"
    p = Path(state_dir) / FILENAME
    try:
        data = json.loads(p.read_text())
        if isinstance(data, dict) and data.get("key") == key and float(data["bytes_per_s"]) > 0:
            return float(data["bytes_per_s"])
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError, OSError):
        log.warning("host bandwidth cache %s unreadable: measuring again", p)
    try:
        bw = measure()
    except (MemoryError, ImportError) as e:
        log.warning("could not measure host memory bandwidth: %s", e)
        return None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{FILENAME}.{os.getpid()}")
        tmp.write_text(json.dumps({"key": key, "bytes_per_s": bw, "at": time.time()}))
        os.replace(tmp, p)
    except OSError as e:
        log.warning("could not cache the host bandwidth in %s: %s", p, e)
    return bw
