"""The box service on a real two-node Ray cluster (``xgen box --cluster``), used by real Unix users.

The cluster is the one of tests/core/cluster/test_ray_cluster.py (``ray start`` twice on loopback,
each node with its own simulated GPU through XGEN_HARDWARE_REPORT); the engines are real CPU
engines (llama-cpp-python, the default model). The service runs as root, alice and bob talk to its
socket through runuser.

Where each load must land, from the memory fit alone (N: the model's footprint at CTX with every
layer on a CUDA GPU; each node's free memory leaves room after the planner's margin):
  node A (head): 1.5 N free -> alice's first load goes there (the most headroom);
  node B:        1.2 N free -> bob's load then goes there, though it is his first: the service's
  one ledger holds alice's N on A (-0.5 N left), so only B still fits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import pid_alive
from tests.core.cluster.raynodes import HEAD_IP, NODE_IP, TwoNodeCluster
from xgen_jupyter.boxd.client import BoxClient
from xgen_jupyter.notebook.render import hardware_text

from .box_books import entries
from .box_harness import as_user, world_dir
from .box_jupyter import UserJupyter
from .test_box_users import wait_ready

pytest.importorskip("ray")
pytestmark = [pytest.mark.engine, pytest.mark.timeout(480)]

GiB = 1024**3
CTX = 512
IDLE_TTL = 15  # bob's b1: long enough for his quota checks below


def _footprint(model: str) -> int:
    from xgen_jupyter.core.models.inspect import inspect_model
    from xgen_jupyter.core.planning import memory

    return memory.estimate(inspect_model(model), n_ctx=CTX, n_gpu_layers=-1, device="cuda").gpu_total


def _gpu(path: Path, name: str, total: int, budget: int) -> str:
    from xgen_jupyter.core.planning.margin import Margin

    free = budget + Margin.of().for_bytes(budget)  # ``budget`` left for plans after the margin
    path.write_text(json.dumps({"gpus": [{"index": 0, "name": name, "vendor": "nvidia", "memory_total": total,
                                          "memory_free": free, "compute_capability": "8.9"}]}))
    return str(path)


@pytest.fixture
def ray_cluster(shared_models: Path) -> Iterator[TwoNodeCluster]:
    root = world_dir("xgen-svc-ray-")
    n = _footprint(str(shared_models / "gemma.gguf"))
    env_a = {"XGEN_HARDWARE_REPORT": _gpu(root / "a.json", "Sim A 24GB", 24 * GiB, int(1.5 * n)),
             "XGEN_STATE_DIR": str(root / "state-a")}
    env_b = {"XGEN_HARDWARE_REPORT": _gpu(root / "b.json", "Sim B 8GB", 8 * GiB, int(1.2 * n)),
             "XGEN_STATE_DIR": str(root / "state-b")}
    cluster = TwoNodeCluster(root, env_a, env_b)
    try:
        yield cluster
    finally:
        seen = cluster.pids()
        cluster.stop()
        time.sleep(0.5)
        left = [p for p in seen if pid_alive(p)]
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cluster.temp, ignore_errors=True)  # Ray's session folder of this cluster
        assert not left, f"Ray processes left after teardown: {left}"


def agents(cluster: TwoNodeCluster) -> list[int]:
    """Pids of xgen's node agents (Ray names an actor's worker process ``ray::NodeAgent...``)."""
    cluster.pids()
    out = []
    for pid in cluster.head.seen | cluster.node_b.seen:
        try:
            if "NodeAgent" in " ".join(psutil.Process(pid).cmdline()):
                out.append(pid)
        except psutil.Error:
            pass
    return out


def bob_proxy(j: UserJupyter, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
    return httpx.post(f"{j.base}/xgen/v1/chat/completions", json=body, headers=j.headers, timeout=120,
                      trust_env=False)


def _touching(sock: Path, in_use: threading.Event) -> None:
    client = BoxClient(sock)
    while in_use.is_set():
        client.call("touch", name="b1", owner="bob")
        time.sleep(1)


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not pid_alive(pid)


def test_users_load_share_and_unload_on_ray_nodes_through_the_service(unix_users, box_factory, box_root,
                                                                        shared_models, ray_cluster):
    cluster = ray_cluster
    box = box_factory(quotas={"users": {"bob": {"max_servers": 1}}}, extra=["--cluster", cluster.address])
    sock, admin = box.socket, BoxClient(box.socket)
    # bob's own Jupyter server, a client of the service (it starts while the nodes come up).
    bob_jupyter = UserJupyter(box_root, "bob", {"shared_dir": str(box_root / "shared"),
                                                "model_dirs": [str(shared_models)]})
    starting = threading.Thread(target=bob_jupyter.start)
    starting.start()
    try:
        _scenario(cluster, box, sock, admin, bob_jupyter, starting, shared_models)
    finally:
        starting.join()
        bob_jupyter.stop()


def _scenario(cluster, box, sock, admin, bob_jupyter, starting, shared_models) -> None:
    load = {"model": str(shared_models / "gemma.gguf"), "n_threads": 1, "n_ctx": CTX}
    t0 = time.monotonic()

    # alice sees both nodes' GPUs, each tagged with its node (what `%xgen gpus` and the sidebar show).
    deadline = time.monotonic() + 120
    while True:
        cluster.check_alive()
        hw = as_user("alice", sock, "call", "hardware", {"refresh": True})
        if (hw["ok"] and len(hw["result"]["gpus"]) == 2) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert hw["ok"], hw
    assert {g["node"]: g["name"] for g in hw["result"]["gpus"]} == {HEAD_IP: "Sim A 24GB", NODE_IP: "Sim B 8GB"}

    # A file alice cannot read is refused by the service before any node is asked (the nodes run as root).
    secret = shared_models / "ray-secret.gguf"
    secret.write_bytes(b"GGUF" + b"\0" * 64)
    os.chmod(secret, 0o600)
    try:
        for op in ("load", "plan"):
            r = as_user("alice", sock, "call", op, {"request": {**load, "model": str(secret)}})
            assert not r["ok"] and r["error"] == "ModelError" and "alice cannot read" in r["message"], (op, r)
    finally:
        secret.unlink()

    # alice and bob load at the same instant (both users' node agents up first, so neither waits for
    # them): the one placing lock and ledger send them to different nodes, each placement seeing the
    # other's; alone, either would go to A. The placement is each plan's first reason.
    assert as_user("bob", sock, "call", "hardware", {})["ok"]
    results: dict[str, dict] = {}

    def go(user: str, name: str, extra: dict) -> None:
        results[user] = as_user(user, sock, "call", "load", {"request": {**load, "name": name, **extra}})

    loads = [threading.Thread(target=go, args=a) for a in (("alice", "chat", {}), ("bob", "b1", {"idle_ttl": IDLE_TTL}))]
    for t in loads:
        t.start()
    for t in loads:
        t.join()
    assert results["alice"]["ok"] and results["bob"]["ok"], results
    in_use = threading.Event()  # bob uses b1 (touched as his proxy's requests touch it) until the idle check
    in_use.set()
    threading.Thread(target=_touching, args=(sock, in_use), daemon=True).start()
    placed = {u: r["result"]["node"]["address"] for u, r in results.items()}
    why = {u: r["result"]["plan"]["reasons"][0] for u, r in results.items()}
    assert sorted(placed.values()) == [HEAD_IP, NODE_IP], why
    assert all(w["rule"] == "cluster-placement" for w in why.values()) and results["alice"]["result"]["owner"] == "alice"
    a_ip, b_ip = placed["alice"], placed["bob"]
    chat = wait_ready(sock, "alice", "chat")
    assert chat["endpoint"].startswith(f"http://{a_ip}:") and pid_alive(chat["pid"])

    # His quota (1 server) holds for remote engines too, on the socket and through his Jupyter server
    # (which says XGEN_USER=mallory); nothing is started for the refused loads.
    r2 = as_user("bob", sock, "call", "load", {"request": {**load, "name": "b2"}})
    assert not r2["ok"] and r2["error"] == "QuotaExceeded" and "bob may run 1 server(s)" in r2["message"], r2
    starting.join()
    r3 = bob_jupyter.api("POST", "servers", json={**load, "name": "b3"})
    assert r3.status_code == 409 and "bob may run 1 server(s)" in r3.text, r3.text[:2000]

    # The box view, as bob: alice's server with its node's device, no key, endpoint or path of hers.
    view = {(e["owner"], e["name"]): e for e in as_user("bob", sock, "call", "box", {})["result"]}
    mine = view[("alice", "chat")]
    gpu_name = {HEAD_IP: "Sim A 24GB", NODE_IP: "Sim B 8GB"}
    assert [d["label"] for d in mine["devices"]] == [f"node {a_ip} GPU 0 ({gpu_name[a_ip]})"] and mine["gpu_bytes"] > 0
    assert mine["model"] == "gemma.gguf" and not {"endpoint", "api_key", "pid", "port"} & set(mine), mine
    assert view[("bob", "b1")]["devices"][0]["label"] == f"node {b_ip} GPU 0 ({gpu_name[b_ip]})"

    # bob may not stop, read the log of, or use alice's remote server before she shares it.
    for op in ("unload", "logs", "get"):
        r = as_user("bob", sock, "call", op, {"name": "chat", "owner": "alice"})
        assert not r["ok"] and r["status"] == 403 and "bob may not act on alice's servers" in r["message"], (op, r)
    r = as_user("bob", sock, "call", "route", {"model": "alice/chat"})
    assert not r["ok"] and r["status"] == 404 and "has not shared" in r["message"], r
    assert as_user("bob", sock, "chat", chat["endpoint"], "")["status"] == 401  # the node's engine wants its key

    # Shared: bob's route (what his proxy asks for every request) reaches the engine on node A.
    assert bob_proxy(bob_jupyter, "alice/chat").status_code == 404  # his proxy too, before the share
    assert as_user("alice", sock, "call", "share", {"name": "chat", "users": ["bob"]})["ok"]
    route = as_user("bob", sock, "call", "route", {"model": "alice/chat"})["result"]
    assert route["endpoint"] == chat["endpoint"]
    reply = as_user("bob", sock, "chat", route["endpoint"], route["api_key"])
    assert reply["ok"] and reply["body"]["choices"], reply
    r = bob_proxy(bob_jupyter, "alice/chat")  # his Jupyter proxy (it asks the service) to the engine on node A
    assert r.status_code == 200 and r.json()["choices"], r.text[:2000]
    assert not as_user("bob", sock, "call", "unload", {"name": "chat", "owner": "alice"})["ok"]  # use, not control
    # `%xgen gpus` in bob's notebook: the nodes' GPUs, grouped by node, and where models run.
    hw = httpx.get(f"{bob_jupyter.base}/xgen/api/hardware", headers=bob_jupyter.headers, timeout=60, trust_env=False)
    text = hardware_text(hw.json())
    assert f"Node {HEAD_IP}:" in text and f"Node {NODE_IP}:" in text and "Sim B 8GB" in text, text
    assert f"models run: box service at {sock}, user bob" in text, text
    assert as_user("alice", sock, "call", "share", {"name": "chat", "users": []})["ok"]
    r = as_user("bob", sock, "call", "route", {"model": "alice/chat"})
    assert not r["ok"] and "has not shared" in r["message"], r
    r = bob_proxy(bob_jupyter, "alice/chat")
    assert r.status_code == 404 and "has not shared" in r.text, r.text[:2000]

    # Used past its idle_ttl, b1 stays: idle unload is the service's call (it sees the traffic), never
    # the node's. Then, unused, the service's janitor stops it through the node's agent within its
    # idle_ttl + the janitor's interval + the grace period, plus a margin for the load on this box.
    b1 = wait_ready(sock, "bob", "b1")
    time.sleep(max(0.0, b1["ready_at"] + IDLE_TTL + 3 - time.time()))
    assert (s := admin.call("get", name="b1", owner="bob"))["state"] == "ready", (s["state"], s["stop_reason"])
    in_use.clear()
    deadline = time.monotonic() + 1 + IDLE_TTL + 0.5 + 3 + 20
    while (s := admin.call("get", name="b1", owner="bob"))["state"] != "stopped":
        assert time.monotonic() < deadline, (s["state"], s["node"], [ln["text"] for ln in admin.call(
            "logs", name="b1", owner="bob", tail=30)], box.log_text()[-3000:])
        time.sleep(0.3)
    assert s["stop_reason"].startswith("idle: unused for") and gone(b1["pid"], 15), s

    # alice's unload stops her engine on node A; her entry goes from the books.
    r = as_user("alice", sock, "call", "unload", {"name": "chat"})
    assert r["ok"] and r["result"]["state"] == "stopped", r
    assert gone(chat["pid"], 15) and entries(box.state) == []

    # restart: on-crash holds for a remote engine (its node's core restarts it); the books keep it.
    assert as_user("alice", sock, "call", "load", {"request": {**load, "name": "again", "restart": "on-crash"}})["ok"]
    first = wait_ready(sock, "alice", "again")
    assert first["node"]["address"] == HEAD_IP  # A is free again: the ledger let go of "chat"
    os.killpg(first["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 90
    while not ((again := admin.call("get", name="again", owner="alice"))["state"] == "ready"
               and again["pid"] != first["pid"]):
        assert time.monotonic() < deadline, again
        time.sleep(0.3)
    assert again["restart"]["restarts"] == 1 and pid_alive(again["pid"]), again
    assert [(e[0], e[1], e[2]) for e in entries(box.state)] == [("alice", "again", "ready")]
    status = as_user("carol", sock, "status")["text"]  # `xgen box --status`: where it runs
    assert "alice/again" in status and f"on node {HEAD_IP} GPU 0" in status, status

    # The service SIGKILLed with an engine on a node: Ray ends the dead driver's agents, and with
    # them the engine (stopped, not re-adopted); the restarted service starts from clean books.
    assert agents(cluster), "no NodeAgent process found under the cluster's processes"
    box.kill()
    t_kill = time.monotonic()
    assert gone(again["pid"], 60), "the engine outlived the service"
    t_engine = time.monotonic() - t_kill
    deadline = time.monotonic() + 60
    while (left := agents(cluster)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"node agents left after the service died: {left}"
    t_agents = time.monotonic() - t_kill
    box.start()
    assert entries(box.state) == [] and "reclaimed" in box.log_text()
    r = as_user("alice", sock, "call", "servers", {})
    assert r["ok"] and r["result"] == [], r

    # The restarted service places again; stopped as systemd stops it (SIGTERM), it unloads its
    # remote engines and its agents end.
    assert as_user("alice", sock, "call", "load", {"request": {**load, "name": "last"}})["ok"]
    last = wait_ready(sock, "alice", "last")
    assert last["node"]["address"] == HEAD_IP and agents(cluster)
    box.stop()
    assert box.proc is not None and box.proc.returncode == 0, box.log_text()[-3000:]
    assert gone(last["pid"], 15) and entries(box.state) == []
    deadline = time.monotonic() + 30
    while (left := agents(cluster)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"node agents left after the service stopped: {left}"
    print(f"\nray + box service: {time.monotonic() - t0:.1f} s; after the service's SIGKILL the engine was gone in "
          f"{t_engine:.1f} s, the node agents in {t_agents:.1f} s")
