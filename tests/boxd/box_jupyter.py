"""A real Jupyter server run as a real Unix user (runuser), with the xgen extension."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.core.box.jupyter_proc import JupyterProc

from .box_harness import user_python


class UserJupyter(JupyterProc):
    def __init__(self, root: Path, user: str, xgen: dict[str, Any]) -> None:
        super().__init__(root, user, xgen)
        pw = pwd.getpwnam(user)
        for folder in (self.root, *self.root.rglob("*")):
            os.chown(folder, pw.pw_uid, pw.pw_gid)
        exe, pythonpath = user_python(user)
        env = {k: v for k, v in self.env.items() if k.startswith("JUPYTER_")}
        # XGEN_USER says "mallory": with the box service it is not believed (the socket's peer is).
        env.update({"PATH": "/usr/bin:/bin", "HOME": pw.pw_dir, "PYTHONPATH": pythonpath, "XGEN_USER": "mallory"})
        self.argv = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", user, "--", "/usr/bin/env",
                     *[f"{k}={v}" for k, v in env.items()], exe, "-m", "jupyter_server"]

    def start(self, timeout: float = 90.0) -> UserJupyter:
        log = open(self.root / "jupyter.log", "ab")  # noqa: SIM115 - kept open for the child's life
        self.proc = subprocess.Popen(self.argv, env={}, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
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
