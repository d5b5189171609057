"""Tables and a chart from the placement benchmark (benchmarks/results/plans/run*-plans.json).

    python benchmarks/gpu/report_plans.py     (prints Markdown tables, writes results/plans.png)

Run 1 planned with the first version of this code (margin 512 MiB + 2%, no partial block, the
MoE router's cuBLAS workspace not yet counted); runs 2 and 3 with margin 256 MiB + 1%; run 4 (the
three busy cells only) with the margin sized by the measured error, 64 MiB + 1%. A cell's speeds
are the mean over one group of runs (run 4; else runs 2-3; else run 1), each run's figure being
the median of its requests; a cell run 4 measured is listed twice, run 4 first. "best hand" is the fastest hand plan that
served (those that ran out of memory at load or at the first request are listed as such).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

RES = Path(__file__).resolve().parents[1] / "results"
GROUPS = ((4,), (2, 3))  # run 4: the new margin; runs 2-3: 256 MiB + 1%
MARGIN = {1: "512 MiB + 2%", 2: "256 MiB + 1%", 3: "256 MiB + 1%", 4: "64 MiB + 1%"}
ORDER = ("moe-6", "moe-12", "moe-24", "moe-all", "dense-6", "dense-12", "dense-24", "dense-all",
         "swa-6", "swa-12", "swa-24", "swa-all")  # fmt: skip
SHAPE = {"moe": "MoE 30B-A3B-shape (Q4_0, 17.2 GB)", "dense": "dense 8B (Q4_K_M, 4.9 GB)",
         "swa": "sliding-window 4B (gemma3, Q4_0, 2.2 GB)"}  # fmt: skip


def runs() -> dict[int, dict[str, Any]]:
    out = {}
    for p in sorted((RES / "plans").glob("run*-plans.json")):
        out[int(p.name[3 : p.name.index("-")])] = json.loads(p.read_text())
    return out


def _sp(r: dict[str, Any], k: str) -> float | None:
    return (r.get("speed") or {}).get(k)


def per_run(cell: dict[str, Any]) -> dict[str, Any]:
    """One run's figures for one cell: xgen, fit and the best hand plan."""
    by = {"xgen": None, "fit": None, "hand": None}
    hands = []
    oom = []
    for r in cell.get("runs", []):
        if r["plan"] == "hand":
            if _sp(r, "decode_tps"):
                hands.append(r)
            else:
                oom.append(" ".join(r["argv"][-2:]))
        else:
            by[r["plan"]] = r
    if hands:
        by["hand"] = max(hands, key=lambda r: _sp(r, "decode_tps") or 0)
    return {**by, "oom": oom}


