"""Issue 13's benchmark: xgen's plan vs llama-server's own defaults (--fit on) vs the best hand plan,
on one card that another process holds all but 6, 12 or 24 GiB of (or none of), for three shapes.

Each cell (shape:free): a cudaMalloc filler leaves ``free`` GiB of the card (card_fillers.FILLER);
then, in turn, one engine at a time:

xgen     XGenCore.load on the live NVML numbers (n_ctx 8192, one slot, as the others);
fit      ``llama-server -m M -c 8192 -np 1`` (b11434 defaults: --fit on, which logs each step);
hand     ``-ngl 99 --n-cpu-moe K --fit off`` from the whole-block placement nearest xgen's (its K,
         or K+1 where xgen also put part of block K on the CPU) down, each K until one fails to
         load or run (MoE), or ``-ngl N``, ``N+1``.. (dense/SWA partial offload); skipped where
         xgen put everything on the GPU (no hand plan can beat that placement).

Per engine: NVML per-process memory after the speed runs, prompt/decode t/s (median of --runs,
/completion with 512 prompt tokens and 128 generated, after the host's CPUs settle and one
full-size warm-up request), load time, the engine's buffer lines.
JSON is saved after every engine; nothing starts after --deadline - --min-left.

    python benchmarks/gpu/plans_measure.py --server BIN --model moe=M.gguf,dense=D.gguf \
        --cells moe:6,moe:12 --out R.json --logdir D --deadline EPOCH
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from card_fillers import Cards, start_fillers, stop, wait_released
from engine_io import complete, free_port, log, prompt_tokens
from split_measure import engine_lines, speed

from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.service import XGenCore

MiB, GiB = 1024**2, 1024**3
RESULTS: dict[str, Any] = {"cells": []}
CTX = 8192


def save(out: Path) -> None:
    out.write_text(json.dumps(RESULTS, indent=2, default=str))


def fit_lines(text: str) -> list[str]:
    return [ln.strip()[:240] for ln in text.splitlines() if "fit" in ln and ("common_" in ln or "llama_params" in ln)][:40]


def run_engine(cards: Cards, argv: list[str], label: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    logf = args.logdir / f"{label}.log"
    full = [args.server, *argv, "--host", "127.0.0.1", "--port", str(port)]
    row: dict[str, Any] = {"plan": label, "argv": argv}
    base = cards.snapshot()
    with open(logf, "wb") as f:
        proc = subprocess.Popen(full, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})  # fmt: skip
    try:
        t0 = time.monotonic()
        ok = False
        while time.monotonic() - t0 < 150 and proc.poll() is None:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                break
            time.sleep(0.1)
        row["load_s"] = round(time.monotonic() - t0, 2)
        if ok:
            _measure(cards, base, port, None, args, row)
        else:
            row["error"] = f"not ready (exit {proc.poll()})"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = logf.read_text(errors="replace")
    row["engine"] = engine_lines(text)
    row["fit_log"] = fit_lines(text)
    if "error" in row:
        row["log_tail"] = text[-2500:]
    wait_released(cards, base)
    return row


def settle(limit_s: float = 10.0) -> float:
    """Wait (at most limit_s) until the host's CPUs are 90% idle over half a second, and return the
    idle share: run 4's MoE hand rows started while something still held the CPUs (per-request
    decode 25, 33, 50, 50 t/s)."""
    def ticks() -> tuple[int, int]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)

    end, idle = time.monotonic() + limit_s, 0.0
    while time.monotonic() < end:
        i0, t0 = ticks()
        time.sleep(0.5)
        i1, t1 = ticks()
        idle = (i1 - i0) / max(1, t1 - t0)
        if idle >= 0.9:
            break
    return round(idle, 3)


def _measure(cards: Cards, base: Any, port: int, key: str | None, args: argparse.Namespace, row: dict[str, Any]) -> None:
    time.sleep(0.5)
    row["nvml_ready_mib"] = {k: v // MiB for k, v in cards.new_since(base).items()}
    try:
        row["idle_before"] = settle()
        # A full-size request first: the CPU-side experts are mmap'd, and the first requests
        # that touch them fault their pages in.
        complete(port, key, prompt_tokens(args.n_prompt, 98), args.n_gen)
        row["speed"] = speed(port, key, args.runs, args.n_prompt, args.n_gen)
    except Exception as e:  # recorded; the memory numbers still count
        row["speed_error"] = repr(e)
    row["nvml_mib"] = {k: v // MiB for k, v in cards.new_since(base).items()}


def run_xgen(core: XGenCore, cards: Cards, path: str, label: str, args: argparse.Namespace) -> dict[str, Any]:
    base = cards.snapshot()
    t0 = time.monotonic()
    srv = core.load({"model": path, "name": label, "n_ctx": CTX, "n_parallel": 1, "mlock": False})
    plan, m = srv.plan, srv.plan.memory
    s = plan.settings
    row: dict[str, Any] = {
        "plan": "xgen", "argv": list(plan.argv[1:]), "reasons": [str(r) for r in plan.reasons],
        "n_gpu_layers": s.n_gpu_layers, "n_cpu_moe": s.n_cpu_moe, "override_tensor": s.override_tensor,
        "predicted_mib": round(m.gpu_total / MiB) if m else None, "budget_mib": round((m.budget or 0) / MiB) if m else None,
    }  # fmt: skip
    core.manager.wait(label, timeout=150)
    row["load_s"] = round(time.monotonic() - t0, 2)
    if srv.state == "ready":
        _measure(cards, base, srv.port or 0, srv.api_key, args, row)
    else:
        row["error"] = str(srv.error)
    core.unload(label)
    text = srv.logs.path.read_text(errors="replace") if srv.logs.path else ""
    row["engine"] = engine_lines(text)
    if "error" in row:
        row["log_tail"] = text[-2500:]
    meas = (row.get("nvml_mib") or {}).get(0)
    if meas and row["predicted_mib"]:
        row["error_pct"] = round(100 * (row["predicted_mib"] - meas) / meas, 2)
    wait_released(cards, base)
    return row


def hand_plans(shape: str, x: dict[str, Any], n_layer: int) -> list[list[str]]:
    """Hand plans to try after xgen's, least on the GPU first (the first is xgen's placement or the
    whole-block one next to it, so the same run measures both); [] where xgen placed everything on
    the GPU."""
    base = ["-c", str(CTX), "-np", "1", "--fit", "off", "-lv", "4"]
    if x.get("n_cpu_moe") or x.get("override_tensor"):
        # Whole blocks' experts on the CPU (xgen's may put part of one more block on the CPU: -ot
        # on top of --n-cpu-moe; then its K+1 is the whole-block plan just below it).
        k = int(x.get("n_cpu_moe") or 0) + (1 if x.get("override_tensor") else 0)
        return [[*base, "-ngl", "99", "--n-cpu-moe", str(kk)] for kk in (k, k - 1, k - 2) if kk >= 0]
    ngl = int(x.get("n_gpu_layers") or 0)
    if ngl > n_layer:
        return []
    return [[*base, "-ngl", str(n)] for n in (ngl, ngl + 1, ngl + 2) if n <= n_layer + 1]


def cell(core: XGenCore, cards: Cards, shape: str, free: str, args: argparse.Namespace) -> dict[str, Any]:
    path = args.models[shape]
    label = f"{shape}-{free}"
    row: dict[str, Any] = {"cell": label, "shape": shape, "free_gib": free, "runs": []}
    fillers: list[Any] = []
    if free != "all":
        fillers, info = start_fillers(cards, float(free), args.logdir)
        row["filler"] = info
    row["free_mib"] = [f // MiB for f in cards.free()]
    try:
        def left() -> float:
            return args.deadline - time.time()

        x = run_xgen(core, cards, path, f"xgen-{label}", args)
        row["runs"].append(x)
        save(args.out)
        log(f"{label} xgen: {x.get('argv')[-12:] if x.get('argv') else ''} -> {x.get('speed', {}).get('decode_tps')} t/s, "
            f"{x.get('nvml_mib')} MiB (pred {x.get('predicted_mib')})")  # fmt: skip
        if left() > args.min_left:
            f = run_engine(cards, ["-m", path, "-c", str(CTX), "-np", "1", "-lv", "4"], f"fit-{label}", args)
            f["plan"] = "fit"
            row["runs"].append(f)
            save(args.out)
            log(f"{label} fit: {f.get('speed', {}).get('decode_tps')} t/s, {f.get('nvml_mib')} MiB")
        for i, hp in enumerate(hand_plans(shape, x, args.n_layer.get(shape, 99))):
            if left() < args.min_left:
                row["skipped"] = "deadline"
                break
            h = run_engine(cards, ["-m", path, *hp], f"hand{i}-{label}", args)
            h["plan"] = "hand"
            row["runs"].append(h)
            save(args.out)
            log(f"{label} hand {' '.join(hp[-4:])}: {h.get('speed', {}).get('decode_tps')} t/s, {h.get('nvml_mib')} MiB {h.get('error', '')}")
            if "speed" not in h:
                break  # failed to load: fewer experts on the CPU will not load either
    finally:
        stop(fillers)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--model", required=True, help="shape=path,...")
    p.add_argument("--cells", required=True, help="shape:free_gib|all,...")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--logdir", type=Path, required=True)
    p.add_argument("--deadline", type=float, default=time.time() + 3600)
    p.add_argument("--min-left", type=float, default=45)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--n-prompt", type=int, default=512)
    p.add_argument("--n-gen", type=int, default=128)
    args = p.parse_args()
    args.logdir.mkdir(parents=True, exist_ok=True)
    args.models = dict(kv.split("=", 1) for kv in args.model.split(","))
    from xgen_jupyter.core.models.inspect import inspect_model

    args.n_layer = {k: inspect_model(v).n_layer for k, v in args.models.items()}
    cards = Cards()
    RESULTS.update(cards=cards.names, date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), cpu_cores=os.cpu_count(),
                   ctx=CTX, n_prompt=args.n_prompt, n_gen=args.n_gen, runs=args.runs)  # fmt: skip
    cfg = CoreConfig(binaries={"llama-server-cuda": args.server}, allowed_backends=["llama-server-cuda"],
                     state_dir=args.logdir / "state")  # fmt: skip
    core = XGenCore(cfg)
    try:
        for c in args.cells.split(","):
            shape, free = c.split(":")
            if time.time() > args.deadline - args.min_left:
                RESULTS["cells"].append({"cell": c, "skipped": "deadline"})
                continue
            try:
                RESULTS["cells"].append(cell(core, cards, shape, free, args))
            except Exception as e:  # one broken cell must not lose the others
                RESULTS["cells"].append({"cell": c, "exception": repr(e)})
                log(f"{c}: {e!r}")
            save(args.out)
        RESULTS["calibration"] = _read(args.logdir / "state" / "calibration.json")
        RESULTS["host_bandwidth"] = _read(args.logdir / "state" / "host_bandwidth.json")
    finally:
        core.shutdown()
        save(args.out)
    return 0


def _read(p: Path) -> Any:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
