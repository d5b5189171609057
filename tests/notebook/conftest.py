"""A REAL Jupyter server with the xgen extension, in a subprocess (127.0.0.1, a free port, a token).

Kernels are started through it (so they are its children and find it by parent pid), and
nbclient/in-process tests reach it through XGEN_SERVER_URL/XGEN_TOKEN.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.core.box.jupyter_proc import JupyterProc

REPO = Path(__file__).resolve().parents[2]
DISCOVERY_VARS = ("XGEN_SERVER_URL", "XGEN_TOKEN", "JUPYTER_SERVER_URL", "JUPYTER_TOKEN")


@dataclass
class JupyterServer:
    url: str
    token: str
    pid: int
    env: dict[str, str]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DISCOVERY_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["JUPYTER_RUNTIME_DIR"] = str(base / "runtime")  # server info files: only ours are found
    env["JUPYTER_CONFIG_DIR"] = str(base / "config")  # no user config leaks in
    env["XGEN_STATE_DIR"] = str(base / "state")
    env["XGEN_SHARED_DIR"] = str(base / "shared")  # a registry of its own, not the box-wide /tmp/xgen-shared
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    base = tmp_path_factory.mktemp("jupyter")
    (base / "root").mkdir()
    port, token = free_port(), secrets.token_hex(16)
    env = server_env(base)
    log = base / "server.log"
    argv = [
        sys.executable, "-m", "jupyter_server",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", "--allow-root", "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={base / 'root'}", '--ServerApp.jpserver_extensions={"xgen_jupyter": True}',
        "--XGen.gpu_sample_interval=0.5",
    ]  # fmt: skip
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=base)
    url = f"http://127.0.0.1:{port}/"
    server = JupyterServer(url, token, proc.pid, env, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter server exited ({proc.returncode}):\n{server.log_text()[-3000:]}")
            try:
                r = httpx.get(
                    url + "xgen/api/models", headers={"Authorization": f"token {token}"}, trust_env=False
                )
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter server not up in 90 s:\n{server.log_text()[-3000:]}")
            time.sleep(0.3)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)  # the extension stops its engines on the way out
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def remote(jupyter_server: JupyterServer) -> Iterator[object]:
    """A RemoteClient in this test process, pointed at the real server."""
    from xgen_jupyter.notebook.connection import Connection
    from xgen_jupyter.notebook.remote_client import RemoteClient

    yield RemoteClient(Connection(jupyter_server.url, jupyter_server.token, "test"))


def jupyter_of(tmp_path: Path, user: str) -> Iterator[JupyterProc]:
    """A Jupyter server process of its own for ``user`` (models and the shared folder under tmp_path)."""
    j = JupyterProc(tmp_path, user, {"model_dirs": [str(tmp_path)], "shared_dir": str(tmp_path / "shared")})
    j.start()
    yield j
    j.stop()


@pytest.fixture()
def shell() -> Iterator[InteractiveShell]:
    """The shell, with whatever %xgen it had put back afterwards (other tests load the extension)."""
    ip = InteractiveShell.instance()
    saved = {kind: ip.magics_manager.magics[kind].get("xgen") for kind in ("line", "cell")}
    yield ip
    for kind, fn in saved.items():
        if fn is None:
            ip.magics_manager.magics[kind].pop("xgen", None)
        else:
            ip.magics_manager.magics[kind]["xgen"] = fn
