"""Idle unload, pinned servers, restart policy with backoff and a cap, logs on a full disk (core level,
real engines)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, pid_alive
from xgen_jupyter.core.box.idle import idle_for
from xgen_jupyter.core.errors import RequestError
from xgen_jupyter.core.planning.request import parse_request

CPU_ONLY = {"allowed_backends": ["llama-cpp-python"]}


def test_lifecycle_fields_are_validated():
    r = parse_request({"model": "default", "idle_ttl": 30, "pinned": "yes", "restart": "on-crash", "max_restarts": 2})
    assert (r.idle_ttl, r.pinned, r.restart, r.max_restarts) == (30.0, True, "on-crash", 2)
    for bad in ({"idle_ttl": -1}, {"idle_ttl": "soon"}, {"restart": "always"}, {"max_restarts": 1000},
                {"pinned": "maybe"}):
        with pytest.raises(RequestError):
            parse_request({"model": "default", **bad})


@pytest.mark.engine
def test_idle_server_is_unloaded_with_a_reason_and_pinned_is_kept(core_factory, shared_dir):
    core = core_factory(**CPU_ONLY, shared_dir=shared_dir, idle_ttl=1.5, janitor_interval=0.2)
    idle = core.load({"model": "default", "name": "idle", "n_threads": 1})
    pinned = core.load({"model": "default", "name": "pinned", "pinned": True, "n_threads": 1})
    own = core.load({"model": "default", "name": "own-ttl", "idle_ttl": 0, "n_threads": 1})  # 0: never
    for s in (idle, pinned, own):
        core.manager.wait(s.name, timeout=120)
        assert s.state == "ready", s.logs.text_tail()
    used = core.load({"model": "default", "name": "idle"})  # same server
    assert used is idle
    idle.touch()
    t0 = time.time()
    core.manager.wait("idle", timeout=10, until={"stopped"})
    assert idle.state == "stopped" and time.time() - t0 >= 1.4
    assert idle.stop_reason and idle.stop_reason.startswith("idle: unused for")
    assert "idle_ttl 1.5 s" in idle.stop_reason
    assert any("[xgen] stopping: idle" in ln.text for ln in idle.logs.tail(20))
    assert idle.to_dict()["stop_reason"] == idle.stop_reason
    time.sleep(1.0)
    assert pinned.state == "ready" and own.state == "ready"
    names = {s["name"] for s in core.box_servers()}
    assert names == {"pinned", "own-ttl"}, "the idle server's reservation is released"


def test_idle_rule():
    class S:
        state, pinned, idle_ttl, last_used, ready_at = "ready", False, None, None, 100.0

    s = S()
    assert idle_for(s, 10, 105) is None and idle_for(s, 10, 111) == (10, 11)  # type: ignore[arg-type]
    s.pinned = True
    assert idle_for(s, 10, 1000) is None  # type: ignore[arg-type]
    s.pinned, s.idle_ttl = False, 0.0
    assert idle_for(s, 10, 1000) is None  # type: ignore[arg-type]
    s.idle_ttl, s.last_used = 5.0, 200.0
    assert idle_for(s, 0, 204) is None and idle_for(s, 0, 206) == (5.0, 6.0)  # type: ignore[arg-type]


@pytest.mark.engine
def test_restart_on_crash_with_backoff_and_a_cap(core_factory, shared_dir):
    core = core_factory(**CPU_ONLY, shared_dir=shared_dir, restart_backoff=1.0, restart_backoff_cap=1.5)
    s = core.load({"model": "default", "name": "phoenix", "restart": "on-crash", "max_restarts": 2, "n_threads": 1})
    pids = []
    for n in (1, 2):
        core.manager.wait("phoenix", timeout=120)
        assert s.state == "ready", s.logs.text_tail()
        pids.append(s.pid)
        os.kill(s.pid, signal.SIGKILL)  # type: ignore[arg-type]
        core.manager.wait("phoenix", timeout=2, until={"crashed"})
        assert s.state == "crashed" and s.restarts == n and s.next_restart_at is not None
        assert s.to_dict()["restart"] == {"policy": "on-crash", "max_restarts": 2, "restarts": n,
                                          "next_restart_at": s.next_restart_at}
        assert s.stop_reason and s.stop_reason.startswith("crashed:")
        deadline = time.monotonic() + 0.5  # released by the crashed event, which follows the state
        while core.box_servers() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not core.box_servers(), "a crashed server's reservation is released"
        core.manager.wait("phoenix", timeout=10, until={"starting", "loading", "ready"})
    core.manager.wait("phoenix", timeout=120)
    assert s.state == "ready" and s.pid not in pids and len(core.box_servers()) == 1
    os.kill(s.pid, signal.SIGKILL)  # type: ignore[arg-type]
    core.manager.wait("phoenix", timeout=2, until={"crashed"})
    time.sleep(2.0)
    assert s.state == "crashed" and s.restarts == 2 and s.next_restart_at is None
    text = "\n".join(ln.text for ln in s.logs.tail())
    assert "restart 1/2 in 1.0 s" in text and "restart 2/2 in 1.5 s" in text and "gave up after 2" in text
    assert [a.number for a in s.attempts] == [1, 2, 3], "every attempt is kept"


@pytest.mark.engine
def test_unload_cancels_a_pending_restart(core_factory):
    core = core_factory(**CPU_ONLY, restart_backoff=2.0)
    s = core.load({"model": "default", "name": "r", "restart": "on-crash", "n_threads": 1})
    core.manager.wait("r", timeout=120)
    os.kill(s.pid, signal.SIGKILL)  # type: ignore[arg-type]
    core.manager.wait("r", timeout=2, until={"crashed"})
    core.unload("r")
    time.sleep(2.5)
    assert s.state == "crashed" and len(s.attempts) == 1 and s.next_restart_at is None


@pytest.mark.engine
def test_full_log_disk_does_not_stop_the_engine(core_factory, tmp_path):
    """The log file is /dev/full (every write: ENOSPC): the engine serves, the in-memory log works."""
    core = core_factory(**CPU_ONLY)
    log_dir = tmp_path / "state" / "logs"
    log_dir.mkdir(parents=True)
    (log_dir / "full.log").symlink_to("/dev/full")
    s = core.load({"model": "default", "name": "full", "n_threads": 1})
    core.manager.wait("full", timeout=120)
    assert s.state == "ready" and len(s.logs.tail()) > 5
    core.unload("full")
    assert s.state == "stopped"


_FSIZE = """
import resource, signal, sys
from pathlib import Path
from xgen_jupyter.core.process.logbuffer import LogBuffer
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
log = LogBuffer(Path(sys.argv[1]) / "x.log", max_lines=100, max_bytes=50000)
for i in range(5000):
    log.append(f"line {i} " + "x" * 80)
