"""How much the xgen proxy adds: direct to the engine vs through xgen vs through jupyter-server-proxy.

Starts its own Jupyter server (127.0.0.1, a random token, xgen + jupyter-server-proxy) and one
real engine (the default model, loaded through xgen), then measures with the official openai
client (it sends ``Accept: application/json`` even when streaming):

1. sequential streamed chat completions, interleaved across the three paths: median total
   time and time to first token (TTFT);
2. a one-token non-streamed completion: the request overhead alone;
3. 32 concurrent streaming clients: aggregate tokens/s and errors.

Beside the wall-clock figures, the Jupyter server's own CPU time (user + system, from /proc) over the
sequential samples of each path: what the proxy costs per request, a figure other work on a shared box
disturbs far less than wall-clock time (on a CPU box that CPU is taken from the engine's decode).

Prints a markdown table. Usage: .venv/bin/python benchmarks/proxy_overhead.py [--runs 15] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
from openai.types.chat import ChatCompletionMessageParam

REPO = Path(__file__).resolve().parent.parent
PROMPT: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Count from 1 to 100, separated by commas."}
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


@contextmanager
def jupyter_server(tmp: Path) -> Iterator[tuple[str, str, Path]]:
    port, token = free_port(), secrets.token_hex(16)
    keyfile = tmp / "keys.json"
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "XGEN_BENCH_KEYFILE": str(keyfile),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
    }
    argv = [
        sys.executable,
        str(REPO / "benchmarks/_jupyter_launcher.py"),
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp}",
        "--ServerApp.jpserver_extensions={'xgen_jupyter': True, 'jupyter_server_proxy': True}",
        f"--XGen.state_dir={tmp / 'state'}",
        "--ServerApp.log_level=WARN",
    ]
    log = (tmp / "jupyter.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if (
                    httpx.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"jupyter server exited; see {tmp / 'jupyter.log'}")
            time.sleep(0.1)
        yield base, token, keyfile
    finally:
        proc.send_signal(signal.SIGINT)  # clean shutdown: xgen stops its engine
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def load_engine(base: str, token: str, keyfile: Path) -> tuple[int, str]:
    h = {"Authorization": f"token {token}"}
    r = httpx.post(
        f"{base}/xgen/api/servers", headers=h, json={"model": "default", "name": "bench", "backend": BACKEND}, timeout=120
    )
    r.raise_for_status()
    for _ in range(600):
        s = httpx.get(f"{base}/xgen/api/servers/bench", headers=h).json()
        if s["state"] == "ready" and keyfile.exists():
            return int(s["port"]), json.loads(keyfile.read_text())["bench"]
        if s["state"] in ("failed", "crashed"):
            raise SystemExit(f"engine failed: {s['error']}")
        time.sleep(0.2)
    raise SystemExit("engine not ready in 120 s")


def clients(base: str, token: str, port: int, key: str) -> dict[str, openai.AsyncOpenAI]:
    return {
        "direct": openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0),
        "xgen proxy": openai.AsyncOpenAI(base_url=f"{base}/xgen/v1", api_key=token, max_retries=0),
        # jupyter-server-proxy forwards Authorization to the engine, so Jupyter's token goes in the query.
        "jupyter-server-proxy": openai.AsyncOpenAI(
            base_url=f"{base}/proxy/{port}/v1",
            api_key=key,
            max_retries=0,
            default_query={"token": token},
        ),
    }


async def stream_once(client: openai.AsyncOpenAI, model: str, max_tokens: int) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    first = 0.0
    n = 0
    stream = await client.chat.completions.create(
        model=model, messages=PROMPT, max_tokens=max_tokens, temperature=0, stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
            if n == 1:
                first = time.perf_counter() - t0
    return first, time.perf_counter() - t0, n


# llama-cpp-python: the engine of the recorded runs (llama-server closes its keep-alive connection
# after a streamed answer, which the openai client's pool then trips over; set XGEN_BENCH_BACKEND).
BACKEND = os.environ.get("XGEN_BENCH_BACKEND", "llama-cpp-python")


async def one_token(client: openai.AsyncOpenAI, model: str) -> float:
    t0 = time.perf_counter()
    await client.completions.create(model=model, prompt="Hi", max_tokens=1, temperature=0)
    return time.perf_counter() - t0


async def concurrent(
    client: openai.AsyncOpenAI, model: str, n: int, max_tokens: int
) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *(stream_once(client, model, max_tokens) for _ in range(n)), return_exceptions=True
    )
    wall = time.perf_counter() - t0
    tokens = sum(r[2] for r in results if not isinstance(r, BaseException))
    errors = sum(isinstance(r, BaseException) for r in results)
    return tokens / wall, errors, tokens


def jupyter_cpu(base: str) -> float:
    """CPU seconds (user + system) the Jupyter server listening at ``base`` has used so far."""
    port = base.rsplit(":", 1)[1]
    for p in psutil.process_iter(["cmdline"]):
        if f"--ServerApp.port={port}" in (p.info["cmdline"] or []):
            t = p.cpu_times()
            return float(t.user + t.system)
    raise SystemExit(f"no Jupyter server on port {port}")


async def measure(
    cl: dict[str, openai.AsyncOpenAI], runs: int, tokens: int, streams: int, stream_tokens: int, base: str = ""
) -> dict[str, dict[str, Any]]:
    model = "bench"  # the xgen server name; the engines ignore it
    out: dict[str, dict[str, Any]] = {k: {"ttft": [], "total": [], "chunks": [], "tiny": [], "cpu": 0.0} for k in cl}

    async def sample(name: str) -> None:
        cpu0 = jupyter_cpu(base) if base else 0.0
        ttft, total, n = await stream_once(cl[name], model, tokens)
        out[name]["ttft"].append(ttft)
        out[name]["total"].append(total)
        out[name]["chunks"].append(n)
        out[name]["tiny"].append(await one_token(cl[name], model))
        out[name]["cpu"] += (jupyter_cpu(base) - cpu0) if base else 0.0

    for c in cl.values():  # warm-up: connections, prompt cache
        await stream_once(c, model, 4)
        await one_token(c, model)
    # direct and xgen interleaved, so drift on a shared box hits both alike. jupyter-server-proxy
    # runs on its own afterwards: its buffered requests would otherwise delay the others'.
    for _ in range(runs):
        await sample("direct")
        await sample("xgen proxy")
    for _ in range(max(3, runs // 3)):
        await sample("jupyter-server-proxy")
    for name, c in cl.items():
        tps, errors, n = await concurrent(c, model, streams, stream_tokens)
        out[name].update(tps=tps, errors=errors, tokens=n)
    return out


def table(res: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    med = {k: {m: statistics.median(v[m]) for m in ("ttft", "total", "tiny")} for k, v in res.items()}
    d = med["direct"]
    lines = [
        f"Machine: {os.cpu_count()}-core CPU box ({cpu_name()}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average at the end {os.getloadavg()[0]:.1f} (the box is "
        "shared with other workers: expect noise); engine: llama-cpp-python on CPU, default model (gemma-3-270m "
        f"Q4_K_M); client: official openai {openai.__version__} (AsyncOpenAI, `Accept: application/json`).",
        f"Sequential: {args.runs} streamed chat completions of {args.tokens} tokens per path, direct and xgen "
        f"interleaved, jupyter-server-proxy after them ({max(3, args.runs // 3)} runs); medians. Concurrent: {args.streams} clients at once, {args.stream_tokens} tokens each.",
        "",
        "| path | TTFT (ms) | TTFT added (ms) | paired | total (s) | total ratio | 1-token request (ms) | added (ms) "
        f"| {args.streams} streams: tokens/s | ratio | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, m in med.items():
        r = res[k]
        # paired: the median of each run's difference from the direct sample just before it (drift cancels)
        pairs = zip(r["ttft"], res["direct"]["ttft"], strict=False)
        paired = statistics.median(a - b for a, b in pairs) if k != "direct" else 0.0
        lines.append(
            f"| {k} | {m['ttft'] * 1e3:.1f} | {(m['ttft'] - d['ttft']) * 1e3:+.2f} | {paired * 1e3:+.2f} | {m['total']:.3f} | "
            f"{m['total'] / d['total']:.3f} | {m['tiny'] * 1e3:.1f} | {(m['tiny'] - d['tiny']) * 1e3:+.2f} | "
            f"{r['tps']:.1f} | {r['tps'] / res['direct']['tps']:.3f} | {r['errors']} |"
        )
    lines += ["", "Jupyter server CPU (user + system) per sample (one streamed completion + one 1-token request), "
              "the sequential runs: " + ", ".join(
                  f"{k} {res[k]['cpu'] / max(1, len(res[k]['ttft'])) * 1e3:.1f} ms" for k in res)]
    jsp = med["jupyter-server-proxy"]
    lines += [
        "",
        f"jupyter-server-proxy: first token after {jsp['ttft'] * 1e3:.0f} ms of a {jsp['total'] * 1e3:.0f} "
        "ms stream (it buffers unless `Accept` is exactly `text/event-stream`); xgen streams whatever "
        "the Accept header says.",
    ]
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> str:
    with (
        tempfile.TemporaryDirectory(prefix="xgen-bench-") as d,
        jupyter_server(Path(d)) as (base, token, keyfile),
    ):
        port, key = load_engine(base, token, keyfile)
        res = await measure(
            clients(base, token, port, key), args.runs, args.tokens, args.streams, args.stream_tokens, base
        )
        return table(res, args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--streams", type=int, default=32)
    p.add_argument("--stream-tokens", type=int, default=16)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    text = asyncio.run(amain(args))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            f"# Proxy overhead\n\n`{' '.join(sys.argv)}` on {time.strftime('%Y-%m-%d')}\n\n{text}\n"
        )


if __name__ == "__main__":
    main()
