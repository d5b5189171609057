"""An engine left running by a dead run of the service (as if its parent-death signal were lost):
the next start kills it (pid and start time match), and leaves alone a live process whose pid was
reused (start time differs). Reservations = engines running afterwards."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import time

import psutil

from tests.conftest import pid_alive
from xgen_jupyter.boxd.service import SERVICE_USER
from xgen_jupyter.core.box.registry import BoxRegistry

from .box_books import balance, entries


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_leftover_engine_is_killed_and_a_reused_pid_is_spared(box_root, box_factory):
    state = box_root / "box-state"
    BoxRegistry(state / "registry", None, SERVICE_USER, private=True)  # the file, as a previous run made it
    leftover = subprocess.Popen(["sleep", "300"], start_new_session=True)  # an "engine" in its own group
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        con = sqlite3.connect(state / "registry" / "registry.db")
        now, gone = time.time(), dead_pid()
        for name, pid, started in (("left", leftover.pid, psutil.Process(leftover.pid).create_time()),
                                   ("reused", bystander.pid, 12345.0)):  # same pid, another process
            cur = con.execute(
                "INSERT INTO servers (host, owner, owner_pid, owner_started, name, model, backend, state,"
                " engine_pid, engine_started, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (socket.gethostname(), "alice", gone, now - 60, name, "m.gguf", "llama-cpp-python", "ready",
                 pid, started, now, now))
            con.execute("INSERT INTO reservations VALUES (?,?,?,?,?)", (cur.lastrowid, "host", "host RAM", "host",
                                                                        1 << 30))
        con.commit()
        con.close()
        assert balance(state) == (2, 2)  # the books say two engines; neither is the service's now

        box = box_factory()
        deadline = time.monotonic() + 10
        while leftover.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leftover.poll() is not None, "the leftover engine was killed"
        assert pid_alive(bystander.pid), "a process that only shares the pid is left alone"
        assert entries(state) == [] and balance(state) == (0, 0)
        assert "reclaimed 2 registry entries" in box.log_text()
    finally:
        for p in (leftover, bystander):
            if p.poll() is None:
                p.kill()
            p.wait()