print(len(log.tail()), log.tail(1)[0].text[:9])
"""


def test_log_file_is_capped_rotated_and_survives_a_file_size_limit(tmp_path):
    out = subprocess.run([sys.executable, "-c", _FSIZE, str(tmp_path)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["100", "line", "4999"]
    assert (tmp_path / "x.log").stat().st_size <= 20000
    from xgen_jupyter.core.process.logbuffer import LogBuffer

    log = LogBuffer(tmp_path / "rot" / "y.log", max_lines=10, max_bytes=10_000)
    for i in range(2000):
        log.append(f"line {i} " + "y" * 40)
    assert (tmp_path / "rot" / "y.log").stat().st_size <= 10_000
    assert (tmp_path / "rot" / "y.log.1").stat().st_size <= 10_000
    assert not (tmp_path / "rot" / "y.log.2").exists()


_MANAGER = """
import sys, time
from pathlib import Path
from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.service import XGenCore
core = XGenCore(CoreConfig(shared_dir=Path(sys.argv[1]), state_dir=Path(sys.argv[2]),
                           allowed_backends=["llama-cpp-python"]))
s = core.load({"model": "default", "name": "victim", "n_threads": 1})
core.manager.wait("victim", timeout=120)
print(s.state, s.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.engine
def test_manager_sigkilled_twenty_times_leaves_no_engine_and_is_reclaimed(shared_dir, tmp_path):
    """A process that runs the core as the Jupyter extension does (registry, engines) is SIGKILLed
    with its engine ready, 20 times; each next start reclaims the dead one's entry."""
    from xgen_jupyter.core.box.registry import BoxRegistry

    env = {**os.environ, "PYTHONPATH": str(REPO), "XGEN_USER": "crashy"}
    engines: list[int] = []
    t0 = time.monotonic()
    for i in range(20):
        p = subprocess.Popen([sys.executable, "-c", _MANAGER, str(shared_dir), str(tmp_path / "state")],
                             stdout=subprocess.PIPE, text=True, env=env)
        assert p.stdout is not None
        state, pid = p.stdout.readline().split()
        assert state == "ready"
        # Its start reclaimed the previous one's entry: only its own is left.
        watcher = BoxRegistry(shared_dir, user="watcher")
        deadline = time.monotonic() + 2  # the registry follows the state a moment later
        while time.monotonic() < deadline:
            owners = [(s["owner"], s["name"], s["state"]) for s in watcher.listing()]
            if owners == [("crashy", "victim", "ready")]:
                break
            time.sleep(0.02)
        assert owners == [("crashy", "victim", "ready")], owners
        engines.append(int(pid))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        deadline = time.monotonic() + 5
        while pid_alive(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not pid_alive(int(pid)), f"round {i}: engine {pid} outlived its manager"
    assert not any(pid_alive(e) for e in engines)
    assert BoxRegistry(shared_dir, user="next-start").listing() == [], "the next start reclaims the last entry"
    print(f"20 kills in {time.monotonic() - t0:.0f} s")
