"""The `xgen` command line of real Unix users (runuser) goes through the box service when its
trusted socket is there: the catalog, plans and loads are the service's, its quotas and read
checks hold whatever XGEN_USER says, and ls/logs/unload reach only the user's own servers."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from .box_books import balance, entries
from .box_harness import user_python

pytestmark = pytest.mark.engine


def argv_of(user: str, sock: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """``python -m xgen_jupyter.cli ARGS`` as ``user`` (runuser)."""
    exe, pythonpath = user_python(user)
    run_env = {"PATH": "/usr/bin:/bin", "HOME": pwd.getpwnam(user).pw_dir, "PYTHONPATH": pythonpath,
               "XGEN_BOX_SOCKET": str(sock), **(env or {})}
    return [shutil.which("runuser") or "/usr/sbin/runuser", "-u", user, "--", "/usr/bin/env",
            *[f"{k}={v}" for k, v in run_env.items()], exe, "-m", "xgen_jupyter.cli", *args]


def xgen(user: str, sock: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv_of(user, sock, *args, env=env), capture_output=True, text=True, timeout=240, env={},
                          check=False)


def test_cli_goes_through_the_service_with_its_quotas(unix_users, box_factory, shared_models):
    box = box_factory(quotas={"users": {"alice": {"max_servers": 1}}})
    sock, model = box.socket, str(shared_models / "gemma.gguf")
    opts = ["--ctx", "512", "--threads", "1", "--backend", "llama-cpp-python"]

    # The catalog is the service's (alice's own core would list her home's folders), and only what
    # she may read; a plan for a file she may not read is refused by the service's read check.
    r = xgen("alice", sock, "models")
    assert r.returncode == 0 and "gemma" in r.stdout, r.stderr
    secret = shared_models / "cli-secret.gguf"
    secret.write_bytes(b"GGUF" + b"\0" * 64)
    os.chmod(secret, 0o600)
    try:
        r = xgen("alice", sock, "plan", str(secret), *opts)
        assert r.returncode == 2 and "alice cannot read" in r.stderr, (r.stdout, r.stderr)
    finally:
        secret.unlink()
    r = xgen("alice", sock, "plan", model, *opts)
    assert r.returncode == 0 and "llama-cpp-python" in r.stdout, r.stderr

    # A load is the service's: owned by alice whatever XGEN_USER claims, ready, its key shown to her.
    r = xgen("alice", sock, "load", model, "--name", "a1", *opts, env={"XGEN_USER": "bob"})
    assert r.returncode == 0 and "ready: http://127.0.0.1:" in r.stdout, (r.stdout, r.stderr[-2000:])
    assert [e[:3] for e in entries(box.state)] == [("alice", "a1", "ready")]
    # Her quota (1 server) holds on the command line, also when she says she is someone else.
    for env in ({}, {"XGEN_USER": "carol"}):
        r = xgen("alice", sock, "load", model, "--name", "a2", *opts, env=env)
        assert r.returncode == 2 and "alice may run 1 server" in r.stderr, (r.stdout, r.stderr)
    assert len(entries(box.state)) == 1

    r = xgen("alice", sock, "ls")
    assert r.returncode == 0 and r.stdout.split()[:2] == ["a1", "ready"], r.stdout
    r = xgen("bob", sock, "ls")
    assert r.returncode == 0 and "no servers" in r.stdout, r.stdout
    r = xgen("bob", sock, "ls", "--box")
    assert r.returncode == 0 and "alice/a1" in r.stdout and "http" not in r.stdout, r.stdout
    r = xgen("alice", sock, "logs", "a1", "--tail", "5")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 5, r.stdout
    for cmd in (["logs", "a1"], ["unload", "a1"]):  # bob: not his server
        r = xgen("bob", sock, *cmd)
        assert r.returncode == 2 and "no server" in r.stderr.lower(), (cmd, r.stderr)
    r = xgen("alice", sock, "unload", "a1")
    assert r.returncode == 0 and r.stdout.strip() == "a1: stopped", (r.stdout, r.stderr)
    assert balance(box.state) == (0, 0)

    # `xgen serve` runs the model in the service until Ctrl-C, then unloads it there.
    serve = subprocess.Popen(argv_of("alice", sock, "serve", model, "--name", "s1", *opts), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env={}, start_new_session=True)
    try:
        assert serve.stdout is not None
        lines = [serve.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("ready: http://127.0.0.1:") and lines[1].startswith("Ctrl-C"), lines
        assert [e[:3] for e in entries(box.state)] == [("alice", "s1", "ready")]
        os.killpg(serve.pid, signal.SIGINT)  # Ctrl-C: a terminal signals its whole foreground group
        assert serve.wait(60) == 0
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    assert entries(box.state) == [] and balance(box.state) == (0, 0)

    # No service: ls/load/unload/logs say how to get one instead of starting engines that would die.
    r = xgen("alice", box.root / "nothing.sock", "ls")
    assert r.returncode == 2 and "needs the box service" in r.stderr and "xgen box" in r.stderr, r.stderr
