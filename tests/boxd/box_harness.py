"""A real box service (as root, like CI) and helpers to act as real Unix users (runuser) against it."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

USERS = ("alice", "bob", "carol")
USER_CLI = Path(__file__).with_name("box_user_cli.py")


def ensure_users() -> None:
    """Create alice, bob and carol (idempotent); skip unless root with useradd and runuser."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates Unix users alice, bob, carol and runs processes as them (CI runs as root)")
    missing = [t for t in ("useradd", "runuser") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} to create users and act as them")
    for user in USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", user], check=True, capture_output=True)


def user_python(user: str = "alice") -> tuple[str, str]:
    """(interpreter, PYTHONPATH) a Unix user can run with this checkout and the venv's packages.

    The venv's own interpreter may live in root's home (pyenv under /root, mode 0700): then a
    system Python of the same minor version runs the same site-packages (same ABI).
    """
    path = os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for exe in (sys.executable, f"/usr/bin/{minor}", f"/usr/local/bin/{minor}"):
        r = subprocess.run([runuser, "-u", user, "--", exe, "-c", "import psutil, httpx"], capture_output=True,
                           env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"}, check=False)
        if r.returncode == 0:
            return exe, path
    pytest.skip(f"no Python {minor} that {user} may run with the venv's packages (the venv's is {sys.executable})")


def world_dir(prefix: str) -> Path:
    """A folder under /tmp every user can traverse (pytest's tmp_path is root's, 0700)."""
    path = Path(f"/tmp/{prefix}{os.getpid()}-{time.monotonic_ns()}")
    path.mkdir(mode=0o755)
    os.chmod(path, 0o755)
    return path


class BoxProc:
    """``python -m xgen_jupyter.boxd`` as root, on a socket of its own."""

    def __init__(self, root: Path, model_dir: Path, quotas: dict[str, Any] | None = None,
                 extra: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.env = env or {}  # e.g. XGEN_HARDWARE_REPORT: a simulated box for the service
        self.socket = root / "shared" / "box.sock"
        self.state = root / "box-state"
        self.log = root / "box.log"
        qfile = root / "quotas.json"
        qfile.write_text(json.dumps(quotas or {}))
        self.argv = [sys.executable, "-m", "xgen_jupyter.boxd", "--socket", str(self.socket), "--state-dir",
                     str(self.state), "--model-dir", str(model_dir), "--backend", "llama-cpp-python",
                     "--quotas", str(qfile), "--janitor-interval", "0.5", "--ready-timeout", "120",
                     "--grace-period", "3", *(extra or [])]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> BoxProc:
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"box service exited {self.proc.returncode}: {self.log_text()[-3000:]}")
            if self.answers():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"box service not up after {timeout} s: {self.log_text()[-3000:]}")

    def answers(self) -> bool:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(self.socket))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


_PYTHON: list[tuple[str, str]] = []


def as_user(user: str, sock: Path, action: str, *args: Any, env: dict[str, str] | None = None,
            timeout: float = 180.0) -> Any:
    """Run box_user_cli.py as ``user`` (runuser): its last stdout line, parsed as JSON."""
    if not _PYTHON:
        _PYTHON.append(user_python(user))
    exe, pythonpath = _PYTHON[0]
    run_env = {"PATH": "/usr/bin:/bin", "HOME": pwd.getpwnam(user).pw_dir, "PYTHONPATH": pythonpath,
               "XGEN_BOX_SOCKET": str(sock), **(env or {})}
    argv = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", user, "--", "/usr/bin/env",
            *[f"{k}={v}" for k, v in run_env.items()], exe, str(USER_CLI), action,
            *[a if isinstance(a, str) else json.dumps(a) for a in args]]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={}, check=False)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    if not lines:
        raise AssertionError(f"{user} {action}: no output (rc {r.returncode}): {r.stderr[-2000:]}")
    return json.loads(lines[-1])
