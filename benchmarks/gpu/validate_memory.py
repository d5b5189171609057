"""Independent check of xgen's corrected memory model on a real GPU: cases NOT in the set it
was fitted from (benchmarks/results/h100.md), planned by xgen itself and loaded through its
ProcessManager with mlock left to the planner (so ``--load-mode mmap+mlock`` runs for real).

For each case: xgen's predicted ``plan.memory.gpu_total`` vs NVML's per-process use of the
engine after it is ready and after one request (512-token prompt, 32 tokens out), plus the
breakdown llama-server prints when it stops (``-lv 4``) and the engine's VmLck (mlock at work).

Writes JSON to --out after every case and starts no case after --deadline - 40 s (epoch), so a
run cut short keeps what it measured. ``--hardware-json`` and ``--no-nvml`` are for dry runs
without an NVIDIA GPU (a recorded ``xgen detect --json`` stands in for the card).

    python benchmarks/gpu/validate_memory.py --server BIN --model Q4.gguf --out R.json --logdir D
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_io import breakdown, complete, engine_facts, log, prompt_tokens

from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.hardware.types import HardwareReport
from xgen_jupyter.core.service import XGenCore

MiB = 1024**2
#: None of these was measured before (h100.md's cases: 4096/4 auto, 8192/1, 32768/4 off,
#: 65536/8 on, Q8_0 8192/2). The last is the f16 control for the q8_0-KV case.
CASES: list[dict[str, Any]] = [
    {"label": "xgen auto plan (expect 16384 = 4096 x 4 slots)"},
    {"label": "16384 ctx, 2 slots, FA off", "n_ctx": 16384, "n_parallel": 2, "flash_attn": "off"},
    {
        "label": "24576 ctx, 3 slots, FA on, KV q8_0",
        "n_ctx": 24576,
        "n_parallel": 3,
        "flash_attn": "on",
        "cache_type_k": "q8_0",
        "cache_type_v": "q8_0",
    },
    {
        "label": "24576 ctx, 3 slots, FA on, KV f16 (control)",
        "n_ctx": 24576,
        "n_parallel": 3,
        "flash_attn": "on",
    },
]
RESULTS: dict[str, Any] = {"cases": []}


class NoGPU:
    """Stands in for NVML on a box without an NVIDIA GPU (dry runs): every reading is None."""

    name = "none (dry run)"

    def procs(self) -> dict[int, int]:
        return {}

    def used(self) -> int | None:
        return None

    def proc_mem(self, pid: int | None) -> int | None:
        return None


def vm_locked(pid: int | None) -> str | None:
    """The engine's VmLck (memory mlock holds), straight from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmLck:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def pct(est: int | None, meas: int | None) -> float | None:
    return round(100 * (est - meas) / meas, 2) if est and meas else None


def save(out: Path) -> None:
    out.write_text(json.dumps(RESULTS, indent=2, default=str))


def wait_gpu_empty(gpu: Any, seconds: float) -> None:
    """After an unload, let the driver release the engine's memory before the next case."""
    end = time.monotonic() + seconds
    while gpu.procs() and time.monotonic() < end:
        time.sleep(0.2)


