"""Start engines so that none outlives its manager.

Each engine gets its own process group (so unload can signal everything it started) and
a parent-death signal (so a SIGKILLed manager takes its engines with it). Linux delivers
PR_SET_PDEATHSIG when the *thread* that forked exits, so all spawns go through one
long-lived thread.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

_PR_SET_PDEATHSIG = 1


def _child_setup(parent_pid: int) -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class Spawner:
    """Runs every Popen on one persistent thread."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xgen-spawner")

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str | None = None) -> subprocess.Popen[bytes]:
        parent = os.getpid()

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _child_setup(parent),  # prctl needs a hook between fork and exec
                close_fds=True,
            )

        return self._pool.submit(start).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the engine's whole process group (it leads its own session)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
