"""One user's Jupyter-side core on a simulated 24 GB NVIDIA box: plan + admit N loads at once.

Plans only: the CUDA backend is marked installed so the planner produces GPU plans, and no
engine is ever started (the registry is what is under test). Prints one JSON line.
Usage: python -m tests.core.box.reserve_worker SHARED_DIR REPORT_JSON N HOLD_FILE
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from xgen_jupyter.core.adapters.registry import backend_ids, row
from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.errors import XGenError
from xgen_jupyter.core.hardware.inject import load_report_file
from xgen_jupyter.core.planning.backend import BackendInstall
from xgen_jupyter.core.process.logbuffer import LogBuffer
from xgen_jupyter.core.process.server import ManagedServer
from xgen_jupyter.core.service import XGenCore


def main() -> None:
    shared, report_file, n, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    report = load_report_file(report_file)
    core = XGenCore(CoreConfig(shared_dir=Path(shared), state_dir=Path(shared).parent / f"state-{os.getpid()}"),
                    hardware=lambda refresh=False: report)
    core._backends = {b: BackendInstall(row(b), b == "llama-server-cuda", "/nonexistent/llama-server"
                                        if b == "llama-server-cuda" else None) for b in backend_ids()}
    admission = core.admission
    assert admission is not None
    user = core.registry.user if core.registry else "?"
    go = threading.Barrier(n)
    results: dict[str, object] = {}

    def one(i: int) -> None:
        name = f"{user}-{i}"
        request = core.request({"model": "default", "name": name, "n_gpu_layers": 99, "n_ctx": 8192})
        go.wait()
        try:
            plan = core.plan(request, name)
            server = ManagedServer(name, request, plan, LogBuffer(None), "k")
            admission.admit(server)
            results[name] = {"ok": True, "gpu": plan.memory.gpu_total if plan.memory else 0}
        except XGenError as exc:
            results[name] = {"ok": False, "error": type(exc).__name__, "message": str(exc)}

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"user": user, "pid": os.getpid(), "results": results}), flush=True)
    while hold.exists():  # hold the reservations until the test has looked at them
        time.sleep(0.05)
    for name, r in results.items():
        if r["ok"]:  # type: ignore[index]
            core.registry.release(name)  # type: ignore[union-attr]
    core.shutdown()


if __name__ == "__main__":
    main()
