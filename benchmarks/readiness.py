"""Readiness-detection latency: from the engine's health check first answering 200 (seen by an
independent tight poller) to ProcessManager reporting ``ready``; beside it, a 1-second poll like
the seed's. Usage: python benchmarks/readiness.py [--runs 10] [--backend auto]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.process.readiness import health_ok
from xgen_jupyter.core.service import XGenCore


def poll(server, adapter, interval: float, out: dict, key: str, stop: threading.Event) -> None:
    while server.port is None and not stop.is_set():
        time.sleep(0.0005)
    port, api_key = server.port, server.api_key if adapter.health_needs_key else None
    while not stop.is_set():
        if health_ok("127.0.0.1", port, adapter.health_path, api_key, timeout=1.0):
            out[key] = time.perf_counter()
            return
        if interval:
            stop.wait(interval)


def one_run(core: XGenCore, backend: str, i: int) -> tuple[float, float, str]:
    seen: dict[str, float] = {}
    ready = threading.Event()

    def on_event(ev) -> None:
        if ev.kind == "state" and ev.data["state"] == "ready" and ev.server == f"r{i}":
            seen["manager"] = time.perf_counter()
            ready.set()

    unsub = core.manager.subscribe(on_event)
    server = core.load({"model": "default", "name": f"r{i}", "backend": backend})
    adapter = core.adapter(server.backend)
    stop = threading.Event()
    threads = [
        threading.Thread(target=poll, args=(server, adapter, 0.0, seen, "tight", stop)),
        threading.Thread(target=poll, args=(server, adapter, 1.0, seen, "seed", stop)),
    ]
    for t in threads:
        t.start()
    if not ready.wait(120):
        raise SystemExit(f"run {i}: {server.state}\n{server.logs.text_tail(30)}")
    deadline = time.monotonic() + 3
    while ("seed" not in seen or "tight" not in seen) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    unsub()
    core.unload(f"r{i}")
    core.manager.forget(f"r{i}")
    return (seen["manager"] - seen["tight"]) * 1000, (seen.get("seed", float("nan")) - seen["tight"]) * 1000, server.backend


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "readiness.md"))
    ns = ap.parse_args()
    core = XGenCore(CoreConfig(state_dir=Path(tempfile.mkdtemp())))
    ours, seed, backend = [], [], ""
    try:
        for i in range(ns.runs):
            a, b, backend = one_run(core, ns.backend, i)
            ours.append(a)
            seed.append(b)
            print(f"run {i}: xgen {a:7.1f} ms   1-s poll {b:7.1f} ms", flush=True)
    finally:
        core.shutdown()
    import platform

    import psutil

    table = (
        f"Readiness detection on {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
        f"engine {backend} on the default model, {ns.runs} runs.\n\n"
        "| poller | median (ms) | p90 (ms) | max (ms) |\n|---|---|---|---|\n"
        + "".join(
            f"| {name} | {statistics.median(v):.1f} | {sorted(v)[int(0.9 * (len(v) - 1))]:.1f} | {max(v):.1f} |\n"
            for name, v in (("xgen ProcessManager (10 ms poll + log pokes)", ours), ("seed-style 1 s poll", seed))
        )
    )
    print(table)
    Path(ns.out).write_text(table)


if __name__ == "__main__":
    main()
