"""`xgen detect` cold (a fresh process: imports + every detector) and cached (a repeat call)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(runs: int = 5) -> None:
    cold = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "xgen_jupyter", "detect", "--json"], cwd=REPO, check=True, capture_output=True)
        cold.append((time.perf_counter() - t) * 1000)
    from xgen_jupyter.core.hardware.chain import detect_hardware

    t = time.perf_counter()
    detect_hardware(refresh=True)
    first = (time.perf_counter() - t) * 1000
    cached = []
    for _ in range(1000):
        t = time.perf_counter()
        detect_hardware()
        cached.append((time.perf_counter() - t) * 1e6)
    table = (
        "| measure | median |\n|---|---|\n"
        f"| `xgen detect` cold, whole process ({runs} runs) | {statistics.median(cold):.0f} ms |\n"
        f"| detection in-process, refresh=True | {first:.1f} ms |\n"
        f"| detection cached (1000 calls) | {statistics.median(cached):.2f} µs |\n"
    )
    print(table)
    (REPO / "benchmarks" / "results" / "detect.md").write_text(table)


if __name__ == "__main__":
    main()
