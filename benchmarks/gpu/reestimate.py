"""Re-run xgen's memory estimate (the current memory.py) for the H100 cases recorded in
benchmarks/results/h100/results.json, against the NVML numbers measured there.

The model file is rebuilt locally with make_model.py (same tensor types and sizes as on the
card); only its header is read. This compares today's estimate with yesterday's measurements:
after the memory model was corrected from those runs, so it checks consistency, not a new
prediction (benchmarks/results/h100.md says which is which).

    python benchmarks/gpu/make_model.py /tmp/l8b-q4km.gguf --type q4_k_m
    python benchmarks/gpu/make_model.py /tmp/l8b-q8.gguf --type q8_0
    python benchmarks/gpu/reestimate.py /tmp/l8b-q4km.gguf /tmp/l8b-q8.gguf
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning import memory

MiB = 1024**2
RESULTS = Path(__file__).resolve().parents[1] / "results" / "h100" / "results.json"


def main(q4: str, q8: str) -> None:
    cases = json.loads(RESULTS.read_text())["a"]
    rows = ["| case | xgen before (MiB) | xgen now (MiB) | NVML after 1 request (MiB) | error before | error now |",
            "|---|---|---|---|---|---|"]
    for case in cases:
        s = case["settings"]
        facts = inspect_model(q8 if "Q8" in case["label"] else q4)
        fa = s["flash_attn"] != "off"  # auto resolved to on with this CUDA build (engine log)
        est = memory.estimate(
            facts, n_ctx=s["n_ctx"], n_parallel=s["n_parallel"], n_gpu_layers=s["n_gpu_layers"],
            n_ubatch=s["n_ubatch"], device="cuda", flash_attn=fa,
            n_outputs=s["n_parallel"], per_seq_attention=True,
        )  # fmt: skip
        measured = case["nvml_after_request"]
        before = case["estimate"]["gpu_total"]
        rows.append(
            f"| {case['label']} | {before / MiB:.0f} | {est.gpu_total / MiB:.0f} | {measured / MiB:.0f} | "
            f"{(before - measured) / measured * 100:+.1f}% | {(est.gpu_total - measured) / measured * 100:+.1f}% |"
        )
    table = "\n".join(rows)
    print(table)
    (RESULTS.parent.parent / "h100-reestimate.md").write_text(table + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
