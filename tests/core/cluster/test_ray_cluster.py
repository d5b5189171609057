"""Scale-out on a real two-node Ray cluster on this machine, through a real Jupyter server.

Two nodes started with `ray start` (a head and a second node), each given its own simulated GPU
through XGEN_HARDWARE_REPORT in the environment of its `ray start` (the raylet passes it to the
node's workers, so the xgen agent on each node detects its own node's GPU). The engines are real
CPU engines (llama-cpp-python, the default model): no GPU engine is installed here.

Which node each model must land on, and why (the prediction, from the memory fit alone):
N = memory.estimate(default model, -c 2048, all layers on a CUDA GPU).gpu_total, the model's GPU
footprint. The planner keeps a margin free beside each plan: 64 MiB + 1% of the plan (margin.py).
  node A (head, 24 GiB GPU): free = 1.5 N + its margin  -> headroom 0.5 N for one model
  node B (8 GiB GPU):        free = 1.2 N + its margin  -> headroom 0.2 N
The first model goes to A (more headroom). Once it is placed, A's ledger holds N, so A has
-0.5 N left: the second model no longer fits there and goes to B (0.2 N).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import REPO, pid_alive
from tests.core.cluster.raynodes import HEAD_IP, NODE_IP, TwoNodeCluster, free_port

pytest.importorskip("ray")
pytestmark = [pytest.mark.engine, pytest.mark.timeout(240)]

GiB = 1024**3
CTX = 2048


def with_margin(budget: int) -> int:
    """Free memory that leaves ``budget`` for plans after the planner's margin."""
    from xgen_jupyter.core.planning.margin import Margin

    return budget + Margin.of().for_bytes(budget)


@pytest.fixture(scope="module")
def footprint() -> int:
    from xgen_jupyter.core.models.inspect import inspect_model
    from xgen_jupyter.core.models.resolve import resolve_model
    from xgen_jupyter.core.planning import memory

    facts = inspect_model(resolve_model("default", []))
    return memory.estimate(facts, n_ctx=CTX, n_gpu_layers=-1, device="cuda").gpu_total


def gpu_report(path: Path, name: str, total: int, free: int) -> str:
    path.write_text(json.dumps({"gpus": [{"index": 0, "name": name, "vendor": "nvidia", "memory_total": total,
                                          "memory_free": free, "compute_capability": "8.9"}]}))
    return str(path)


class Jupyter:
    """A real `jupyter server` with the xgen extension and c.XGen.cluster set."""

    def __init__(self, root: Path, cluster: str) -> None:
        self.port, self.token = free_port(), secrets.token_hex(16)
        cfg = root / "jupyter-config"
        cfg.mkdir()
        (cfg / "jupyter_server_config.json").write_text(json.dumps({
            "ServerApp": {"jpserver_extensions": {"xgen_jupyter": True}, "ip": "127.0.0.1", "port": self.port,
                          "port_retries": 0, "open_browser": False, "allow_root": True, "root_dir": str(root)},
            "IdentityProvider": {"token": self.token},
            "XGen": {"cluster": cluster, "state_dir": str(root / "jupyter-state"), "shared_dir": "",
                     "ready_timeout": 120.0, "grace_period": 3.0},
        }))
        env = {**os.environ, "PYTHONPATH": str(REPO), "JUPYTER_CONFIG_DIR": str(cfg), "RAY_USAGE_STATS_ENABLED": "0",
               "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "JUPYTER_DATA_DIR": str(root / "data")}
        env.pop("XGEN_HARDWARE_REPORT", None)
        self.log = root / "jupyter.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "jupyter", "server"], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, cwd=root)
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.base, headers={"Authorization": f"token {self.token}"},
                                 timeout=120, trust_env=False)

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if self.http.get("/api/status", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(self.log.read_text()[-3000:])

    def api(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, f"/xgen/api/{path}", **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:2000]}"
        return r.json()

    def wait_state(self, name: str, states: set[str], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            server = self.api("GET", f"servers/{name}")
            if server["state"] in states:
                return server  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} still {server['state']}: {json.dumps(server)[:2000]}\n"
                                   f"{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def chat(self, name: str) -> dict[str, Any]:
        r = self.http.post("/xgen/v1/chat/completions", json={
            "model": name, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8,
            "temperature": 0})
        assert r.status_code == 200, r.text[:2000]
        return r.json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            # SIGINT: Jupyter stops the extension (agents unload their engines). Not SIGTERM: a Ray driver's
            # failure-signal handler turns that into a crash dump before Jupyter can clean up.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, footprint: int) -> Iterator[tuple[TwoNodeCluster, Jupyter]]:
    root = tmp_path_factory.mktemp("ray")
    a_total, b_total = 24 * GiB, 8 * GiB
    env_a = {"XGEN_HARDWARE_REPORT": gpu_report(root / "node-a.json", "Sim A 24GB", a_total,
                                                 with_margin(int(1.5 * footprint))),
             "XGEN_STATE_DIR": str(root / "state-a")}
    env_b = {"XGEN_HARDWARE_REPORT": gpu_report(root / "node-b.json", "Sim B 8GB", b_total,
                                                 with_margin(int(1.2 * footprint))),
             "XGEN_STATE_DIR": str(root / "state-b")}
    cluster = TwoNodeCluster(root, env_a, env_b)
    jupyter: Jupyter | None = None
    try:
        jupyter = Jupyter(root, cluster.address)
        jupyter.wait_up()
        yield cluster, jupyter
    finally:
        seen = cluster.pids()
        try:
            if jupyter is not None:
                try:
                    seen.update(p.pid for p in psutil.Process(jupyter.proc.pid).children(recursive=True))
                except psutil.NoSuchProcess:
                    pass
                jupyter.stop()
        finally:
            cluster.stop()  # whatever happened above: no Ray process of ours outlives the test
        time.sleep(0.5)
        left = [p for p in seen if pid_alive(p)]
        assert not left, f"processes left after teardown: {left}"