def run_case(
    core: XGenCore, gpu: Any, i: int, case: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    label = case["label"]
    req_data = {k: v for k, v in case.items() if k != "label"}
    name = f"val{i}"
    row: dict[str, Any] = {"label": label, "request": req_data}
    base_used = gpu.used()
    t0 = time.monotonic()
    srv = core.load({**req_data, "model": args.model, "name": name})
    plan = srv.plan  # the plan the engine was started with
    s = plan.settings
    est = plan.memory.gpu_total if plan.memory else None
    row.update(
        settings=s.to_dict(),
        argv=list(plan.argv),
        estimate=plan.memory.to_dict() if plan.memory else None,
        reasons=[r.to_dict() for r in plan.reasons],
        load_mode_mlock="--load-mode" in plan.argv and "mmap+mlock" in plan.argv,
        legacy_mlock_flag="--mlock" in plan.argv,
    )
    budget = max(5.0, min(150.0, args.deadline - time.time() - 15))
    core.manager.wait(name, timeout=budget)
    row["load_s"] = round(time.monotonic() - t0, 2)
    row["state"] = srv.state
    if srv.state == "ready":
        time.sleep(1.0)
        row["vm_locked"] = vm_locked(srv.pid)
        row["nvml_ready"] = gpu.proc_mem(srv.pid)
        u = gpu.used()
        row["device_used_delta_ready"] = u - base_used if u is not None and base_used is not None else None
        try:
            per_slot = s.n_ctx // max(1, s.n_parallel)
            t = complete(srv.port or 0, srv.api_key, prompt_tokens(min(512, per_slot // 2), i), args.tokens)
            row["completion"] = {k: t.get(k) for k in ("prompt_n", "predicted_n", "predicted_per_second")}
        except Exception as e:  # recorded; the memory numbers still count
            row["request_error"] = repr(e)
        time.sleep(0.5)
        row["nvml_after_request"] = gpu.proc_mem(srv.pid)
        u = gpu.used()
        row["device_used_delta_after"] = u - base_used if u is not None and base_used is not None else None
    else:
        row["error"] = srv.error
    core.unload(name)
    wait_gpu_empty(gpu, 10.0)
    text = srv.logs.path.read_text(errors="replace") if srv.logs.path else ""
    row["engine"] = engine_facts(text)
    row["breakdown_mib"] = breakdown(text)
    row["mlock_log"] = [
        ln.strip()[:200] for ln in text.splitlines() if "mlock" in ln.lower() and not ln.startswith("[xgen]")
    ][:5]
    if srv.state not in ("stopped",) or "nvml_ready" not in row:
        row["log_tail"] = text[-3000:]
    row["error_pct_ready"] = pct(est, row.get("nvml_ready"))
    row["error_pct_after_request"] = pct(est, row.get("nvml_after_request"))
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True, help="the llama-server binary")
    p.add_argument("--backend", default="llama-server-cuda")
    p.add_argument("--model", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--logdir", type=Path, required=True)
    p.add_argument("--deadline", type=float, default=time.time() + 3600, help="epoch seconds")
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--cases", default="", help="comma-separated case numbers (default: all)")
    p.add_argument("--hardware-json", type=Path, help="dry runs: a recorded `xgen detect --json`")
    p.add_argument("--no-nvml", action="store_true", help="dry runs: no NVIDIA GPU here")
    p.add_argument("--plan-only", action="store_true", help="print the plans, start nothing")
    args = p.parse_args()
    args.logdir.mkdir(parents=True, exist_ok=True)
    if args.no_nvml:
        gpu: Any = NoGPU()
    else:
        from engine_io import GPU

        gpu = GPU(0)
    RESULTS.update(gpu=gpu.name, date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), cpu_cores=os.cpu_count())
    hw = None
    if args.hardware_json:
        report = HardwareReport.from_dict(json.loads(args.hardware_json.read_text()))
        hw = lambda refresh: report  # noqa: E731
    cfg = CoreConfig(
        binaries={args.backend: args.server}, allowed_backends=[args.backend], state_dir=args.logdir / "state"
    )
    core = XGenCore(cfg, hardware=hw)
    RESULTS["engine_flags_has_load_mode"] = "--load-mode" in core.backends()[args.backend].flags
    picked = {int(x) for x in args.cases.split(",") if x} or set(range(len(CASES)))
    # Trace verbosity makes llama-server print its memory breakdown when it stops (engines inherit it).
    os.environ["LLAMA_ARG_LOG_VERBOSITY"] = "4"
    try:
        for i, case in enumerate(CASES):
            if i not in picked:
                continue
            if args.plan_only:
                req = core.request({**{k: v for k, v in case.items() if k != "label"}, "model": args.model})
                pl = core.plan(req, f"val{i}")
                print(
                    case["label"],
                    " ".join(pl.argv[1:]),
                    f"gpu_total {pl.memory.gpu_total / MiB:.0f} MiB" if pl.memory else "",
                    [str(r) for r in pl.reasons if r.rule in ("ctx-per-slot", "mlock-if-ram")],
                )
                continue
            if time.time() > args.deadline - 40:
                log(f"deadline: skipping {case['label']}")
                RESULTS["cases"].append({"label": case["label"], "skipped": "deadline"})
                save(args.out)
                continue
            try:
                row = run_case(core, gpu, i, case, args)
            except Exception as e:  # one broken case must not lose the others
                row = {"label": case["label"], "exception": repr(e)}
                try:
                    core.unload(f"val{i}")
                except Exception:
                    pass
            RESULTS["cases"].append(row)
            save(args.out)
            est = (row.get("estimate") or {}).get("gpu_total")
            log(
                f"{case['label']}: state {row.get('state')}, est {(est or 0) / MiB:.0f} MiB, "
                f"ready {(row.get('nvml_ready') or 0) / MiB:.0f}, after {(row.get('nvml_after_request') or 0) / MiB:.0f}, "
                f"err {row.get('error_pct_ready')}% / {row.get('error_pct_after_request')}%, "
                f"load-mode {row.get('load_mode_mlock')}, VmLck {row.get('vm_locked')}, "
                f"breakdown {row.get('breakdown_mib')} {row.get('exception', '')}"
            )
    finally:
        core.shutdown()
        save(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
