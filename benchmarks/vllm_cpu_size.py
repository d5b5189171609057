"""vLLM's memory terms as xgen estimates them (core/planning/vllm_fit.py) vs what vLLM's CPU build
reports here (the lent GPU machine has no vLLM): the KV cache per token (vLLM fills
VLLM_CPU_KVCACHE_SPACE with 16-token blocks and logs how many tokens fit) and the weights
("Model loading took"). Writes benchmarks/results/vllm_cpu_size.json.

    .venv/bin/python benchmarks/vllm_cpu_size.py [--python ~/.cache/xgen/vllm-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning import vllm_fit

ROOT = Path(__file__).resolve().parents[1]
GiB = 1024**3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default=str(Path.home() / ".cache/xgen/vllm-venv/bin/python"))
    p.add_argument("--kv-gib", type=float, default=1.0)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny-llama"
        subprocess.run([a.python, str(ROOT / "tests/core/adapters/make_tiny_llama.py"), str(model)], check=True,
                       capture_output=True, timeout=300)  # fmt: skip
        facts = inspect_model(str(model))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = Path(tmp) / "vllm.log"
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": f"{a.kv_gib:g}", "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}
        with open(log, "wb") as f:
            proc = subprocess.Popen([a.python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
                                     "--max-model-len", "512", "--max-num-seqs", "2", "--host", "127.0.0.1",
                                     "--port", str(port)], stdout=f, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)  # fmt: skip
        try:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 240 and proc.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        text = log.read_text(errors="replace")
    lines = [ln.strip()[-220:] for ln in text.splitlines()
             if re.search(r"KV cache|blocks|Model loading took|memory|concurrency", ln)]  # fmt: skip
    m = re.search(r"KV cache size: ([\d,]+) tokens", text)
    tokens = int(m.group(1).replace(",", "")) if m else None
    per_token = vllm_fit.kv_bytes(facts, 16, 1) // 16
    res = {
        "model": {"n_layer": facts.n_layer, "n_head_kv": facts.n_head_kv, "head_dim": facts.head_dim_k,
                  "weight_bytes": facts.weight_bytes, "dtype": facts.dtype},
        "kv_space_bytes": int(a.kv_gib * GiB), "xgen_kv_bytes_per_token": per_token,
        "vllm_kv_tokens": tokens, "xgen_kv_tokens": int(a.kv_gib * GiB) // per_token,
        "xgen_weights_bytes": vllm_fit.weight_bytes(facts, None), "vllm_lines": lines[:30],
    }  # fmt: skip
    out = ROOT / "benchmarks/results/vllm_cpu_size.json"
    out.write_text(json.dumps(res, indent=2))
    print(json.dumps({k: v for k, v in res.items() if k != "vllm_lines"}, indent=1))
    print("\n".join(lines[:30]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
