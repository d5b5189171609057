"""Memory and speed of the CUDA llama-server on a real GPU: xgen's plan vs measurements.

Parts (``--parts a,c,bench``):

a     memory: for each (model, n_ctx, n_parallel, flash_attn) case, xgen's predicted VRAM
      (``plan.memory.gpu_total``) vs NVML's per-process use of the engine xgen started, after
      it is ready and after one request; beside it llama.cpp's own estimate
      (``llama-fit-params --fit-print on``: what ``--fit`` projects, without the CUDA context)
      and the breakdown llama-server prints when it stops.
c     speed: xgen's automatic plan vs llama-server's defaults vs the seed's flags: prompt and
      decode tokens/s from the engine's own timings (median of runs), and memory.
bench llama-bench over flash attention x ubatch, for reference.

Writes JSON to --out after every case (a partial run keeps what it measured) and stops
starting new cases after --deadline (epoch seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pynvml
from engine_io import GPU, breakdown, complete, engine_facts, free_port, log, prompt_tokens

from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.service import XGenCore

MiB = 1024**2
# The seed's flags; its --mlock is `--load-mode mmap+mlock` in this llama.cpp (b11434 dropped --mlock).
SEED_FLAGS = ["--flash-attn", "off", "--fit", "off", "-ngl", "99", "--batch-size", "2048", "--ubatch-size", "2048",
              "--load-mode", "mmap+mlock", "--cont-batching", "--jinja"]
#: xgen's adapter still passes --mlock, which llama-server b11434 rejects ("invalid argument"): every load
#: fails. Until the adapter is fixed, the benchmark asks for mlock=false (a user setting the planner keeps).
NO_MLOCK = {"mlock": False}
RESULTS: dict[str, Any] = {}


def fit_estimate(fitp: str, model: str, n_ctx: int, n_parallel: int, fa: str, ub: int, b: int, ngl: int) -> dict[str, Any]:
    cmd = [fitp, "-m", model, "-c", str(n_ctx), "-np", str(n_parallel), "-fa", fa, "-ub", str(ub), "-b", str(b),
           "-ngl", str(ngl), "--fit-print", "on"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    res: dict[str, Any] = {"cmd": " ".join(cmd[1:]), "rc": p.returncode}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0].startswith("CUDA0"):
            res.update(model_mib=int(parts[1]), context_mib=int(parts[2]), compute_mib=int(parts[3]))
            res["total_mib"] = res["model_mib"] + res["context_mib"] + res["compute_mib"]
    if "total_mib" not in res:
        res["tail"] = (p.stdout + p.stderr)[-1500:]
    return res


def save(out: Path) -> None:
    out.write_text(json.dumps(RESULTS, indent=2, default=str))


# -- (a) memory ---------------------------------------------------------------------------------------------------
def part_a(core: XGenCore, gpu: GPU, args: argparse.Namespace) -> None:
    cases = [
        {"model": args.q4, "label": "Q4_K_M, xgen auto plan"},
        {"model": args.q4, "label": "Q4_K_M, 8192 ctx, 1 slot", "n_ctx": 8192, "n_parallel": 1},
        {"model": args.q4, "label": "Q4_K_M, 32768 ctx, 4 slots, FA off", "n_ctx": 32768, "n_parallel": 4,
         "flash_attn": "off"},
        {"model": args.q4, "label": "Q4_K_M, 65536 ctx, 8 slots, FA on", "n_ctx": 65536, "n_parallel": 8,
         "flash_attn": "on"},
        {"model": args.q8, "label": "Q8_0, 8192 ctx, 2 slots", "n_ctx": 8192, "n_parallel": 2},
    ]
    rows = RESULTS.setdefault("a", [])
    done = {r["label"] for r in rows if r.get("nvml_after_request")}
    for i, case in enumerate(cases):
        label = case.pop("label")
        if label in done:
            continue
        rows[:] = [r for r in rows if r["label"] != label]
        if time.time() > args.deadline - 25:
            log(f"(a) deadline: skipping {label}")
            rows.append({"label": label, "skipped": "deadline"})
            continue
        name = f"mem{i}"
        req = core.request({**case, **NO_MLOCK, "name": name})
        plan = core.plan(req, name)
        s = plan.settings
        row: dict[str, Any] = {"label": label, "request": case, "settings": s.to_dict(), "argv": list(plan.argv),
                               "estimate": plan.memory.to_dict() if plan.memory else None,
                               "reasons": [str(r) for r in plan.reasons]}
        row["fit"] = fit_estimate(args.fitp, case["model"], s.n_ctx, s.n_parallel, s.flash_attn, s.n_ubatch,
                                  s.n_batch, s.n_gpu_layers)
        base_used = gpu.used()
        t0 = time.monotonic()
        srv = core.load(req)
        core.manager.wait(name, timeout=300)
        row["load_s"] = round(time.monotonic() - t0, 2)
        row["state"] = srv.state
        if srv.state == "ready":
            time.sleep(1.0)
            row["nvml_ready"] = gpu.proc_mem(srv.pid)
            row["device_used_delta_ready"] = gpu.used() - base_used
            try:
                per_slot = s.n_ctx // max(1, s.n_parallel)
                t = complete(srv.port or 0, srv.api_key, prompt_tokens(min(512, per_slot // 2), i), 32)
                row["request"] = {k: t.get(k) for k in ("prompt_n", "predicted_n", "predicted_per_second")}
            except Exception as e:  # recorded; the memory numbers still count
                row["request_error"] = repr(e)
            time.sleep(0.5)
            row["nvml_after_request"] = gpu.proc_mem(srv.pid)
            row["device_used_delta_after"] = gpu.used() - base_used
        core.unload(name)
        time.sleep(0.5)
        text = srv.logs.path.read_text(errors="replace") if srv.logs.path else ""
        row["engine"] = engine_facts(text)
        row["breakdown_mib"] = breakdown(text)
        if srv.state != "stopped" or "nvml_ready" not in row:
            row["log_tail"] = text[-3000:]
        est = row["estimate"]["gpu_total"] if row["estimate"] else None
        if est and row.get("nvml_after_request"):
            row["error_pct_after_request"] = round(100 * (est - row["nvml_after_request"]) / row["nvml_after_request"], 2)
        rows.append(row)
        save(args.out)
        log(f"(a) {label}: est {est and est / MiB:.0f} MiB, ready {(row.get('nvml_ready') or 0) / MiB:.0f}, "
            f"after {(row.get('nvml_after_request') or 0) / MiB:.0f}, fit {row['fit'].get('total_mib')}, "
            f"breakdown {row['breakdown_mib']}")


# -- (c) speed ----------------------------------------------------------------------------------------------------
def raw_engine(binary: str, model: str, flags: list[str], logfile: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [binary, "-m", model, "--host", "127.0.0.1", "--port", str(port), *flags]
    fh = logfile.open("wb")
    proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(3000):
        if proc.poll() is not None:
            raise RuntimeError(f"engine exited {proc.returncode}: {logfile.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("engine not ready in 300 s")


def speed_tests(port: int, key: str | None, runs: int) -> dict[str, Any]:
    complete(port, key, prompt_tokens(64, 99), 16)  # warm-up: CUDA graphs, pools
    pp = [complete(port, key, prompt_tokens(512, r), 1) for r in range(runs)]
    tg = [complete(port, key, prompt_tokens(16, 50 + r), 256) for r in range(runs)]
    return {
        "prompt_tps": statistics.median(t["prompt_per_second"] for t in pp),
        "decode_tps": statistics.median(t["predicted_per_second"] for t in tg),
        "prompt_runs": [round(t["prompt_per_second"], 1) for t in pp],
        "decode_runs": [round(t["predicted_per_second"], 2) for t in tg],
        "decode_n": [t["predicted_n"] for t in tg],
    }


def part_c(core: XGenCore, gpu: GPU, args: argparse.Namespace) -> None:
    rows = RESULTS.setdefault("c", [])
    done = {r["config"] for r in rows if "decode_tps" in r}
    configs = [("xgen auto plan", None), ("llama-server defaults", []), ("seed flags", SEED_FLAGS)]
    for label, flags in configs:
        if label in done:
            continue
        if time.time() > args.deadline - 40:
            log(f"(c) deadline: skipping {label}")
            continue
        row: dict[str, Any] = {"config": label}
        logfile = args.logdir / f"c-{label.replace(' ', '_')}.log"
        proc = None
        srv = None
        try:
            t0 = time.monotonic()
            if flags is None:
                req = core.request({"model": args.q4, **NO_MLOCK, "name": "speed"})
                srv = core.load(req)
                core.manager.wait("speed", timeout=300)
                if srv.state != "ready":
                    raise RuntimeError(f"xgen engine {srv.state}: {srv.error}")
                pid, port, key = srv.pid, srv.port or 0, srv.api_key
                row["argv"] = list(srv.plan.argv)
                row["estimate_gpu_total"] = srv.plan.memory.gpu_total if srv.plan.memory else None
            else:
                proc, port = raw_engine(args.server, args.q4, flags, logfile)
                pid, key = proc.pid, None
                row["argv"] = ["llama-server", "-m", "MODEL", *flags]
            row["load_s"] = round(time.monotonic() - t0, 2)
            time.sleep(1.0)
            row["nvml_ready"] = gpu.proc_mem(pid)
            row.update(speed_tests(port, key, args.runs))
            row["nvml_after"] = gpu.proc_mem(pid)
            try:
                props = httpx.get(f"http://127.0.0.1:{port}/props", timeout=5,
                                  headers={"Authorization": f"Bearer {key}"} if key else {}).json()
                row["props"] = {"n_ctx": props.get("default_generation_settings", {}).get("n_ctx"),
                                "total_slots": props.get("total_slots")}
            except Exception as e:
                row["props_error"] = repr(e)
        except Exception as e:  # one config failing must not lose the others
            row["error"] = repr(e)[-2000:]
        finally:
            if srv is not None:
                core.unload("speed")
                core.manager.forget("speed")
                text = srv.logs.path.read_text(errors="replace") if srv.logs.path else ""
            else:
                if proc is not None:
                    proc.terminate()
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                text = logfile.read_text(errors="replace") if logfile.exists() else ""
            row["engine"] = engine_facts(text)
            row["breakdown_mib"] = breakdown(text)
            if "error" in row:
                row["log_tail"] = text[-3000:]
        rows[:] = [r for r in rows if r["config"] != label] + [row]
        save(args.out)
        log(f"(c) {label}: pp {row.get('prompt_tps')} tg {row.get('decode_tps')} mem {row.get('nvml_after')} "
            f"{row.get('error', '')[:300]}")


def part_bench(args: argparse.Namespace) -> None:
    if time.time() > args.deadline - 60:
        log("bench: deadline, skipped")
        return
    cmd = [args.bench, "-m", args.q4, "-ngl", "99", "-fa", "0,1", "-ub", "512,2048", "-b", "2048", "-p", "512,2048",
           "-n", "128", "-r", "3", "-o", "json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(30, int(args.deadline - time.time())))
    try:
        data = json.loads(p.stdout)
        RESULTS["bench"] = [{k: d.get(k) for k in ("n_prompt", "n_gen", "flash_attn", "n_ubatch", "n_batch", "avg_ts",
                                                    "stddev_ts", "model_size", "gpu_info", "build_number")} for d in data]
    except ValueError:
        RESULTS["bench_error"] = (p.stdout + p.stderr)[-3000:]
    save(args.out)
    log(f"bench: {RESULTS.get('bench') or RESULTS.get('bench_error')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--fitp", required=True)
    p.add_argument("--bench", required=True)
    p.add_argument("--q4", required=True)
    p.add_argument("--q8", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--logdir", type=Path, required=True)
    p.add_argument("--parts", default="a,c")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--deadline", type=float, default=time.time() + 3600)
    args = p.parse_args()
    args.logdir.mkdir(parents=True, exist_ok=True)
    if args.out.exists():
        RESULTS.update(json.loads(args.out.read_text()))
    gpu = GPU(0)
    RESULTS["gpu"] = gpu.name
    RESULTS["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    cfg = CoreConfig(binaries={"llama-server-cuda": args.server}, allowed_backends=["llama-server-cuda"],
                     state_dir=args.logdir / "state")
    core = XGenCore(cfg)
    RESULTS["hardware"] = {"gpu0_total": int(pynvml.nvmlDeviceGetMemoryInfo(gpu.h).total),
                           "gpu0_free_at_start": int(pynvml.nvmlDeviceGetMemoryInfo(gpu.h).free),
                           "cpu_cores": os.cpu_count()}
    try:
        for part in args.parts.split(","):
            log(f"part {part}")
            if part == "a":
                # Trace verbosity makes llama-server print its memory breakdown when it stops (engines
                # inherit the environment); only for (a), so that logging cannot touch (c)'s speeds.
                os.environ["LLAMA_ARG_LOG_VERBOSITY"] = "4"
                try:
                    part_a(core, gpu, args)
                finally:
                    os.environ.pop("LLAMA_ARG_LOG_VERBOSITY", None)
            elif part == "c":
                part_c(core, gpu, args)
            elif part == "bench":
                part_bench(args)
    finally:
        core.shutdown()
        save(args.out)


if __name__ == "__main__":
    sys.exit(main())
