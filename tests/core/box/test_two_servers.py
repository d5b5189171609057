"""Two users' real Jupyter servers on one simulated 24 GB box, sharing one registry folder.

Engines are real (llama-cpp-python on the default model, on the CPU). Each load reserves what
its plan says it will use: llama-cpp-python is a CPU engine, so its plan has no GPU bytes and
reserves host RAM, which the injected report sets to 4 GiB, so 40 loads compete for room for
about four engines. GPU-byte reservations under the same race are in test_registry.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import pid_alive

from .conftest import GiB
from .jupyter_proc import JupyterProc

pytestmark = pytest.mark.engine
HOST_USABLE = 4 * GiB - 512 * 1024**2


def xgen_config(shared_dir: Path, model_dir: Path) -> dict:
    return {"shared_dir": str(shared_dir), "allowed_backends": ["llama-cpp-python"], "model_dirs": [str(model_dir)],
            "ready_timeout": 120.0, "grace_period": 3.0, "janitor_interval": 0.5}


def host_sum(shared_dir: Path) -> int:
    con = sqlite3.connect(shared_dir / "registry.db", timeout=30)
    try:
        return int(con.execute("SELECT coalesce(sum(bytes),0) FROM reservations WHERE device='host'").fetchone()[0])
    finally:
        con.close()


@pytest.fixture
def pair(tmp_path, shared_dir, sim_report):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    env = {"XGEN_HARDWARE_REPORT": str(sim_report)}
    procs = [JupyterProc(tmp_path, u, xgen_config(shared_dir, model_dir), env) for u in ("alice", "bob")]
    threads = [threading.Thread(target=p.start) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    yield procs
    for p in procs:
        p.stop()


async def fire(j: JupyterProc, n: int) -> list[httpx.Response]:
    async with j.client() as c:
        return list(await asyncio.gather(*(
            c.post("/xgen/api/servers", json={"model": "default", "name": f"{j.user}-{i}", "n_threads": 1})
            for i in range(n))))


async def test_two_users_forty_concurrent_loads_never_oversubscribe(pair, shared_dir):
    alice, bob = pair
    peak, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], host_sum(shared_dir))
            except sqlite3.Error:
                pass
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        ra, rb = await asyncio.gather(fire(alice, 20), fire(bob, 20))
        admitted = {j.user: [r.json()["name"] for r in rs if r.status_code == 202] for j, rs in ((alice, ra), (bob, rb))}
        refused = [r.json() for r in ra + rb if r.status_code != 202]
        for j in pair:
            for name in admitted[j.user]:
                assert j.wait_state(name, {"ready", "failed"})["state"] == "ready"
    finally:
        stop.set()
        watcher.join()
    n_ok = sum(len(v) for v in admitted.values())
    print(f"admitted {admitted}, refused {len(refused)}, peak host reservation {peak[0] / GiB:.2f} GiB "
          f"of {HOST_USABLE / GiB:.2f} GiB")
    assert 1 <= n_ok < 40 and len(refused) == 40 - n_ok
    assert all(r["error"] == "CapacityRefused" and "host RAM" in r["message"] and "Reserved:" in r["message"]
               for r in refused), refused[:3]
    assert peak[0] <= HOST_USABLE and host_sum(shared_dir) <= HOST_USABLE

    # Everyone's servers, from either side: owner, model, memory, state; never keys or logs.
    box = alice.api("GET", "servers", params={"scope": "box"}).json()["servers"]
    assert sorted(s["name"] for s in box) == sorted(n for v in admitted.values() for n in v)
    assert {s["owner"] for s in box} == {u for u, v in admitted.items() if v}
    text = str(box).lower()
    assert "api_key" not in text and "log" not in text and all(s["host_bytes"] > 0 for s in box)

    # The race may have gone all one way: make room so that both users hold a server.
    for j, other in ((alice, bob), (bob, alice)):
        if not admitted[j.user]:
            victim = admitted[other.user].pop()
            assert other.api("DELETE", f"servers/{victim}").status_code == 200
            r = j.api("POST", "servers", json={"model": "default", "name": f"{j.user}-late", "n_threads": 1})
            assert r.status_code == 202, r.text
            admitted[j.user].append(f"{j.user}-late")
            assert j.wait_state(f"{j.user}-late", {"ready", "failed"})["state"] == "ready"

    # Sharing: alice shares one server with bob, who reaches it through his own proxy.
    name = admitted["alice"][0]
    body = {"model": f"alice/{name}", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
    r = httpx.post(f"{bob.base}/xgen/v1/chat/completions", json=body, headers=bob.headers, timeout=120)
    assert r.status_code == 404 and "has not shared" in r.json()["error"]["message"]  # not yet shared
    r = alice.api("POST", f"servers/{name}/share", json={"users": ["bob"]})
    assert r.status_code == 200 and r.json()["shared_with"] == ["bob"], r.text
    key_files = list((shared_dir / "keys").glob("alice-*.key"))
    # 0600, plus a POSIX ACL for bob where bob is a real Unix user (tests/boxd creates one): the
    # group bits then show the ACL's mask (0640). Nobody else may read it either way.
    mode = key_files[0].stat().st_mode & 0o777
    assert len(key_files) == 1 and mode & 0o707 == 0o600 and mode & 0o070 in (0, 0o040), oct(mode)
    r = httpx.post(f"{bob.base}/xgen/v1/chat/completions", json=body, headers=bob.headers, timeout=120)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"], r.text
    r = httpx.post(f"{alice.base}/xgen/v1/chat/completions", json={**body, "model": "bob/anything"},
                   headers=alice.headers, timeout=30)
    assert r.status_code == 404 and "has not shared" in r.json()["error"]["message"]

    # Alice's Jupyter server is SIGKILLed: her engines die with it, bob's janitor reclaims her entries.
    pids = [alice.wait_state(n, {"ready"})["pid"] for n in admitted["alice"]]
    alice.kill()
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        box = bob.api("GET", "servers", params={"scope": "box"}).json()["servers"]
        if all(s["owner"] == "bob" for s in box):
            break
        time.sleep(0.2)
    assert all(s["owner"] == "bob" for s in box)

    for name in admitted["bob"]:
        assert bob.api("DELETE", f"servers/{name}").json()["stop_reason"] == "unloaded on request"
    assert host_sum(shared_dir) == 0, "nothing is left reserved afterwards"
