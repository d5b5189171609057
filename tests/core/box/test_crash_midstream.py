"""An engine SIGKILLed while it streams through the real Jupyter proxy: the client gets an
error event within 1 s, the server is `crashed` with its log kept, and on-crash restarts it."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from .jupyter_proc import JupyterProc

pytestmark = pytest.mark.engine


@pytest.fixture
def jup(tmp_path, shared_dir):
    j = JupyterProc(tmp_path, "alice", {"shared_dir": str(shared_dir), "allowed_backends": ["llama-cpp-python"],
                                         "ready_timeout": 120.0, "grace_period": 3.0})
    j.start()
    yield j
    j.stop()


def test_engine_killed_mid_stream(jup):
    r = jup.api("POST", "servers", json={"model": "default", "name": "s", "restart": "on-crash", "n_threads": 1})
    assert r.status_code == 202, r.text
    first = jup.wait_state("s", {"ready", "failed"})
    assert first["state"] == "ready" and first["restart"]["policy"] == "on-crash"
    body = {"model": "s", "stream": True, "max_tokens": 400,
            "messages": [{"role": "user", "content": "Count from 1 to 200, one number per line."}]}
    chunks, error, killed_at, error_at = 0, None, None, None
    with httpx.stream("POST", f"{jup.base}/xgen/v1/chat/completions", json=body, headers=jup.headers,
                      timeout=30, trust_env=False) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            if "error" in data:
                error, error_at = data["error"], time.monotonic()
                break
            chunks += 1
            if chunks == 3:
                os.kill(first["pid"], signal.SIGKILL)
                killed_at = time.monotonic()
    assert killed_at is not None and error is not None, f"chunks={chunks}"
    assert error_at is not None and error_at - killed_at < 1.0
    assert error["code"] == "engine_died" and "stopped mid-stream" in error["message"]
    print(f"error event {1000 * (error_at - killed_at):.0f} ms after SIGKILL")
    crashed = jup.wait_state("s", {"crashed"}, timeout=1.0)
    assert crashed["error"]["id"] == "killed" and crashed["stop_reason"].startswith("crashed:")
    assert crashed["restart"]["restarts"] == 1 and crashed["restart"]["next_restart_at"]
    # The state turns "crashed" as the supervisor writes its log lines: give them a moment to land.
    deadline = time.monotonic() + 5.0
    while True:
        lines = [ln["text"] for ln in jup.api("GET", "servers/s/logs", params={"tail": "5000"}).json()["lines"]]
        died = any("engine died after it was ready" in t for t in lines)
        restart = any("restart 1/3" in t for t in lines)
        if (died and restart) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert died and restart, lines[-20:]
    again = jup.wait_state("s", {"ready"}, timeout=120)
    assert again["pid"] != first["pid"] and len(again["attempts"]) == 2
    r = httpx.post(f"{jup.base}/xgen/v1/chat/completions", headers=jup.headers, timeout=120, trust_env=False,
                   json={**body, "stream": False, "max_tokens": 8})
    assert r.status_code == 200
