"""A throwaway two-node Ray cluster on this machine, for tests: started with `ray start --block`,
each node a session of its own, torn down by the pids we started (never `ray stop`, which would
stop every Ray on the machine).

Loopback only. Ray rewrites 127.0.0.1 / localhost to the machine's outward address, so the nodes
take other loopback addresses that it leaves alone: the head 127.0.0.2, the second node 127.0.0.3.
(Ray's own gRPC servers still listen on all interfaces; nothing is addressed outside loopback.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"
RAY = str(Path(sys.executable).with_name("ray"))
# Notice a dead node within a few seconds (Ray's default is ~30 s).
FAST_HEALTH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
               "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "1000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RayNode:
    """One `ray start --block` and every process under it."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen([RAY, "start", *argv, "--block"], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.seen: set[int] = {self.proc.pid}

    def tree(self) -> list[psutil.Process]:
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            kids = []
        self.seen.update(k.pid for k in kids)
        return kids

    def kill(self) -> None:
        """SIGKILL the node's processes (the node dies as a machine would), then reap the leader."""
        kids = self.tree()
        for p in kids:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(kids, timeout=10)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


class TwoNodeCluster:
    def __init__(self, root: Path, env_a: dict[str, str], env_b: dict[str, str]) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"{HEAD_IP}:{self.port}"
        temp = Path(f"/tmp/xgr-{os.getpid()}-{self.port}")  # short: Ray's socket paths must fit 107 bytes
        self.temp = temp
        common = ["--num-cpus=1", "--disable-usage-stats", "--object-store-memory=80000000", f"--temp-dir={temp}"]
        base = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(Path(__file__).parents[3])}
        base.pop("XGEN_HARDWARE_REPORT", None)
        self.head = RayNode(["--head", f"--node-ip-address={HEAD_IP}", f"--port={self.port}",
                             "--include-dashboard=false", f"--dashboard-port={free_port()}",
                             f"--dashboard-agent-listen-port={free_port()}", '--resources={"xgen_node_a": 1}',
                             *common], {**base, **FAST_HEALTH, **env_a}, root / "ray-head.log")
        try:
            self._wait_port(HEAD_IP, self.port, 90)
        except BaseException:
            self.head.kill()
            raise
        self.node_b = RayNode([f"--address={self.address}", f"--node-ip-address={NODE_IP}",
                               f"--dashboard-agent-listen-port={free_port()}", '--resources={"xgen_node_b": 1}',
                               *common], {**base, **env_b}, root / "ray-node-b.log")

    def _wait_port(self, host: str, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.head.proc.poll() is not None:
                raise RuntimeError(f"ray head exited: {self.head.log.read_text()[-3000:]}")
            try:
                socket.create_connection((host, port), 1).close()
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"ray head not listening after {timeout} s")

    def check_alive(self) -> None:
        for node in (self.head, self.node_b):
            if node.proc.poll() is not None:
                raise RuntimeError(f"a ray node exited: {node.log.read_text()[-3000:]}")

    def check_head_alive(self) -> None:
        if self.head.proc.poll() is not None:
            raise RuntimeError(f"the ray head exited: {self.head.log.read_text()[-3000:]}")

    def pids(self) -> set[int]:
        for node in (self.head, self.node_b):
            node.tree()
        return self.head.seen | self.node_b.seen

    def stop(self) -> None:
        self.node_b.kill()
        self.head.kill()
