"""Tables and the chart for benchmarks/results/h100.md from the JSON the device run returned.

    python benchmarks/gpu/report_h100.py   (reads benchmarks/results/h100/*.json, writes h100.png,
                                            prints the markdown tables)
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RES = Path(__file__).resolve().parents[1] / "results"
MiB = 1024**2
H100_SXM_BW = 3.35e12  # datasheet, bytes/s


def load(name: str) -> dict:
    return json.loads((RES / "h100" / name).read_text())


def pct(est: float, meas: float) -> str:
    return f"{100 * (est - meas) / meas:+.1f}%"


def cell(row: dict, key: tuple[int, int]) -> str:
    return f"{row[key]['avg_ts']:.0f} ± {row[key]['stddev_ts']:.0f}" if key in row else "-"


def main() -> None:
    r = load("results.json")
    bw = load("bandwidth.json")
    p1, p2 = load("proxy-run1.json"), load("proxy-run2.json")
    a_rows, c_rows = r["a"], r["c"]
    weights = a_rows[0]["estimate"]["weights_gpu"]
    copy_bw = bw["read_plus_write_TBps"] * 1e12
    bound_ds, bound_copy = H100_SXM_BW / weights, copy_bw / weights

    print("## (a) memory\n")
    print("| case | engine settings | xgen predicted | llama.cpp --fit projection | NVML ready | NVML after 1 request "
          "| xgen error | --fit error | llama.cpp breakdown: model + context + compute (+ unaccounted) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for a in a_rows:
        s, e, f, b = a["settings"], a["estimate"]["gpu_total"] / MiB, a["fit"]["total_mib"], a["breakdown_mib"]
        ready, after = a["nvml_ready"] / MiB, a["nvml_after_request"] / MiB
        eng = a["engine"]
        print(f"| {a['label']} | -c {s['n_ctx']} -np {s['n_parallel']} -fa {s['flash_attn']} (FA "
              f"{'on' if eng.get('flash_attn') in ('enabled', 'on') or s['flash_attn'] == 'auto' else 'off'}), "
              f"{eng.get('n_ctx_seq')} cells/slot | {e:.0f} MiB | {f} MiB | {ready:.0f} MiB | {after:.0f} MiB | "
              f"{pct(e, after)} | {pct(f, after)} | {b['model']} + {b['context']} + {b['compute']} (+ {b['unaccounted']}) |")

    print("\n## xgen's estimate, term by term (MiB)\n")
    print("| case | weights est/meas | KV est/meas | compute est/meas | overhead est / NVML minus llama.cpp self |")
    print("|---|---|---|---|---|")
    for a in a_rows:
        e, b = a["estimate"], a["breakdown_mib"]
        kv = e["kv_cache"] / MiB
        comp_gpu = (e["gpu_total"] - e["weights_gpu"] - e["kv_cache"] - e["overhead"]) / MiB
        proc_over = a["nvml_after_request"] / MiB - b["self"]
        print(f"| {a['label']} | {e['weights_gpu'] / MiB:.1f} / {b['model']} | {kv:.0f} / {b['context']} | "
              f"{comp_gpu:.0f} / {b['compute']} | {e['overhead'] / MiB:.0f} / {proc_over:.0f} "
              f"(ready: {a['nvml_ready'] / MiB - b['self']:.0f}) |")

    print("\n## (b) proxy\n")
    print("| run | path | decode tokens/s (client, median) | engine's own tokens/s | TTFT (ms) | ratio proxy/direct |")
    print("|---|---|---|---|---|---|")
    for name, p in (("1 (7 runs)", p1), ("2 (15 runs)", p2)):
        for k in ("direct", "xgen proxy"):
            m = p["median"][k]
            ratio = f"{p['ratio_decode_tps']:.3f}" if k == "xgen proxy" else ""
            print(f"| {name} | {k} | {m['decode_tps']:.1f} | {m['engine_tps']:.1f} | {m['ttft_s'] * 1e3:.1f} | {ratio} |")

    print("\n## (c) speed\n")
    print(f"Decode bound: {weights / 1e9:.3f} GB of weights on the GPU per token; datasheet 3.35 TB/s -> "
          f"{bound_ds:.0f} tokens/s; measured copy {bw['read_plus_write_TBps']:.2f} TB/s -> {bound_copy:.0f} tokens/s.\n")
    print("| configuration | flags | context (per slot) | prompt tokens/s (512) | decode tokens/s (256) | "
          "% of copy bound | NVML memory |")
    print("|---|---|---|---|---|---|---|")
    for c in c_rows:
        flags = " ".join(c["argv"][1:]).replace("/root/xgen-gpu/llama3-8b-q4_k_m.gguf", "M")
        print(f"| {c['config']} | `{flags}` | {c['props']['n_ctx']} x {c['props']['total_slots']} | "
              f"{c['prompt_tps']:.0f} ({', '.join(str(round(x)) for x in c['prompt_runs'])}) | "
              f"{c['decode_tps']:.1f} ({', '.join(str(x) for x in c['decode_runs'])}) | "
              f"{100 * c['decode_tps'] / bound_copy:.0f}% | {c['nvml_after'] / MiB:.0f} MiB |")
    print("\n| llama-bench | FA | ubatch | pp512 | pp2048 | tg128 |\n|---|---|---|---|---|---|")
    bench = r.get("bench", [])
    for fa in (0, 1):
        for ub in (512, 2048):
            row = {(d["n_prompt"], d["n_gen"]): d for d in bench if d["flash_attn"] == fa and d["n_ubatch"] == ub}
            tg = row.get((0, 128))
            print(f"| -ngl 99 -b 2048 | {'on' if fa else 'off'} | {ub} | {cell(row, (512, 0))} | {cell(row, (2048, 0))} | "
                  f"{tg['avg_ts']:.1f} ± {tg['stddev_ts']:.1f} |" if tg else "")

    # -- chart -------------------------------------------------------------------------------------------------
    fig, ax = plt.subplots(2, 2, figsize=(14, 9))
    labels = [a["label"].replace(", ", "\n") for a in a_rows]
    x = range(len(a_rows))
    w = 0.27
    ax[0][0].bar([i - w for i in x], [a["estimate"]["gpu_total"] / MiB for a in a_rows], w, label="xgen predicted")
    ax[0][0].bar(list(x), [a["fit"]["total_mib"] for a in a_rows], w, label="llama.cpp --fit projection")
    ax[0][0].bar([i + w for i in x], [a["nvml_after_request"] / MiB for a in a_rows], w,
                 label="measured (NVML, engine process)")
    ax[0][0].set_xticks(list(x), labels, fontsize=7)
    ax[0][0].set_ylabel("MiB on the GPU")
    ax[0][0].set_title("(a) VRAM: predicted vs measured")
    ax[0][0].legend(fontsize=8)
    names = [c["config"] for c in c_rows]
    ax[0][1].bar(names, [c["decode_tps"] for c in c_rows], color="tab:green")
    for fa in (0, 1):
        tg = [d["avg_ts"] for d in bench if d["flash_attn"] == fa and d["n_gen"] == 128 and d["n_ubatch"] == 512]
        if tg:
            ax[0][1].bar(f"llama-bench tg128\nFA {'on' if fa else 'off'}", tg[0], color="tab:gray")
    ax[0][1].axhline(bound_copy, color="red", ls="--", label=f"bound, measured copy BW ({bound_copy:.0f})")
    ax[0][1].axhline(bound_ds, color="darkred", ls=":", label=f"bound, datasheet 3.35 TB/s ({bound_ds:.0f})")
    ax[0][1].set_ylabel("decode tokens/s")
    ax[0][1].set_title("(c) decode, Llama-3-8B-shaped Q4_K_M")
    ax[0][1].legend(fontsize=8)
    ax[0][1].tick_params(axis="x", labelsize=7)
    ax[1][0].bar(names, [c["prompt_tps"] for c in c_rows], color="tab:purple")
    ax[1][0].set_ylabel("prompt tokens/s (512-token prompt)")
    ax[1][0].set_title("(c) prompt processing")
    ax[1][0].tick_params(axis="x", labelsize=7)
    ax[1][1].bar(names, [c["nvml_after"] / MiB for c in c_rows], color="tab:orange")
    ax[1][1].set_ylabel("MiB on the GPU (NVML)")
    ax[1][1].set_title("(c) memory of each configuration")
    ax[1][1].tick_params(axis="x", labelsize=7)
    fig.suptitle(f"xgen-jupyter on {r['gpu']} (lent machine, {r['date'][:10]}), llama.cpp b11434 CUDA sm_90")
    fig.tight_layout()
    fig.savefig(RES / "h100.png", dpi=110)


if __name__ == "__main__":
    main()
