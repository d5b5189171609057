"""A real Jupyter server run as a real Unix user (runuser), with the xgen extension."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path
from typing import Any

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
        self.popen_env = {}  # runuser gets nothing of ours: the user's environment is the argv's

    def start(self, timeout: float = 90.0) -> UserJupyter:
        super().start(timeout)  # a first start as another user (its Python, its home) is slower
        return self
