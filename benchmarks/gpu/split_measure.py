"""One model over two GPUs, as xgen plans it: predicted vs measured memory per card, and speed.

Cases (each loaded through XGenCore, so through the planner and the ProcessManager):

one    xgen's automatic plan on idle cards (the model fits one card: no split expected)
layer  ``split_mode=layer``: xgen picks ``--tensor-split`` (whole blocks per card)
layer-b ``split_mode=layer`` with 24576 tokens, 3 slots, no flash attention (a new case)
tensor ``split_mode=tensor``: matrices and KV cut across both cards (b11434, experimental)
row    ``split_mode=row``: b11434's CUDA build has none; xgen refuses it before starting
partial-one / partial-split  busy cards with 3 GiB each to give: one card (``split_mode=none``)
       and both (32768 tokens): partial offload, the output head first as b11434 places it
busy   both cards made busy by other processes (cudaMalloc fillers leaving xgen's margin plus
       ``--busy-budget`` GiB on each), then xgen's automatic plan: no card alone holds the model, so xgen splits it
engine llama-server's own defaults (no xgen): ``-m MODEL`` only (``--fit on``, split by
       free memory), for comparison

For each: the plan (argv, per-card prediction), NVML's per-process use on each card after the
engine is ready and after the speed runs, and prompt/decode tokens/s (median of --runs). JSON is
written after every case; no case starts after --deadline - 30 s (epoch seconds).

    python benchmarks/gpu/split_measure.py --server BIN --model Q4.gguf --out R.json --logdir D
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from card_fillers import Cards, start_fillers, stop, wait_released
from engine_io import complete, free_port, log, prompt_tokens

from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.service import XGenCore

MiB, GiB = 1024**2, 1024**3
RESULTS: dict[str, Any] = {"cases": []}

def speed(port: int, key: str | None, runs: int, n_prompt: int, n_gen: int) -> dict[str, Any]:
    complete(port, key, prompt_tokens(64, 99), 8)  # warm-up
    pp, tg = [], []
    for r in range(runs):
        t = complete(port, key, prompt_tokens(n_prompt, r), n_gen)
        pp.append(t["prompt_per_second"])
        tg.append(t["predicted_per_second"])
    return {"prompt_tps": round(statistics.median(pp), 1), "decode_tps": round(statistics.median(tg), 2),
            "prompt_all": [round(x, 1) for x in pp], "decode_all": [round(x, 2) for x in tg],
            "n_prompt": n_prompt, "n_gen": n_gen}  # fmt: skip


def engine_lines(text: str) -> dict[str, Any]:
    keep = re.compile(r"buffer size|pipeline parallelism|offloaded|split_mode|memory_breakdown|using device|"
                      r"n_ctx\s+=|n_ctx_seq|flash_attn\s+=|n_seq_max")  # fmt: skip
    lines = [ln.strip()[:220] for ln in text.splitlines() if keep.search(ln) and not ln.startswith("[xgen]")]
    bufs: dict[str, float] = {}
    for ln in lines:
        m = re.search(
            r"(CUDA\d|CUDA_Host|CPU(?:_Mapped|_REPACK)?) (model|KV|compute|RS) buffer size =\s+([\d.]+) MiB",
            ln,
        )
        if m:
            key = f"{m.group(1)} {m.group(2)}"
            bufs[key] = round(bufs.get(key, 0.0) + float(m.group(3)), 2)
    return {
        "buffers_mib": bufs,
        "lines": lines[:60],
        "pipeline": any("pipeline parallelism enabled" in ln for ln in lines),
    }


def measure_engine(cards: Cards, base: dict[int, dict[int, int]], port: int, key: str | None,
                   args: argparse.Namespace, row: dict[str, Any]) -> None:  # fmt: skip
    time.sleep(1.0)
    row["nvml_ready"] = cards.new_since(base)
    try:
        row["speed"] = speed(port, key, args.runs, args.n_prompt, args.n_gen)
    except Exception as e:  # recorded; the memory numbers still count
        row["speed_error"] = repr(e)
    time.sleep(0.5)
    row["nvml_after"] = cards.new_since(base)


def compare(row: dict[str, Any]) -> None:
    """Per card: predicted vs measured (after the speed runs), in MiB and %."""
    est = row.get("per_gpu_predicted") or []
    gpus = row.get("gpus") or []
    meas = row.get("nvml_after") or {}
    out = []
    for g, e in zip(gpus, est, strict=False):
        m = meas.get(g)
        out.append({"gpu": g, "predicted_mib": round(e / MiB), "measured_mib": round(m / MiB) if m else None,
                    "error_pct": round(100 * (e - m) / m, 2) if m else None})  # fmt: skip
    row["per_gpu"] = out


def xgen_case(
    core: XGenCore, cards: Cards, label: str, req: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    name = re.sub(r"\W+", "-", label)[:40]
    row: dict[str, Any] = {
        "label": label,
        "request": req,
        "free_before_mib": [f // MiB for f in cards.free()],
    }
    base = cards.snapshot()
    t0 = time.monotonic()
    srv = core.load({**req, "model": args.model, "name": name})
    plan = srv.plan
    m = plan.memory
    row.update(argv=list(plan.argv), env=plan.env, settings=plan.settings.to_dict(), gpus=list(plan.gpus),
               reasons=[str(r) for r in plan.reasons], estimate=m.to_dict() if m else None,
               per_gpu_predicted=list(m.per_gpu) if m and m.per_gpu else ([m.gpu_total] if m else []))  # fmt: skip
    core.manager.wait(name, timeout=max(10.0, min(200.0, args.deadline - time.time() - 20)))
    row["load_s"] = round(time.monotonic() - t0, 2)
    row["state"] = srv.state
    if srv.state == "ready":
        measure_engine(cards, base, srv.port or 0, srv.api_key, args, row)
    else:
        row["error"] = str(srv.error)
    core.unload(name)
    text = srv.logs.path.read_text(errors="replace") if srv.logs.path else ""
    row["engine"] = engine_lines(text)
    if srv.state != "stopped" or "nvml_ready" not in row:
        row["log_tail"] = text[-4000:]
    compare(row)
    wait_released(cards, base)
    return row


def engine_case(cards: Cards, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    logf = args.logdir / "engine-defaults.log"
    argv = [args.server, "-m", args.model, "--host", "127.0.0.1", "--port", str(port)]
    row: dict[str, Any] = {"label": "llama-server defaults (no xgen)", "argv": argv[1:]}
    env = {**os.environ, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    base = cards.snapshot()
    with open(logf, "wb") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        t0 = time.monotonic()
        import httpx

        while time.monotonic() - t0 < 120 and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        row["load_s"] = round(time.monotonic() - t0, 2)
        if proc.poll() is None:
            measure_engine(cards, base, port, None, args, row)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    row["engine"] = engine_lines(logf.read_text(errors="replace"))
    wait_released(cards, base)
    return row


def save(out: Path) -> None:
    out.write_text(json.dumps(RESULTS, indent=2, default=str))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--logdir", type=Path, required=True)
    p.add_argument("--deadline", type=float, default=time.time() + 3600)
    p.add_argument("--cases", default="one,layer,layer-b,tensor,row,busy,engine")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--n-prompt", type=int, default=512)
    p.add_argument("--n-gen", type=int, default=128)
    p.add_argument("--busy-budget", type=float, default=5.0,
                   help="busy case: GiB each card keeps for xgen beyond its margin (free - margin)")  # fmt: skip
    args = p.parse_args()
    args.logdir.mkdir(parents=True, exist_ok=True)
    cards = Cards()
    RESULTS.update(cards=cards.names, date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), cpu_cores=os.cpu_count())
    cfg = CoreConfig(binaries={"llama-server-cuda": args.server}, allowed_backends=["llama-server-cuda"],
                     state_dir=args.logdir / "state")  # fmt: skip
    core = XGenCore(cfg)
    os.environ["LLAMA_ARG_LOG_VERBOSITY"] = "4"  # the per-device memory breakdown at exit
    xcases = {
        "one": {},
        "layer": {"split_mode": "layer"},
        # Not among the cases the split model was corrected from: no flash attention, 3 slots.
        "layer-b": {"split_mode": "layer", "n_ctx": 24576, "n_parallel": 3, "flash_attn": "off"},
        "tensor": {"split_mode": "tensor"},
        # Exploring the tensor split's extra per-card memory: does it scale with the ubatch?
        "tensor-ub256": {"split_mode": "tensor", "n_ubatch": 256},
        "tensor-ub1024": {
            "split_mode": "tensor",
            "n_ubatch": 1024,
            "n_batch": 1024,
            "n_ctx": 8192,
            "n_parallel": 1,
        },
        "tensor-31": {"split_mode": "tensor", "tensor_split": [3, 1]},
        # New cases for the tensor split once its per-card constant was measured.
        "tensor-b": {"split_mode": "tensor", "n_ctx": 24576, "n_parallel": 3},
        "tensor-12": {"split_mode": "tensor", "tensor_split": [1, 2], "n_ubatch": 256},
        # Another new layer case: the user's uneven split, one slot, flash attention on.
        "layer-c": {
            "split_mode": "layer",
            "tensor_split": [3, 1],
            "n_ctx": 8192,
            "n_parallel": 1,
            "flash_attn": "on",
        },
        "row": {"split_mode": "row"},
        # Busy cards (``_busy``: GiB each card keeps beyond xgen's margin, the rest held by fillers).
        "busy": {"_busy": args.busy_budget},
        # Partial offload, head first (b11434): one card with 3 GiB to give, then both.
        "partial-one": {"_busy": 3.0, "split_mode": "none"},
        "partial-split": {"_busy": 3.0, "n_ctx": 32768},
    }
    try:
        for c in args.cases.split(","):
            if time.time() > args.deadline - 30:
                RESULTS["cases"].append({"label": c, "skipped": "deadline"})
                continue
            try:
                if c in xcases and "_busy" in xcases[c]:
                    req = {k: v for k, v in xcases[c].items() if k != "_busy"}
                    margin = max(0.5, cfg.gpu_margin * cards.total() / GiB)
                    fillers, info = start_fillers(cards, margin + xcases[c]["_busy"], args.logdir)
                    try:
                        row = xgen_case(core, cards, c, req, args)
                    finally:
                        stop(fillers)
                    row["fillers"] = info
                elif c in xcases:
                    row = xgen_case(core, cards, c, xcases[c], args)
                elif c == "engine":
                    row = engine_case(cards, args)
                else:
                    continue
            except Exception as e:  # one broken case must not lose the others
                row = {"label": c, "exception": repr(e)}
            RESULTS["cases"].append(row)
            save(args.out)
            log(f"{c}: state {row.get('state')} gpus {row.get('gpus')} per-gpu {row.get('per_gpu')} "
                f"speed {(row.get('speed') or {}).get('decode_tps')} t/s decode, "
                f"{(row.get('speed') or {}).get('prompt_tps')} t/s prompt {row.get('exception', '')}")  # fmt: skip
    finally:
        core.shutdown()
        save(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
