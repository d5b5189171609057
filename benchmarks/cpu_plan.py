"""xgen's plan vs llama-server's own defaults on this CPU box, the default model (issue 13).

Both engines are up at once (an idle llama-server takes no CPU): the model loaded by XGenCore
(its plan, its backend) and ``llama-server -m MODEL`` (the same CPU build, nothing else set).
Requests alternate between them, one at a time (the box is shared: load from others drifts, so
each pair is compared as a ratio); medians over the pairs. Writes benchmarks/results/cpu_plan.json.

    .venv/bin/python benchmarks/cpu_plan.py [--pairs 15] [--n-gen 128]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.models.resolve import resolve_model
from xgen_jupyter.core.service import XGenCore

OUT = Path(__file__).resolve().parent / "results" / "cpu_plan.json"


def complete(port: int, key: str | None, n_prompt: int, n_gen: int, seed: int) -> dict[str, float]:
    h = {"Authorization": f"Bearer {key}"} if key else {}
    prompt = " ".join(f"word{(seed * 7919 + i * 104729) % 5000}" for i in range(n_prompt))
    body = {"prompt": prompt, "n_predict": n_gen, "ignore_eos": True, "cache_prompt": False, "temperature": 0.0}
    r = httpx.post(f"http://127.0.0.1:{port}/completion", json=body, headers=h, timeout=600)
    r.raise_for_status()
    t = r.json()["timings"]
    return {"decode": float(t["predicted_per_second"]), "prompt": float(t["prompt_per_second"])}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_defaults(binary: str, model: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([binary, "-m", model, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        if proc.poll() is not None:
            raise RuntimeError(f"llama-server exited {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("llama-server defaults not ready in 120 s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=15)
    p.add_argument("--n-prompt", type=int, default=64)
    p.add_argument("--n-gen", type=int, default=128)
    args = p.parse_args()
    model = resolve_model("default", [])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as state:
        core = XGenCore(CoreConfig(state_dir=Path(state)))
        proc = None
        try:
            binary = core.backends()["llama-server-cpu"].executable
            if not binary:
                print("llama-server-cpu is not installed: run `xgen builds install llama-server-cpu`")
                return 1
            srv = core.load({"model": "default", "name": "bench"})
            core.manager.wait("bench", timeout=120)
            if srv.state != "ready":
                raise RuntimeError(f"xgen's load failed: {srv.error}")
            plan_argv, backend = list(srv.plan.argv[1:]), srv.plan.backend
            proc, port = start_defaults(binary, model)
            for who in ((srv.port or 0, srv.api_key), (port, None)):
                complete(*who, 16, 4, 99)  # warm-up
            for i in range(args.pairs):
                # Alternate which goes first, so neither always follows the other.
                order = [("xgen", srv.port or 0, srv.api_key), ("defaults", port, None)]
                got = {n: complete(pt, k, args.n_prompt, args.n_gen, i) for n, pt, k in (order if i % 2 == 0 else order[::-1])}
                rows.append({"pair": i, **got, "decode_ratio": got["xgen"]["decode"] / got["defaults"]["decode"]})
                print(f"pair {i}: xgen {got['xgen']['decode']:.1f} t/s, defaults {got['defaults']['decode']:.1f} t/s "
                      f"({rows[-1]['decode_ratio']:.3f}x)", flush=True)  # fmt: skip
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            core.shutdown()
    res = {
        "box": f"{socket.gethostname()}, {__import__('os').cpu_count()} logical CPUs", "model": model,
        "backend": backend, "xgen_argv": plan_argv, "defaults_argv": ["-m", model], "pairs": rows,
        "median_decode_ratio": statistics.median(r["decode_ratio"] for r in rows),
        "median_prompt_ratio": statistics.median(r["xgen"]["prompt"] / r["defaults"]["prompt"] for r in rows),
        "median_decode": {k: statistics.median(r[k]["decode"] for r in rows) for k in ("xgen", "defaults")},
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }  # fmt: skip
    OUT.write_text(json.dumps(res, indent=2))
    print(f"median decode ratio xgen/defaults: {res['median_decode_ratio']:.3f} "
          f"(prompt {res['median_prompt_ratio']:.3f}); {res['backend']} {' '.join(plan_argv)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
