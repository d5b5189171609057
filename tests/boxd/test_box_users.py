"""Real Unix users (alice, bob, carol) against one real box service running as root, with real
llama-cpp-python engines on the default model: identity from the kernel, per-user authorization,
shares, enforced quotas, and the attempts to get around them."""

from __future__ import annotations

import os
import time

import pytest

from xgen_jupyter.boxd.client import BoxClient

from .box_books import balance, entries
from .box_harness import as_user

pytestmark = pytest.mark.engine


def wait_ready(sock, owner: str, name: str, timeout: float = 180.0) -> dict:
    admin = BoxClient(sock)  # root: may look at anyone's server
    deadline = time.monotonic() + timeout
    while True:
        s = admin.call("get", name=name, owner=owner)
        if s["state"] in ("ready", "failed", "crashed", "stopped"):
            assert s["state"] == "ready", s.get("error")
            return s
        assert time.monotonic() < deadline, s
        time.sleep(0.2)


def test_users_identity_authorization_shares_and_quotas(unix_users, box_factory, shared_models):
    box = box_factory(quotas={"users": {"carol": {"max_servers": 1}}})
    sock, model = box.socket, str(shared_models / "gemma.gguf")
    load = {"model": model, "n_threads": 1, "n_ctx": 512}

    # Identity is the kernel's: XGEN_USER is not believed.
    r = as_user("alice", sock, "call", "hello", {}, env={"XGEN_USER": "bob"})
    assert r["ok"] and r["result"]["user"] == "alice", r

    # A model file alice may not read is refused before anything runs (the service itself could read it).
    secret = shared_models / "secret.gguf"
    secret.write_bytes(b"GGUF" + b"\0" * 64)
    os.chmod(secret, 0o600)
    r = as_user("alice", sock, "call", "load", {"request": {**load, "model": str(secret)}})
    assert not r["ok"] and r["error"] == "ModelError" and "alice cannot read" in r["message"], r
    r = as_user("alice", sock, "call", "plan", {"request": {**load, "model": str(secret)}})
    assert not r["ok"] and "alice cannot read" in r["message"], r
    # The catalog shows her only what she could load (root's default model and the secret are not hers).
    names = {m["name"] for m in as_user("alice", sock, "call", "models", {})["result"]}
    assert "gemma" in names and "secret" not in names and "default" not in names, names
    assert {"gemma", "secret", "default"} <= {m["name"] for m in BoxClient(sock).call("models")}

    r = as_user("alice", sock, "call", "load", {"request": {**load, "name": "chat"}}, env={"XGEN_USER": "bob"})
    assert r["ok"] and r["result"]["owner"] == "alice" and "api_key" not in r["result"], r
    chat = wait_ready(sock, "alice", "chat")
    assert [e[:2] for e in entries(box.state)] == [("alice", "chat")]

    # Bob: not in his namespace, and naming alice as owner is refused; the raw socket the same.
    for op in ("get", "unload", "logs", "forget", "share", "touch"):
        args = {"name": "chat", "users": ["bob"]} if op == "share" else {"name": "chat"}
        r = as_user("bob", sock, "call", op, args)
        assert not r["ok"] and r["error"] == "ServerNotFound", (op, r)
        r = as_user("bob", sock, "call", op, {**args, "owner": "alice"})
        assert not r["ok"] and r["status"] == 403 and "bob may not act on alice" in r["message"], (op, r)
    r = as_user("bob", sock, "raw", {"op": "unload", "name": "chat", "owner": "alice"})
    assert r["ok"] is False and r["status"] == 403, r
    r = as_user("bob", sock, "call", "route", {"model": "alice/chat"})
    assert not r["ok"] and "alice has not shared a server named 'chat' with bob" in r["message"], r
    # Nor can bob read the engine's environment (its key), the registry, or call the engine without the key.
    assert as_user("bob", sock, "read", f"/proc/{chat['pid']}/environ") == {"ok": False, "error": "PermissionError"}
    for path in (box.state / "registry" / "registry.db", box.state / "registry" / "quotas.json"):
        assert as_user("bob", sock, "read", str(path))["ok"] is False
        assert as_user("bob", sock, "write", str(path))["ok"] is False
    r = as_user("bob", sock, "chat", chat["endpoint"], "")
    assert r == {"ok": False, "status": 401}, r
    assert oct(os.stat(box.state / "registry").st_mode & 0o777) == "0o700"
    assert oct(os.stat(box.state / "registry" / "registry.db").st_mode & 0o777) == "0o600"
    assert still_running(chat["pid"])

    # Alice shares with bob: he gets the engine's key (his proxy would), carol still does not.
    r = as_user("alice", sock, "call", "share", {"name": "chat", "users": ["bob"]})
    assert r["ok"] and r["result"] == {"name": "chat", "shared_with": ["bob"], "model": "alice/chat",
                                        "rotated": False}, r
    r = as_user("alice", sock, "call", "share", {"name": "chat", "users": ["nosuchuser"]})
    assert not r["ok"] and "no such user" in r["message"]
    route = as_user("bob", sock, "call", "route", {"model": "alice/chat"})
    assert route["ok"] and route["result"]["endpoint"] == chat["endpoint"], route
    r = as_user("bob", sock, "chat", route["result"]["endpoint"], route["result"]["api_key"])
    assert r["ok"] and r["body"]["choices"][0]["message"]["content"], r
    r = as_user("carol", sock, "call", "route", {"model": "alice/chat"})
    assert not r["ok"] and "has not shared" in r["message"]
    r = as_user("bob", sock, "call", "unload", {"name": "chat", "owner": "alice"})
    assert not r["ok"] and r["status"] == 403  # shared to use, not to stop

    # Quotas hold whatever carol claims to be, and whatever she writes in the shared folder
    # (made 1777 here, like the default /tmp/xgen-shared): the service's books are not there.
    r = as_user("carol", sock, "call", "load", {"request": {**load, "name": "c1"}})
    assert r["ok"], r
    os.chmod(sock.parent, 0o1777)
    for name, text in (("quotas.json", '{"users": {"carol": {"max_servers": 99}}}'), ("registry.db", "garbage")):
        assert as_user("carol", sock, "write", str(sock.parent / name))["ok"]
        (sock.parent / name).write_text(text)
    for env in ({}, {"XGEN_USER": "alice"}):
        r = as_user("carol", sock, "call", "load", {"request": {**load, "name": "c2"}}, env=env)
        assert not r["ok"] and r["error"] == "QuotaExceeded" and "carol may run 1 server" in r["message"], r
    r = as_user("carol", sock, "raw", {"op": "load", "owner": "alice", "request": {**load, "name": "c3"}})
    assert r["ok"] is False and r["error"] == "QuotaExceeded", r  # 'owner' does not make her alice
    wait_ready(sock, "carol", "c1")

    # The box view: everyone's servers, no keys, ports, paths or logs of others.
    r = as_user("bob", sock, "call", "box", {})
    assert r["ok"]
    view = {(s["owner"], s["name"]): s for s in r["result"]}
    assert set(view) == {("alice", "chat"), ("carol", "c1")}
    assert view[("alice", "chat")]["shared_with"] == ["bob"] and not any(s["mine"] for s in view.values())
    keys = {k for s in r["result"] for k in s}
    assert not keys & {"api_key", "endpoint", "port", "pid", "model_path", "log_file", "attempts"}, keys
    assert model not in str(r["result"]) and view[("alice", "chat")]["model"] == "gemma.gguf"

    text = as_user("carol", sock, "status")["text"]
    assert "you are carol" in text and "* carol/c1" in text and "  alice/chat" in text and "shared with bob" in text

    assert balance(box.state) == (2, 2)
    r = as_user("alice", sock, "call", "unload", {"name": "chat"})
    assert r["ok"] and r["result"]["state"] == "stopped", r
    assert not still_running(chat["pid"])
    assert balance(box.state) == (1, 1)
    assert box.alive()


def still_running(pid: int) -> bool:
    from tests.conftest import pid_alive

    return pid_alive(pid)
