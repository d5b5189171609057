"""A real `jupyter server` subprocess with the xgen extension, one per user identity."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterProc:
    def __init__(self, root: Path, user: str, xgen: dict[str, Any], env: dict[str, str] | None = None) -> None:
        self.root = root / f"jupyter-{user}"
        self.user, self.port, self.token = user, free_port(), secrets.token_hex(16)
        cfg = self.root / "config"
        cfg.mkdir(parents=True, exist_ok=True)
        (cfg / "jupyter_server_config.json").write_text(json.dumps({
            "ServerApp": {"jpserver_extensions": {"xgen_jupyter": True}, "ip": "127.0.0.1", "port": self.port,
                          "port_retries": 0, "open_browser": False, "allow_root": True,
                          "root_dir": str(self.root)},
            "IdentityProvider": {"token": self.token},
            "XGen": {"state_dir": str(self.root / "state"), **xgen},
        }))
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "XGEN_USER": user, "JUPYTER_CONFIG_DIR": str(cfg),
                    "JUPYTER_RUNTIME_DIR": str(self.root / "runtime"), "JUPYTER_DATA_DIR": str(self.root / "data"),
                    **(env or {})}
        #: The command and its environment (a subclass runs it as another Unix user).
        self.argv: list[str] = [sys.executable, "-m", "jupyter", "server"]
        self.popen_env: dict[str, str] = self.env
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"token {self.token}"}

    def start(self, timeout: float = 60.0) -> JupyterProc:
        log = open(self.root / "jupyter.log", "ab")  # noqa: SIM115 - kept open for the child's life
        self.proc = subprocess.Popen(self.argv, env=self.popen_env, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited: {self.log_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/api/status", headers=self.headers, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"jupyter server not up after {timeout} s: {self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return (self.root / "jupyter.log").read_text(errors="replace")

    def client(self, timeout: float = 120.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers=self.headers, timeout=timeout, trust_env=False)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.base}/xgen/api/{path}", headers=self.headers, timeout=120,
                             trust_env=False, **kw)

    def wait_state(self, name: str, states: set[str], timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            r = self.api("GET", f"servers/{name}")
            if r.status_code == 200 and r.json()["state"] in states:
                return r.json()  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: {r.status_code} {r.text[:500]}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Jupyter asks to confirm on the first ^C without a tty...
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.kill()