def cells(all_runs: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in ORDER:
        found = {n: c for n, d in all_runs.items() for c in d["cells"] if c.get("cell") == name and c.get("runs")}
        groups = [[n for n in g if n in found] for g in GROUPS]
        groups = [g for g in groups if g] or ([sorted(found)] if found else [])
        rows.extend(_row(name, use, found) for use in groups)
    return rows


def _row(name: str, use: list[int], found: dict[int, dict[str, Any]]) -> dict[str, Any]:
    parts = [per_run(found[n]) for n in use]
    row: dict[str, Any] = {"cell": name, "runs": use, "free_mib": found[use[0]]["free_mib"][0]}
    for plan in ("xgen", "fit", "hand"):
        rs = [p[plan] for p in parts if p[plan]]
        if not rs:
            continue
        row[plan] = {
            "decode": statistics.mean(_sp(r, "decode_tps") for r in rs),
            "prompt": statistics.mean(_sp(r, "prompt_tps") for r in rs),
            "mib": rs[-1].get("nvml_mib", {}).get("0"),
            "argv": rs[-1]["argv"],
            "predicted": rs[-1].get("predicted_mib"),
        }
    row["oom"] = sorted({o for p in parts for o in p["oom"]})
    return row


def flags(plan: str, row: dict[str, Any]) -> str:
    a = row[plan]["argv"]
    if plan == "fit":
        return "defaults (`--fit on`)"
    out = []
    for k in ("--n-gpu-layers", "-ngl", "--n-cpu-moe", "--override-tensor"):
        if k in a:
            v = a[a.index(k) + 1]
            out.append(f"{k} {v}" if k != "--override-tensor" else "-ot " + v.replace("\\", ""))
    return "`" + " ".join(out) + "`"


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| cell (free GiB) | run (xgen's margin) | plan | decode t/s | prompt t/s | GPU MiB (NVML) | xgen ÷ best decode | xgen ÷ fit decode |",
           "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        best = max(row[p]["decode"] for p in ("xgen", "fit", "hand") if p in row)
        for plan in ("xgen", "fit", "hand"):
            if plan not in row:
                continue
            r = row[plan]
            ratio = f"**{row['xgen']['decode'] / best:.2f}**" if plan == "xgen" else ""
            vs_fit = f"{row['xgen']['decode'] / row['fit']['decode']:.2f}" if plan == "xgen" and "fit" in row else ""
            mark = f"{'-'.join(map(str, row['runs']))} ({MARGIN.get(row['runs'][0], '?')})"
            out.append(f"| {row['cell']} | {mark} | {plan} {flags(plan, row)} | {r['decode']:.1f} | {r['prompt']:.0f} | "
                       f"{r['mib']} | {ratio} | {vs_fit} |")  # fmt: skip
        if row["oom"]:
            out.append(f"| {row['cell']} | {mark} | hand {', '.join(row['oom'])} | out of memory | | | | |")
    return "\n".join(out)


def memory_table(all_runs: dict[int, dict[str, Any]]) -> str:
    out = ["| run | cell | xgen's placement | predicted MiB | NVML MiB | error |", "|---|---|---|---|---|---|"]
    for n, d in sorted(all_runs.items()):
        for c in d["cells"]:
            for r in c.get("runs", []):
                if r["plan"] == "xgen" and r.get("error_pct") is not None:
                    row = {"xgen": r}
                    out.append(f"| {n} | {c['cell']} | {flags('xgen', row)} | {r['predicted_mib']} | "
                               f"{r['nvml_mib']['0']} | {r['error_pct']:+.2f}% |")  # fmt: skip
    return "\n".join(out)


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen: set[str] = set()  # one bar group per cell: the first row (run 4 where it measured the cell)
    busy = [r for r in rows if r["cell"] in ("moe-6", "moe-12", "moe-24", "dense-6", "swa-6", "moe-all")
            and not (r["cell"] in seen or seen.add(r["cell"]))]  # fmt: skip
    fig, ax = plt.subplots(figsize=(9, 4.2))
    w = 0.27
    for i, (plan, color) in enumerate((("xgen", "#2a7ab9"), ("fit", "#bbbbbb"), ("hand", "#e39b3b"))):
        xs = [j + (i - 1) * w for j in range(len(busy))]
        ys = [r[plan]["decode"] if plan in r else 0 for r in busy]
        ax.bar(xs, ys, w, label={"xgen": "xgen's plan", "fit": "llama-server --fit on", "hand": "best hand plan"}[plan],
               color=color)  # fmt: skip
    ax.set_xticks(range(len(busy)), [f"{r['cell'].split('-')[0]}\n{r['cell'].split('-')[1]} GiB free\n"
                                     f"run {'-'.join(map(str, r['runs']))}" for r in busy])  # fmt: skip
    ax.set_ylabel("decode tokens/s")
    ax.set_title("NVIDIA H200, llama.cpp b11434 CUDA: another process holds all but N GiB")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    all_runs = runs()
    rows = cells(all_runs)
    print(table(rows))
    print()
    print(memory_table(all_runs))
    if "--no-chart" not in sys.argv:
        chart(rows, RES / "plans.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
