"""Re-run xgen's per-card estimate (the current split.py) for the two-GPU cases recorded by
split_measure.py, against the NVML numbers measured there. The model is rebuilt locally with
make_model.py (same tensors and sizes as on the cards); only its header is read.

After the split model is corrected from a run, this checks consistency, not a new prediction:
benchmarks/results/split.md says which numbers are which.

    python benchmarks/gpu/make_model.py /tmp/l8b.gguf --type q4_k_m
    python benchmarks/gpu/reestimate_split.py /tmp/l8b.gguf benchmarks/results/split/run1-split.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from xgen_jupyter.core.models.facts import ModelFacts
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning import memory
from xgen_jupyter.core.planning.split import estimate_split

MiB = 1024**2


def now_per_gpu(facts: ModelFacts, case: dict[str, Any]) -> tuple[int, ...]:
    """Today's per-card estimate for a recorded case's settings."""
    s = case["settings"]
    fa = s["flash_attn"] in ("on", "auto")  # this CUDA build resolves auto to on
    kw = dict(n_ctx=s["n_ctx"], n_parallel=s["n_parallel"], n_ubatch=s["n_ubatch"], device="cuda",
              flash_attn=fa, n_outputs=s["n_parallel"], per_seq_attention=True)  # fmt: skip
    if s.get("split_mode") in ("layer", "row", "tensor") and len(case["gpus"]) > 1:
        return estimate_split(facts, shares=s["tensor_split"], mode=s["split_mode"],
                              n_gpu_layers=s["n_gpu_layers"], **kw).per_gpu  # type: ignore[arg-type]  # fmt: skip
    return (memory.estimate(facts, n_gpu_layers=s["n_gpu_layers"], head_first=True, **kw).gpu_total,)  # type: ignore[arg-type]


def main(model: str, results: str) -> None:
    facts = inspect_model(model)
    print("| case | card | xgen then (MiB) | xgen now (MiB) | NVML (MiB) | error then | error now |")
    print("|---|---|---|---|---|---|---|")
    for c in json.loads(Path(results).read_text())["cases"]:
        meas = c.get("nvml_after")
        if not c.get("settings") or not meas:
            continue
        for g, then, n in zip(c["gpus"], c["per_gpu_predicted"], now_per_gpu(facts, c), strict=True):
            m = meas[str(g)]
            print(f"| {c['label']} | {g} | {then / MiB:.0f} | {n / MiB:.0f} | {m / MiB:.0f} | "
                  f"{100 * (then - m) / m:+.1f}% | {100 * (n - m) / m:+.1f}% |")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
