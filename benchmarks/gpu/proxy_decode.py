"""Decode tokens/s through the xgen proxy vs straight to llama-server, on a real GPU engine.

Starts a real ``jupyter server`` (127.0.0.1, random token) with the xgen extension configured
with ``c.XGen.binaries = {"llama-server-cuda": BINARY}``, loads the model with
``POST xgen/api/servers`` (xgen's automatic plan, but mlock=false: the adapter's --mlock is
rejected by llama-server b11434), then streams the same chat completion
alternately straight to the engine and through ``/xgen/v1/chat/completions``. Tokens/s is
counted on the client from the streamed chunks: (chunks - 1) / (last - first chunk), so
time to first token is apart; the engine's own ``timings`` are recorded beside it.
The client is httpx (the openai package and its pydantic are not on the GPU box).

    python benchmarks/gpu/proxy_decode.py --binary B --model M --out OUT.json [--runs 7 --tokens 256]
        [--repo TREE] [--no-usage]

``--repo``: the tree whose ``xgen_jupyter`` the Jupyter server runs (an older commit's copy, for an
A/B in one session). ``--no-usage``: the body an ``openai`` client sends by default (no
``stream_options``), so the proxy adds ``include_usage`` for llama-server as it does for real clients.
Besides the medians, ``ttft_added_paired_ms`` is the median of the per-run differences (each run
sends both paths back to back, so drift on the machine cancels out).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_jupyter(tmp: Path, binary: str, backend: str, repo: Path = REPO) -> tuple[subprocess.Popen[bytes], str, str, Path]:
    port, token = free_port(), secrets.token_hex(16)
    keyfile = tmp / "keys.json"
    (tmp / "config").mkdir()
    (tmp / "config" / "jupyter_server_config.json").write_text(json.dumps({
        "XGen": {"binaries": {backend: binary}, "allowed_backends": [backend], "state_dir": str(tmp / "state")},
    }))
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "XGEN_BENCH_KEYFILE": str(keyfile), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_DATA_DIR": str(tmp / "data")}
    argv = [sys.executable, str(REPO / "benchmarks/_jupyter_launcher.py"), "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp}",
            "--ServerApp.jpserver_extensions={'xgen_jupyter': True}", "--ServerApp.log_level=WARN"]
    log = (tmp / "jupyter.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}).status_code == 200:
                return proc, base, token, keyfile
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"jupyter server did not start:\n{(tmp / 'jupyter.log').read_text(errors='replace')[-3000:]}")


def load(base: str, token: str, keyfile: Path, model: str) -> tuple[dict[str, Any], str]:
    h = {"Authorization": f"token {token}"}
    r = httpx.post(f"{base}/xgen/api/servers", headers=h, json={"model": model, "name": "bench", "mlock": False}, timeout=120)
    if r.status_code >= 300:
        raise SystemExit(f"load refused: {r.status_code} {r.text[:1000]}")
    for _ in range(3000):
        s = httpx.get(f"{base}/xgen/api/servers/bench", headers=h, timeout=10).json()
        if s["state"] == "ready" and keyfile.exists():
            return s, json.loads(keyfile.read_text())["bench"]
        if s["state"] in ("failed", "crashed", "stopped"):
            raise SystemExit(f"engine {s['state']}: {json.dumps(s.get('error'))[:2000]}")
        time.sleep(0.1)
    raise SystemExit("engine not ready in 300 s")


def stream(client: httpx.Client, url: str, auth: str, tokens: int, usage: bool = True) -> dict[str, Any]:
    # include_usage: llama-server then puts its timings in the usage event, which the proxy hides
    # from clients that did not ask for it (server/upstream.py).
    body: dict[str, Any] = {"model": "bench", "messages": MESSAGES, "max_tokens": tokens, "temperature": 0,
                            "stream": True, "ignore_eos": True}
    if usage:
        body["stream_options"] = {"include_usage": True}
    for attempt in (1, 2):
        try:
            return _stream(client, url, auth, body)
        except httpx.RemoteProtocolError:
            # llama-server may close a keep-alive connection after a streamed answer, which httpx's pool
            # trips over on the next request: nothing was answered, so once more on a fresh connection.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _stream(client: httpx.Client, url: str, auth: str, body: dict[str, Any]) -> dict[str, Any]:
    wall0, t0 = time.time(), time.perf_counter()  # wall0: to line samples up with a server-side trace
    stamps: list[float] = []
    timings = None
    sent: list[float] = []

    def trace(event: str, info: Any) -> None:  # httpcore's: when the request's last byte was written
        if event == "http11.send_request_body.complete":
            sent.append(time.time())

    with client.stream("POST", url, json=body, headers={"Authorization": auth}, extensions={"trace": trace}) as r:
        headers_s = time.perf_counter() - t0
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("timings"):
                timings = chunk["timings"]
            ch = chunk.get("choices") or []
            if ch and (ch[0].get("delta") or {}).get("content"):
                stamps.append(time.perf_counter())
    n = len(stamps)
    return {"chunks": n, "wall0": wall0, "sent_s": sent[0] - wall0 if sent else None, "headers_s": headers_s, "ttft_s": stamps[0] - t0 if n else None, "total_s": time.perf_counter() - t0,
            "decode_tps": (n - 1) / (stamps[-1] - stamps[0]) if n > 1 else None,
            "engine_tps": timings.get("predicted_per_second") if timings else None}


def median(xs: list[Any]) -> float | None:
    known = [x for x in xs if x is not None]
    return statistics.median(known) if known else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", required=True)
    p.add_argument("--backend", default="llama-server-cuda")
    p.add_argument("--model", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--repo", type=Path, default=REPO)
    p.add_argument("--no-usage", action="store_true")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="xgen-gpu-proxy-") as d:
        tmp = Path(d)
        proc, base, token, keyfile = start_jupyter(tmp, a.binary, a.backend, a.repo.resolve())
        res: dict[str, Any] = {"runs": a.runs, "tokens": a.tokens, "repo": str(a.repo), "usage": not a.no_usage}
        try:
            t0 = time.monotonic()
            server, key = load(base, token, keyfile, a.model)
            res["load_s"] = round(time.monotonic() - t0, 2)
            res["plan_argv"] = server["plan"]["argv"]
            paths = {"direct": (f"http://127.0.0.1:{server['port']}/v1/chat/completions", f"Bearer {key}"),
                     "xgen proxy": (f"{base}/xgen/v1/chat/completions", f"token {token}")}
            out: dict[str, list[dict[str, Any]]] = {k: [] for k in paths}
            with httpx.Client(timeout=300, trust_env=False) as client:
                for url, auth in paths.values():  # warm-up: connections, CUDA graphs
                    stream(client, url, auth, 16, not a.no_usage)
                for i in range(a.runs):  # interleaved, alternating which path goes first
                    order = list(paths) if i % 2 == 0 else list(reversed(paths))
                    for k in order:
                        out[k].append(stream(client, *paths[k], a.tokens, not a.no_usage))
            res["samples"] = out
            med = {k: {m: median([r[m] for r in v]) for m in ("decode_tps", "ttft_s", "total_s", "engine_tps", "chunks")}
                   for k, v in out.items()}
            res["median"] = med
            px, dx = ({m: v or 0.0 for m, v in med[k].items()} for k in ("xgen proxy", "direct"))
            res["ratio_decode_tps"] = px["decode_tps"] / dx["decode_tps"]
            res["ratio_total"] = px["total_s"] / dx["total_s"]
            res["ttft_added_ms"] = (px["ttft_s"] - dx["ttft_s"]) * 1e3
            res["ttft_added_paired_ms"] = statistics.median(
                (p["ttft_s"] - d["ttft_s"]) * 1e3 for p, d in zip(out["xgen proxy"], out["direct"], strict=True))
        finally:
            try:
                httpx.delete(f"{base}/xgen/api/servers/bench", headers={"Authorization": f"token {token}"}, timeout=60)
            except httpx.HTTPError:
                pass
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            res["jupyter_log_tail"] = (tmp / "jupyter.log").read_text(errors="replace")[-2000:]
            engine_logs = sorted((tmp / "state").rglob("*.log"))
            res["engine_log_tail"] = engine_logs[0].read_text(errors="replace")[-4000:] if engine_logs else None
            a.out.write_text(json.dumps(res, indent=2))
        print(json.dumps({k: res.get(k) for k in ("repo", "load_s", "median", "ratio_decode_tps", "ratio_total",
                                                  "ttft_added_ms", "ttft_added_paired_ms")}, indent=2))


if __name__ == "__main__":
    main()
