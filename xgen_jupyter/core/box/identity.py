"""Who owns a reservation, and whether that owner still lives (pid + start time, so pid reuse is seen)."""

from __future__ import annotations

import os
import pwd
import socket

import psutil

#: Overrides the Unix user name as the xgen identity (tests run two identities under one uid).
USER_ENV = "XGEN_USER"


def current_user() -> str:
    env = os.environ.get(USER_ENV, "").strip()
    if env:
        return env
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        return f"uid{os.getuid()}"


def hostname() -> str:
    return socket.gethostname()


def started_at(pid: int) -> float | None:
    """The process's start time (seconds since the epoch), or None if it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return -1.0  # exists, but hidden from us (hidepid): treat as alive


def alive(pid: int | None, started: float | None) -> bool:
    """True while ``pid`` runs and is the same process that started at ``started``."""
    if not pid:
        return False
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(p.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # cannot tell: keep the entry rather than steal someone's memory