def test_two_nodes_place_chat_log_and_lose_a_node(setup: tuple[TwoNodeCluster, Jupyter], footprint: int) -> None:
    cluster, jupyter = setup
    t0 = time.monotonic()
    # Both nodes' GPUs, detected on their own node, grouped by node.
    deadline = time.monotonic() + 120
    while True:
        cluster.check_alive()
        r = jupyter.http.get("/xgen/api/hardware", params={"refresh": "1"})  # 400 until a node agent answers
        hw = r.json()
        if (r.status_code == 200 and len(hw["gpus"]) == 2) or time.monotonic() > deadline:
            break
        time.sleep(1)
    by_node = {g["node"]: g for g in hw["gpus"]}
    assert hw["method"] == "cluster" and set(by_node) == {HEAD_IP, NODE_IP}, hw
    assert by_node[HEAD_IP]["name"] == "Sim A 24GB" and by_node[NODE_IP]["name"] == "Sim B 8GB"
    t_nodes = time.monotonic() - t0

    # Two loads, back to back: placement runs one at a time, so the second sees the first's footprint.
    body = {"model": "default", "n_ctx": CTX, "backend": "llama-cpp-python"}
    first = jupyter.api("POST", "servers", json={**body, "name": "alpha"})
    second = jupyter.api("POST", "servers", json={**body, "name": "beta"})
    assert first["node"]["address"] == HEAD_IP, first["plan"]["reasons"][0]
    assert second["node"]["address"] == NODE_IP, second["plan"]["reasons"][0]
    why = first["plan"]["reasons"][0]
    assert why["rule"] == "cluster-placement" and "Sim A 24GB" in why["effect"], why
    assert f"{footprint / GiB:.2f} GiB" in why["why"], why  # the fit's footprint is what placement used
    alpha = jupyter.wait_state("alpha", {"ready", "failed", "crashed"}, 120)
    beta = jupyter.wait_state("beta", {"ready", "failed", "crashed"}, 120)
    assert alpha["state"] == beta["state"] == "ready", (alpha["error"], beta["error"])
    # Each engine bound to its own node's address.
    assert alpha["endpoint"].startswith(f"http://{HEAD_IP}:") and beta["endpoint"].startswith(f"http://{NODE_IP}:")
    t_ready = time.monotonic() - t0

    # A chat through the Jupyter proxy to each.
    for name in ("alpha", "beta"):
        reply = jupyter.chat(name)
        assert reply["choices"] and reply["choices"][0]["message"]["role"] == "assistant", reply

    # Logs from each: the placement line written here, and the engine's own lines mirrored from its node.
    for name, ip in (("alpha", HEAD_IP), ("beta", NODE_IP)):
        deadline = time.monotonic() + 10  # lines come over with the next poll of the node (every 0.5 s)
        while True:
            lines = [ln["text"] for ln in jupyter.api("GET", f"servers/{name}/logs", params={"tail": "2000"})["lines"]]
            if any("/v1/chat/completions" in t for t in lines) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert any(f"placed on node {ip}" in t for t in lines), lines[:5]
        assert any("llama" in t.lower() and not t.startswith("[xgen]") for t in lines), lines[-20:]
        assert any("/v1/chat/completions" in t for t in lines), lines[-20:]  # the engine logged our chat

    # The second node dies (every process of its `ray start`, killed): its server turns crashed, with the reason.
    beta_pid = beta["pid"]
    cluster.node_b.kill()
    crashed = jupyter.wait_state("beta", {"crashed", "stopped", "failed"}, 60)
    assert crashed["state"] == "crashed", crashed
    assert NODE_IP in crashed["error"]["summary"] and crashed["stop_reason"].startswith("crashed:"), crashed["error"]
    assert not pid_alive(beta_pid)
    t_crash = time.monotonic() - t0

    # Node A is unaffected; unloading stops its engine through its agent.
    assert jupyter.api("GET", "servers/alpha")["state"] == "ready"
    jupyter.chat("alpha")
    stopped = jupyter.api("DELETE", "servers/alpha")
    assert stopped["state"] == "stopped"
    deadline = time.monotonic() + 15
    while pid_alive(alpha["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(alpha["pid"])

    # Engines do not outlive the Jupyter server that loaded them: stopping it stops gamma on node A
    # (the Ray cluster stays up: the agent, not the node's end, stopped it).
    jupyter.api("POST", "servers", json={**body, "name": "gamma"})
    gamma = jupyter.wait_state("gamma", {"ready", "failed", "crashed"}, 120)
    assert gamma["state"] == "ready" and gamma["node"]["address"] == HEAD_IP, gamma["error"]
    jupyter.stop()
    assert jupyter.proc.returncode is not None
    deadline = time.monotonic() + 20
    while pid_alive(gamma["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(gamma["pid"])
    cluster.check_head_alive()
    print(f"\nnodes seen {t_nodes:.1f} s, both ready {t_ready:.1f} s, crash seen {t_crash:.1f} s, "
          f"total {time.monotonic() - t0:.1f} s")
