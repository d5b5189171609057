"""Real Jupyter servers of real users (alice, bob via runuser) as clients of one box service:
the extension finds the socket in the shared folder and says so; loads, the proxy, shares and the
box view go through the service; the service's restart is an error for the client, then it works."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import websocket

from xgen_jupyter.boxd.remote import IN_PROCESS, core_for, where
from xgen_jupyter.core.config import CoreConfig

from .box_jupyter import UserJupyter

pytestmark = pytest.mark.engine


def test_in_process_core_where_there_is_no_service(tmp_path):
    core = core_for(CoreConfig(shared_dir=tmp_path / "shared", state_dir=tmp_path / "state"))
    try:
        assert where(core) == IN_PROCESS and type(core).__name__ == "XGenCore"
    finally:
        core.shutdown()


def chat(j: UserJupyter, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
    return httpx.post(f"{j.base}/xgen/v1/chat/completions", json=body, headers=j.headers, timeout=120,
                      trust_env=False)


def ws(j: UserJupyter, path: str) -> websocket.WebSocket:
    return websocket.create_connection(f"ws://127.0.0.1:{j.port}/xgen/api/{path}", timeout=60,
                                       header=[f"Authorization: token {j.token}"])


def recv_until(sock: websocket.WebSocket, done, timeout: float = 120.0) -> list[dict]:
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(sock.recv())
        got.append(msg)
        if done(msg):
            return got
    raise AssertionError(got)


def test_jupyter_servers_of_two_users_through_one_box_service(unix_users, box_factory, box_root, shared_models):
    box = box_factory()
    xgen = {"shared_dir": str(box_root / "shared"), "model_dirs": [str(shared_models)]}
    alice, bob = (UserJupyter(box_root, u, xgen) for u in ("alice", "bob"))
    threads = [threading.Thread(target=j.start) for j in (alice, bob)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        for j in (alice, bob):  # who they are is the kernel's word (SO_PEERCRED), not XGEN_USER=mallory
            hw = j.api("GET", "hardware")
            assert hw.status_code == 200 and hw.json()["xgen_core"] == f"box service at {box.socket}, user {j.user}", \
                hw.text
        load = {"model": str(shared_models / "gemma.gguf"), "name": "chat", "n_threads": 1, "n_ctx": 512}
        events = ws(alice, "events?interval=0")  # what the sidebar follows, relayed from the service
        first = json.loads(events.recv())
        assert first["servers"] == [] and first["xgen_core"] == f"box service at {box.socket}, user alice", first
        r = alice.api("POST", "servers", json=load)
        assert r.status_code == 202 and r.json()["owner"] == "alice", r.text  # not "mallory" (XGEN_USER)
        assert alice.wait_state("chat", {"ready", "failed"})["state"] == "ready"
        states = [m["data"]["state"] for m in recv_until(events, lambda m: m.get("data", {}).get("state") == "ready")
                  if m["kind"] == "state"]
        assert states[0] == "planned" and states[-1] == "ready" and "loading" in states, states
        events.close()
        logs = ws(alice, "servers/chat/logs?tail=5")
        history = [json.loads(logs.recv()) for _ in range(5)]
        assert all(m["kind"] == "log" and m["server"] == "chat" for m in history)
        logs.close()
        r = chat(alice, "chat")
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"], r.text
        lines = alice.api("GET", "servers/chat/logs", params={"tail": 20}).json()["lines"]
        assert len(lines) == 20 and all(ln["attempt"] == 1 for ln in lines)
        lines = alice.api("GET", "servers/chat/logs", params={"tail": 100000}).json()["lines"]
        assert any(ln["text"].startswith("[xgen] attempt 1:") for ln in lines)

        # Bob's Jupyter server cannot see, stop or use alice's server until she shares it.
        assert bob.api("GET", "servers/chat").status_code == 404
        assert bob.api("DELETE", "servers/chat").status_code == 404
        assert bob.api("GET", "servers").json()["servers"] == []
        r = chat(bob, "alice/chat")
        assert r.status_code == 404 and "has not shared" in r.json()["error"]["message"], r.text
        r = alice.api("POST", "servers/chat/share", json={"users": ["bob"]})
        assert r.status_code == 200 and r.json() == {"name": "chat", "shared_with": ["bob"], "model": "alice/chat"}
        r = chat(bob, "alice/chat")
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"], r.text
        box_view = bob.api("GET", "servers", params={"scope": "box"}).json()["servers"]
        assert [(s["owner"], s["name"], s["mine"]) for s in box_view] == [("alice", "chat", False)]

        # Unsharing holds from bob's next request, though his proxy has just used the engine: it
        # asks the service for the key on every request (keeps none) and the service checks the grant.
        r = alice.api("POST", "servers/chat/share", json={"users": []})
        assert r.status_code == 200 and r.json()["shared_with"] == [], r.text
        for _ in range(2):
            r = chat(bob, "alice/chat")
            assert r.status_code == 404 and "has not shared" in r.json()["error"]["message"], r.text
        assert chat(alice, "chat").status_code == 200  # the owner's use goes on: no restart
        assert alice.api("POST", "servers/chat/share", json={"users": ["bob"]}).status_code == 200
        assert chat(bob, "alice/chat").status_code == 200

        # The service dies: the Jupyter servers answer 503 saying so; restarted, they work again.
        box.kill()
        r = alice.api("GET", "servers")
        assert r.status_code == 503 and "box service" in r.json()["message"], r.text
        assert chat(alice, "chat").status_code in (502, 503)
        box.start()
        assert alice.api("GET", "servers").json()["servers"] == []  # its engines died with it
        assert alice.api("POST", "servers", json=load).status_code == 202
        assert alice.wait_state("chat", {"ready", "failed"})["state"] == "ready"
        assert chat(alice, "chat").status_code == 200
    finally:
        for j in (alice, bob):
            j.stop()
