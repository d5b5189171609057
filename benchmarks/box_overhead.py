"""Warm overhead when the Jupyter server is a client of the box service (docs/shared-box.md): the
same streams as proxy_overhead.py, direct to the engine vs through the proxy, but every lookup, slot
and key the proxy needs is a call on the service's socket.

Starts ``xgen box`` (its own socket, shared and state folders in a temporary directory, as the
current user), a Jupyter server that finds that socket ($XGEN_BOX_SOCKET), and the default engine
through it. Prints a markdown table. Usage: .venv/bin/python benchmarks/box_overhead.py [--runs 25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import proxy_overhead as po


def start_service(tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    sock = tmp / "shared" / "box.sock"
    argv = [sys.executable, "-m", "xgen_jupyter", "box", "--socket", str(sock), "--shared-dir", str(tmp / "shared"),
            "--state-dir", str(tmp / "box-state"), "--backend", po.BACKEND]
    log = (tmp / "box.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(po.REPO)})
    for _ in range(300):
        if sock.exists():
            return proc, sock
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"the box service did not start:\n{(tmp / 'box.log').read_text()[-2000:]}")


async def measure(cl: dict[str, Any], runs: int, tokens: int) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {k: {"ttft": [], "total": [], "tiny": []} for k in cl}
    for c in cl.values():  # warm-up: connections, prompt cache
        await po.stream_once(c, "bench", 4)
    for _ in range(runs):
        for name, c in cl.items():
            ttft, total, _n = await po.stream_once(c, "bench", tokens)
            out[name]["ttft"].append(ttft)
            out[name]["total"].append(total)
            out[name]["tiny"].append(await po.one_token(c, "bench"))
    return out


def table(res: dict[str, dict[str, list[float]]]) -> str:
    d = {m: statistics.median(v) for m, v in res["direct"].items()}
    p = {m: statistics.median(v) for m, v in res["xgen proxy"].items()}
    paired = statistics.median(a - b for a, b in zip(res["xgen proxy"]["ttft"], res["direct"]["ttft"], strict=True))
    return "\n".join([
        f"Machine: {os.cpu_count()}-core CPU box ({po.cpu_name()}), load average at the end {os.getloadavg()[0]:.1f}; "
        f"engine: {po.BACKEND}, default model, loaded by the box service; {len(res['direct']['ttft'])} runs per path.",
        "",
        "| path | TTFT (ms) | TTFT added, medians (ms) | paired (ms) | total ratio | 1-token request added (ms) |",
        "|---|---|---|---|---|---|",
        f"| direct | {d['ttft'] * 1e3:.1f} | — | — | 1.000 | — |",
        f"| xgen proxy, box service | {p['ttft'] * 1e3:.1f} | {(p['ttft'] - d['ttft']) * 1e3:+.2f} | "
        f"{paired * 1e3:+.2f} | {p['total'] / d['total']:.3f} | {(p['tiny'] - d['tiny']) * 1e3:+.2f} |",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--tokens", type=int, default=48)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="xgen-box-bench-") as d:
        tmp = Path(d)
        service, sock = start_service(tmp)
        os.environ["XGEN_BOX_SOCKET"] = str(sock)  # the Jupyter server below is the service's client
        try:
            with po.jupyter_server(tmp) as (base, token, keyfile):
                port, key = po.load_engine(base, token, keyfile)
                cl = {k: v for k, v in po.clients(base, token, port, key).items() if k != "jupyter-server-proxy"}
                print(table(asyncio.run(measure(cl, args.runs, args.tokens))))
        finally:
            service.send_signal(signal.SIGTERM)  # the service stops its engines
            try:
                service.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(service.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
