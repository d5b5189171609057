"""Tables and a chart from the two-GPU runs (benchmarks/results/split/run*-split.json).

    python benchmarks/gpu/make_model.py /tmp/l8b.gguf --type q4_k_m   (same tensors as on the cards)
    python benchmarks/gpu/report_split.py /tmp/l8b.gguf   (prints Markdown tables, writes results/split.png)

For each case the table keeps its first measurement: "then" is what xgen predicted when that
engine started (the code of that run, before the measurement), "now" is today's model on the
same settings (split.py as committed), so "then" is a prediction and "now" may be a fit.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from reestimate_split import now_per_gpu

from xgen_jupyter.core.models.inspect import inspect_model

RES = Path(__file__).resolve().parents[1] / "results"
MiB = 1024**2
SPEED_CASES = ("one", "layer", "tensor", "llama-server defaults (no xgen)")


def runs() -> list[tuple[int, dict]]:
    out = []
    for p in sorted((RES / "split").glob("run*-split.json")):
        out.append((int(p.name[3 : p.name.index("-")]), json.loads(p.read_text())))
    return out


def memory_rows(all_runs: list[tuple[int, dict]]) -> list[dict]:
    """First measurement of each xgen case, with the prediction its run made."""
    rows: dict[str, dict] = {}
    for n, r in all_runs:
        for c in r["cases"]:
            if c.get("per_gpu") and all(g.get("measured_mib") for g in c["per_gpu"]):
                # The busy case's plan depends on the cards' memory that run: keep each plan.
                key = c["label"] + " ".join(c.get("argv", [])[4:])
                rows.setdefault(key, {"run": n, "case": c})
    return [rows[k] for k in rows]


def speed_rows(all_runs: list[tuple[int, dict]]) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    for n, r in all_runs:
        for c in r["cases"]:
            if c.get("speed") and c["label"] in SPEED_CASES:
                out.setdefault(c["label"], {})[n] = c["speed"]
    return out


def main(model: str) -> None:
    facts = inspect_model(model)
    all_runs = runs()
    print(
        "| case | plan (xgen) | card | then (MiB) | now (MiB) | NVML (MiB) | error then | error now | run |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    mem = memory_rows(all_runs)
    for row in mem:
        c = row["case"]
        s = c["settings"]
        plan = (f"-c {s['n_ctx']} -np {s['n_parallel']} -ub {s['n_ubatch']} -fa {s['flash_attn']} "
                f"-ngl {s['n_gpu_layers']}" + (f" -sm {s['split_mode']} -ts {','.join(f'{x:g}' for x in s['tensor_split'])}"
                                               if s.get("split_mode") and len(c['gpus']) > 1 else ""))  # fmt: skip
        now = now_per_gpu(facts, c)
        for g, nb in zip(c["per_gpu"], now, strict=True):
            m = g["measured_mib"]
            n_mib = round(nb / MiB)
            row.setdefault("now", []).append(n_mib)
            print(f"| {c['label']} | `{plan}` | {g['gpu']} | {g['predicted_mib']} | {n_mib} | {m} | "
                  f"{g['error_pct']:+.2f}% | {100 * (n_mib - m) / m:+.2f}% | {row['run']} |")  # fmt: skip
    sp = speed_rows(all_runs)
    print()
    print(
        "| run | "
        + " | ".join(f"{k} decode / prompt t/s" for k in SPEED_CASES)
        + " | layer ÷ one | tensor ÷ one |"
    )
    print("|---|" + "---|" * (len(SPEED_CASES) + 2))
    ratios: dict[str, list[float]] = {"layer": [], "tensor": []}
    for n, _ in all_runs:
        cells = []
        for k in SPEED_CASES:
            v = sp.get(k, {}).get(n)
            cells.append(f"{v['decode_tps']:.1f} / {v['prompt_tps']:.0f}" if v else "-")
        one = sp.get("one", {}).get(n)
        rr = []
        for k in ("layer", "tensor"):
            v = sp.get(k, {}).get(n)
            if one and v:
                ratios[k].append(v["decode_tps"] / one["decode_tps"])
                rr.append(f"{v['decode_tps'] / one['decode_tps']:.3f}")
            else:
                rr.append("-")
        print(f"| {n} | " + " | ".join(cells) + " | " + " | ".join(rr) + " |")
    for k, v in ratios.items():
        if v:
            print(
                f"\n{k} ÷ one, decode: median {statistics.median(v):.3f} over {len(v)} runs ({min(v):.3f}-{max(v):.3f})"
            )

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 6.5))
    labels, then, now = [], [], []
    for row in mem:
        for g, n_mib in zip(row["case"]["per_gpu"], row["now"], strict=True):
            labels.append(f"{row['case']['label']} (run {row['run']}) GPU {g['gpu']}")
            then.append(g["error_pct"])
            now.append(100 * (n_mib - g["measured_mib"]) / g["measured_mib"])
    y = range(len(labels))
    a1.axvspan(-5, 5, color="0.92", label="target ±5%")
    a1.scatter(then, y, marker="x", color="0.5", label="predicted when the engine started")
    a1.scatter(now, y, color="tab:blue", label="current model (split.py)")
    a1.set_yticks(list(y), labels, fontsize=7)
    a1.invert_yaxis()
    a1.set_xlabel("per-card memory error vs NVML (%)")
    a1.set_title("xgen's per-card prediction, 2x H200")
    a1.legend(fontsize=7, loc="lower left")
    for i, k in enumerate(SPEED_CASES):
        vals = [v["decode_tps"] for v in sp.get(k, {}).values()]
        a2.scatter([i] * len(vals), vals, alpha=0.7)
        if vals:
            a2.hlines(statistics.median(vals), i - 0.25, i + 0.25, colors="k")
    a2.set_xticks(
        range(len(SPEED_CASES)), ["one card", "layer split", "tensor split", "llama-server\ndefaults"]
    )
    a2.set_ylabel("decode tokens/s (median of a run)")
    a2.set_title("Decode speed, Llama-3-8B-shape Q4_K_M (each dot: one run)")
    fig.tight_layout()
    fig.savefig(RES / "split.png", dpi=110)


if __name__ == "__main__":
    main(sys.argv[1])
