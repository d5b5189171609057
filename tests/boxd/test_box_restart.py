"""The box service SIGKILLed while an engine serves a stream and a client follows its events:
the clients get clear errors, the harness restarts the service (as systemd would), it cleans up
what the dead run left, the books balance (reservations = engines running), and it serves again."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from tests.conftest import pid_alive
from xgen_jupyter.boxd.client import BoxClient, ServiceUnavailable

from .box_books import balance, entries
from .box_harness import as_user
from .test_box_users import wait_ready

pytestmark = pytest.mark.engine


def test_service_killed_mid_stream_restarts_clean_and_balanced(unix_users, box_factory, shared_models):
    box = box_factory()
    sock = box.socket
    load = {"model": str(shared_models / "gemma.gguf"), "n_threads": 1, "n_ctx": 512, "name": "chat"}
    assert as_user("alice", sock, "call", "load", {"request": load})["ok"]
    chat = wait_ready(sock, "alice", "chat")
    route = BoxClient(sock).call("route", model="alice/chat")  # root: what alice's proxy would get
    assert balance(box.state) == (1, 1)

    # A client following alice's events, and a stream straight to the engine.
    events: list[object] = []
    follower = threading.Thread(target=lambda: follow(sock, events), daemon=True)
    follower.start()
    body = {"messages": [{"role": "user", "content": "Count from 1 to 200, one number per line."}],
            "max_tokens": 400, "stream": True}
    stream_outcome: list[object] = []
    got_chunks = threading.Event()

    def stream() -> None:
        n = 0
        try:
            with httpx.stream("POST", f"{route['endpoint']}/v1/chat/completions", json=body, timeout=60,
                              headers={"Authorization": f"Bearer {route['api_key']}"}, trust_env=False) as r:
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        n += 1
                        if n == 3:
                            got_chunks.set()
            stream_outcome.append(("finished", n))
        except httpx.HTTPError as exc:
            stream_outcome.append(("error", type(exc).__name__, n))

    streamer = threading.Thread(target=stream)
    streamer.start()
    assert got_chunks.wait(60), stream_outcome
    box.kill()  # SIGKILL: no clean-up code of the service runs
    killed_at = time.monotonic()

    streamer.join(30)
    assert stream_outcome and stream_outcome[0][0] == "error", stream_outcome  # the stream broke off
    follower.join(30)
    assert isinstance(events[-1], ServiceUnavailable), events[-3:]
    deadline = time.monotonic() + 10
    while pid_alive(chat["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(chat["pid"]), "the engine died with the service (parent-death signal)"
    print(f"engine gone {time.monotonic() - killed_at:.2f} s after the kill")
    # A call while the service is down: a clear error after the retry window, nothing hangs.
    r = as_user("alice", sock, "call", "servers", {})
    assert not r["ok"] and r["error"] == "ServiceUnavailable" and "does not answer" in r["message"], r
    assert [e[:2] for e in entries(box.state)] == [("alice", "chat")]  # stale entry of the dead run

    box.start()  # as systemd's Restart=always would
    assert entries(box.state) == [] and balance(box.state) == (0, 0)
    r = as_user("alice", sock, "call", "servers", {})
    assert r == {"ok": True, "result": []}, r
    assert as_user("alice", sock, "call", "load", {"request": load})["ok"]
    again = wait_ready(sock, "alice", "chat")
    assert again["pid"] != chat["pid"] and balance(box.state) == (1, 1)
    assert "reclaimed 1 registry entry" in box.log_text()


def follow(sock, out: list[object]) -> None:
    try:
        for msg in BoxClient(sock).stream("events", owner="alice"):
            out.append(msg)
    except ServiceUnavailable as exc:
        out.append(exc)
    except Exception as exc:  # recorded for the assertion
        out.append(json.dumps(repr(exc)))
