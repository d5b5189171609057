"""Idle unload and the on-crash restart policy keep working inside the box service."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.conftest import pid_alive
from xgen_jupyter.boxd.client import BoxClient

from .box_books import balance, entries
from .box_harness import as_user
from .test_box_users import wait_ready

pytestmark = pytest.mark.engine


def test_idle_unload_and_on_crash_restart_through_the_service(unix_users, box_factory, shared_models):
    box = box_factory(extra=["--idle-ttl", "2"])
    sock, admin = box.socket, BoxClient(box.socket)
    base = {"model": str(shared_models / "gemma.gguf"), "n_threads": 1, "n_ctx": 512}
    assert as_user("alice", sock, "call", "load", {"request": {**base, "name": "idle"}})["ok"]
    r = as_user("alice", sock, "call", "load",
                {"request": {**base, "name": "kept", "pinned": True, "restart": "on-crash"}})
    assert r["ok"], r
    wait_ready(sock, "alice", "idle")
    kept = wait_ready(sock, "alice", "kept")

    os.killpg(kept["pid"], signal.SIGKILL)  # the engine crashes; the service restarts it
    deadline = time.monotonic() + 90
    while True:
        s = admin.call("get", name="kept", owner="alice")
        if s["state"] == "ready" and s["pid"] != kept["pid"]:
            break
        assert time.monotonic() < deadline, s
        time.sleep(0.2)
    assert s["restart"]["restarts"] == 1 and pid_alive(s["pid"])

    deadline = time.monotonic() + 30
    while (idle := admin.call("get", name="idle", owner="alice"))["state"] != "stopped":
        assert time.monotonic() < deadline, idle
        time.sleep(0.2)
    assert idle["stop_reason"].startswith("idle: unused for")
    assert admin.call("get", name="kept", owner="alice")["state"] == "ready"  # pinned
    assert balance(box.state) == (1, 1)
    box.stop()  # SIGTERM, as systemd stops it: every engine stopped, every entry released
    assert box.proc is not None and box.proc.returncode == 0
    assert not pid_alive(s["pid"]) and entries(box.state) == [] and not box.socket.exists()
