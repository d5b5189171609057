"""The box service's books for engines on Ray nodes (boxd/cluster.py), against a real private registry.

What the two-node test (test_box_ray_svc.py) does not reach quickly: a placement where only some
layers fit, a GPU quota, and an on-crash restart done by the node (the entry is released at the
crash and booked again when the node plans it anew; a stopped server is not).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO
from xgen_jupyter.boxd.cluster import ClusterBooks, node_claims
from xgen_jupyter.core.box.registry import BoxRegistry
from xgen_jupyter.core.cluster.placement import Candidate
from xgen_jupyter.core.errors import QuotaExceeded
from xgen_jupyter.core.hardware.types import CPUInfo, GPUInfo, HardwareReport
from xgen_jupyter.core.planning.margin import Margin
from xgen_jupyter.core.process.events import Event

GiB = 1024**3
REPORT = HardwareReport("env", (GPUInfo(0, "Sim 8GB", "nvidia", 8 * GiB, 2 * GiB),), CPUInfo(2, 2, 16 * GiB, 12 * GiB))


def server(name: str) -> SimpleNamespace:
    lines: list[str] = []
    return SimpleNamespace(name=name, request=SimpleNamespace(model="/m/gemma.gguf"),
                           plan=SimpleNamespace(backend="llama-server-cuda"), logs=SimpleNamespace(append=lines.append),
                           lines=lines)


def state(name: str, st: str) -> Event:
    return Event("state", name, {"name": name, "state": st, "pid": 4242, "endpoint": "http://127.0.0.9:5000"})


def test_partial_fit_quota_and_a_restart_done_by_the_node(tmp_path: Path) -> None:
    registry = BoxRegistry(tmp_path / "reg", {"users": {"alice": {"gpu_bytes": "1.7GiB"}}}, "alice", private=True)
    books = ClusterBooks(registry, Margin.of())
    # Only some layers fit: the node's planner fills what is free there, and that much is reserved.
    partial = Candidate("n1", "127.0.0.9", 0, False, 10, need=3 * GiB, budget=int(1.5 * GiB), gpu_name="Sim 8GB")
    s = server("a1")
    books.admit(s, partial, REPORT)  # type: ignore[arg-type]
    [entry] = registry.listing()
    assert entry["devices"] == [{"device": "node:127.0.0.9/gpu:0", "label": "node 127.0.0.9 GPU 0 (Sim 8GB)",
                                 "kind": "gpu", "bytes": int(1.5 * GiB)}]
    assert "node 127.0.0.9 GPU 0" in s.lines[-1]

    # Her GPU quota counts remote engines: 1.5 GiB held, 0.5 more is over 1.7 GiB.
    with pytest.raises(QuotaExceeded, match=r"alice.s GPU memory quota is 1\.70 GiB"):
        books.admit(server("a2"), Candidate("n1", "127.0.0.9", 0, True, 30, GiB // 2, GiB, "Sim 8GB"), REPORT)  # type: ignore[arg-type]

    # The engine crashes and its node restarts it: released at the crash, booked again when planned anew.
    for st in ("loading", "ready"):
        books.on_event(state("a1", st))
    assert [(e["state"], e["gpu_bytes"]) for e in registry.listing()] == [("ready", int(1.5 * GiB))]
    books.on_event(state("a1", "crashed"))
    assert registry.listing() == []
    books.on_event(state("a1", "planned"))
    books.on_event(state("a1", "ready"))
    assert [(e["name"], e["state"], e["gpu_bytes"]) for e in registry.listing()] == [("a1", "ready", int(1.5 * GiB))]
    # No engine pid in the books: it names a process on another node.
    assert registry._do(lambda con: con.execute("SELECT engine_pid FROM servers").fetchall(), write=False) == [(None,)]

    # Stopped is the end: a late event of that name books nothing.
    books.on_event(state("a1", "stopped"))
    books.on_event(state("a1", "ready"))
    assert registry.listing() == []


def test_a_node_without_the_placed_gpu_or_without_gpus() -> None:
    with pytest.raises(Exception, match="no longer reports GPU"):
        node_claims("127.0.0.9", 3, GiB, REPORT, Margin.of())
    [claim] = node_claims("127.0.0.9", None, 2 * GiB, REPORT, Margin.of())
    assert (claim.device, claim.kind, claim.bytes, claim.used) == ("node:127.0.0.9/host", "host", 2 * GiB, 4 * GiB)


def test_a_cluster_address_where_nothing_answers_stops_the_service_at_start(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    sock = tmp_path / "box.sock"
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([sys.executable, "-m", "xgen_jupyter.boxd", "--socket", str(sock), "--state-dir",
                        str(tmp_path / "state"), "--cluster", f"127.0.0.1:{port}"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert r.returncode != 0 and f"nothing answers at the Ray cluster address '127.0.0.1:{port}'" in r.stderr, r
    assert "Traceback" not in r.stderr and not sock.exists()
