"""The box registry on its own: atomic reservations across processes, refusals, quotas,
dead owners, corrupted files, permissions. No engines (see test_two_servers.py for those)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from xgen_jupyter.core.box.devices import HOST, Claim
from xgen_jupyter.core.box.registry import BoxRegistry
from xgen_jupyter.core.errors import CapacityRefused, QuotaExceeded

from .conftest import GiB


def claim(nbytes: int, total: int = 24 * GiB, used: int = 0, device: str = "gpu:sim") -> Claim:
    return Claim(device, "GPU 0 (Sim)", "gpu", nbytes, total, used, 512 * 1024**2)


def db_sum(shared: Path, device: str) -> int:
    con = sqlite3.connect(shared / "registry.db", timeout=30)
    try:
        return int(con.execute("SELECT coalesce(sum(bytes),0) FROM reservations WHERE device=?", (device,)).fetchone()[0])
    finally:
        con.close()


def test_folder_and_file_are_writable_by_every_user(shared_dir):
    BoxRegistry(shared_dir, user="alice")
    assert stat.S_IMODE(shared_dir.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared_dir / "registry.db").stat().st_mode) == 0o666
    con = sqlite3.connect(shared_dir / "registry.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_refusal_names_who_holds_what(shared_dir):
    a = BoxRegistry(shared_dir, user="alice")
    a.reserve("big", "m.gguf", "llama-server-cuda", [claim(20 * GiB)])
    a.update("big", "ready", None, None)
    with pytest.raises(CapacityRefused) as e:
        a.reserve("more", "m.gguf", "llama-server-cuda", [claim(4 * GiB)])
    msg = str(e.value)
    assert "needs 4.00 GiB" in msg and "alice/big 20.00 GiB (ready)" in msg and "GPU 0 (Sim)" in msg
    assert e.value.status == 409
    # Memory used outside xgen counts too: 3 GiB used by someone else's notebook.
    a.release("big")
    with pytest.raises(CapacityRefused, match=r"used outside xgen: 3\.00 GiB"):
        a.reserve("x", "m", "b", [claim(21 * GiB, used=3 * GiB)])
    a.reserve("x", "m", "b", [claim(20 * GiB, used=3 * GiB)])
    assert db_sum(shared_dir, "gpu:sim") == 20 * GiB


def test_two_processes_twenty_concurrent_gpu_plans_each_never_exceed_free(shared_dir, sim_report, tmp_path):
    """Two users' cores (two OS processes) plan and admit 20 loads each at once on the simulated
    24 GB GPU. Every plan puts all layers on the GPU (n_gpu_layers=99), so admission must refuse."""
    hold = tmp_path / "hold"
    hold.write_text("")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.core.box.reserve_worker", str(shared_dir), str(sim_report), "20",
                          str(hold)], env={**env, "XGEN_USER": user}, stdout=subprocess.PIPE, text=True, cwd=REPO)
        for user in ("alice", "bob")
    ]
    peak = [0]
    stop = threading.Event()

    def watch() -> None:  # sample the sum of reservations while the loads race
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], db_sum(shared_dir, "gpu:GPU-sim-24gb"))
            except sqlite3.Error:
                pass
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    outs = [json.loads(p.stdout.readline()) for p in procs]  # type: ignore[union-attr]
    held = db_sum(shared_dir, "gpu:GPU-sim-24gb")
    listing = BoxRegistry(shared_dir, user="carol").listing()
    hold.unlink()
    for p in procs:
        assert p.wait(60) == 0
    stop.set()
    watcher.join()
    results = {k: v for o in outs for k, v in o["results"].items()}
    ok = [v for v in results.values() if v["ok"]]
    refused = [v for v in results.values() if not v["ok"]]
    usable = 24 * GiB - max(512 * 1024**2, int(24 * GiB * 0.05))
    assert len(results) == 40
    assert ok and refused, results
    assert sum(v["gpu"] for v in ok) == held <= usable
    assert peak[0] <= usable
    assert all(v["error"] == "CapacityRefused" and "Reserved:" in v["message"] for v in refused)
    assert {s["owner"] for s in listing} == {"alice", "bob"} or len({s["owner"] for s in listing}) == 1
    assert all("key" not in json.dumps(s).lower() for s in listing)
    assert db_sum(shared_dir, "gpu:GPU-sim-24gb") == 0, "nothing is left reserved afterwards"
    print(f"admitted {len(ok)}/40, {held / GiB:.2f} GiB of {usable / GiB:.2f} GiB usable; peak {peak[0] / GiB:.2f}")


def test_quotas_from_the_admin_file_and_config(shared_dir):
    shared_dir.mkdir(parents=True)
    (shared_dir / "quotas.json").write_text(json.dumps(
        {"default": {"max_servers": 2}, "users": {"bob": {"gpu_bytes": "5GiB"}}}))
    a = BoxRegistry(shared_dir, user="alice")
    a.reserve("a1", "m", "b", [claim(GiB)])
    a.reserve("a2", "m", "b", [claim(GiB)])
    with pytest.raises(QuotaExceeded, match=r"alice may run 2 server\(s\) on this box and has 2 \(a1, a2\)"):
        a.reserve("a3", "m", "b", [claim(GiB)])
    a.reserve("a2", "m", "b", [claim(2 * GiB)])  # re-reserving the same name is not a new server
    b = BoxRegistry(shared_dir, user="bob", quotas={"users": {"bob": {"max_servers": 5}}})
    b.reserve("b1", "m", "b", [claim(4 * GiB)])
    with pytest.raises(QuotaExceeded, match=r"bob.s GPU memory quota is 5\.00 GiB: 4\.00 GiB reserved"):
        b.reserve("b2", "m", "b", [claim(2 * GiB)])
    (shared_dir / "quotas.json").write_text("{not json")  # a broken quota file warns, blocks nobody
    b.reserve("b2", "m", "b", [claim(2 * GiB)])


_HOLDER = """
import sys, time
from pathlib import Path
from xgen_jupyter.core.box.registry import BoxRegistry
from xgen_jupyter.core.box.devices import Claim
r = BoxRegistry(Path(sys.argv[1]), user="dead")
r.reserve("ghost", "m", "b", [Claim("gpu:sim", "GPU 0", "gpu", 10 * 1024**3, 24 * 1024**3, 0, 512 * 1024**2)])
print("held", flush=True)
time.sleep(60)
"""


def test_entries_of_a_killed_owner_are_reclaimed_and_pid_reuse_is_seen(shared_dir, caplog):
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(shared_dir)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    other = BoxRegistry(shared_dir, user="alice")
    assert [s["name"] for s in other.listing()] == ["ghost"]  # alive: kept
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    with caplog.at_level(logging.WARNING, logger="xgen.box"):
        assert other.reclaim() == ["dead/ghost"]
    assert "reclaimed 1 registry entry" in caplog.text
    assert other.listing() == [] and db_sum(shared_dir, "gpu:sim") == 0
    # pid reuse: an entry whose pid is alive but started at another time is a dead owner's.
    con = sqlite3.connect(shared_dir / "registry.db")
    con.execute("INSERT INTO servers (host, owner, owner_pid, owner_started, name, model, backend, state, created_at,"
                " updated_at) VALUES (?, 'old', ?, 1.0, 'reused', 'm', 'b', 'ready', 0, 0)", (other.host, os.getpid()))
    con.commit()
    con.close()
    assert other.reclaim() == ["old/reused"]


def test_corrupted_registry_is_recreated_with_a_warning(shared_dir, caplog):
    a = BoxRegistry(shared_dir, user="alice")
    a.reserve("one", "m", "b", [claim(GiB)])
    db = shared_dir / "registry.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 300)
    with caplog.at_level(logging.WARNING, logger="xgen.box"):
        b = BoxRegistry(shared_dir, user="bob")  # at start-up
    assert "is corrupted" in caplog.text and "moved it to" in caplog.text
    assert list(shared_dir.glob("registry.db.corrupt-*"))
    b.reserve("two", "m", "b", [claim(GiB)])
    # Corrupted under a running registry: the next operation recovers and retries.
    db.write_bytes(b"\0garbage" * 1000)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xgen.box"):
        a.reserve("three", "m", "b", [claim(GiB)])
    assert "is corrupted" in caplog.text
    assert [s["name"] for s in a.listing()] == ["three"]


def test_unusable_shared_folder_is_a_clear_error(tmp_path):
    from xgen_jupyter.core.errors import XGenError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(XGenError, match="cannot use the shared folder"):
        BoxRegistry(blocker / "sub", user="alice")


def test_host_ram_is_reserved_for_cpu_engines(shared_dir):
    a = BoxRegistry(shared_dir, user="alice")
    host = Claim(HOST, "host RAM", "host", 3 * GiB, 4 * GiB, 0, 512 * 1024**2)
    a.reserve("cpu1", "m", "llama-cpp-python", [host])
    with pytest.raises(CapacityRefused, match=r"host RAM: this load needs 3\.00 GiB but only 0\.50 GiB"):
        a.reserve("cpu2", "m", "llama-cpp-python", [host])
