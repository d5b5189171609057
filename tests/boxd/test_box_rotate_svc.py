"""Unsharing with ``rotate``: the engine restarts under a new key, so the key a grantee was handed
(``route`` gives it to his proxy, a process of his own: he can keep it) stops working. Without
``rotate`` an unshare refuses his next ``route`` but not a key he kept: the documented trade-off."""

from __future__ import annotations

import pytest

from tests.conftest import pid_alive

from .box_harness import as_user
from .test_box_users import wait_ready

pytestmark = pytest.mark.engine


def test_unshare_with_rotate_voids_the_key_a_grantee_kept(unix_users, box_factory, shared_models):
    box = box_factory()
    sock = box.socket
    load = {"model": str(shared_models / "gemma.gguf"), "n_threads": 1, "n_ctx": 512, "name": "chat"}
    assert as_user("alice", sock, "call", "load", {"request": load})["ok"]
    first = wait_ready(sock, "alice", "chat")
    assert as_user("alice", sock, "call", "share", {"name": "chat", "users": ["bob"]})["ok"]
    kept = as_user("bob", sock, "call", "route", {"model": "alice/chat"})["result"]  # bob keeps this
    assert as_user("bob", sock, "chat", kept["endpoint"], kept["api_key"])["ok"]

    # A plain unshare: his route is refused, but the key he kept still opens the same engine.
    assert as_user("alice", sock, "call", "share", {"name": "chat", "users": []})["result"]["rotated"] is False
    assert not as_user("bob", sock, "call", "route", {"model": "alice/chat"})["ok"]
    assert as_user("bob", sock, "chat", kept["endpoint"], kept["api_key"])["status"] == 200

    # Bad input is refused before anything restarts.
    r = as_user("alice", sock, "call", "share", {"name": "chat", "users": [], "rotate": "yes"})
    assert not r["ok"] and "'rotate' must be true or false" in r["message"], r
    assert wait_ready(sock, "alice", "chat")["pid"] == first["pid"]

    # With rotate: a new engine under a new key; bob's kept key opens nothing, alice's proxy gets the new one.
    r = as_user("alice", sock, "call", "share", {"name": "chat", "users": [], "rotate": True})
    assert r["ok"] and r["result"]["rotated"] is True and r["result"]["shared_with"] == [], r
    second = wait_ready(sock, "alice", "chat")
    assert second["pid"] != first["pid"] and not pid_alive(first["pid"])
    assert second["stop_reason"] is None and second["restart"]["restarts"] == 0
    mine = as_user("alice", sock, "call", "route", {"model": "chat"})["result"]
    assert mine["api_key"] != kept["api_key"]
    assert as_user("bob", sock, "chat", mine["endpoint"], kept["api_key"])["status"] == 401
    assert as_user("alice", sock, "chat", mine["endpoint"], mine["api_key"])["status"] == 200
    logs = as_user("alice", sock, "call", "logs", {"name": "chat", "tail": 5000})["result"]
    assert any("restarted under a new key by alice" in ln["text"] for ln in logs), [ln["text"] for ln in logs][-20:]
