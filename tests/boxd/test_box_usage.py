"""Usage books with the box service and two real Unix users' Jupyter servers: each user's answers are
booked to their own row (tokens from the engine's usage fields), each sees their own usage, the box
scope shows both; memory-seconds are metered by the service; a user cannot add to another user's row
through the socket; the books survive a restart of the service."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from .box_harness import as_user
from .box_jupyter import UserJupyter

pytestmark = pytest.mark.engine


def ask(j: UserJupyter, model: str) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
    r = httpx.post(f"{j.base}/xgen/v1/chat/completions", json=body, headers=j.headers, timeout=180, trust_env=False)
    assert r.status_code == 200, r.text
    return dict(r.json()["usage"])


def usage(j: UserJupyter, scope: str = "mine") -> dict[tuple[str, str], dict[str, Any]]:
    r = j.api("GET", "usage", params={"scope": scope})
    assert r.status_code == 200, r.text
    assert r.json()["user"] == j.user  # whose books "mine" are: the socket's peer, not XGEN_USER (mallory)
    return {(row["user"], row["model"]): row for row in r.json()["rows"]}


def test_usage_books_of_two_users_in_the_box_service(unix_users, box_factory, box_root, shared_models):
    box = box_factory()
    xgen = {"shared_dir": str(box_root / "shared"), "model_dirs": [str(shared_models)]}
    alice, bob = UserJupyter(box_root, "alice", xgen), UserJupyter(box_root, "bob", xgen)
    alice.start()
    bob.start()
    try:
        a = [ask(alice, "gemma") for _ in range(2)]  # loaded on alice's first request, in the service
        b = ask(bob, "gemma")
        mine = usage(alice)
        assert list(mine) == [("alice", "gemma")], mine  # XGEN_USER says mallory: the socket's peer wins
        row = mine[("alice", "gemma")]
        assert (row["requests"], row["prompt_tokens"], row["completion_tokens"]) == \
            (2, sum(x["prompt_tokens"] for x in a), sum(x["completion_tokens"] for x in a))
        assert list(usage(bob)) == [("bob", "gemma")]
        assert usage(bob)[("bob", "gemma")]["completion_tokens"] == b["completion_tokens"]
        box_rows = usage(bob, "box")
        assert set(box_rows) == {("alice", "gemma"), ("bob", "gemma")}
        held = box_rows[("alice", "gemma")]["host_byte_seconds"]
        assert held > 0  # metered by the service, which holds alice's reservation
        time.sleep(1.0)
        assert usage(alice)[("alice", "gemma")]["host_byte_seconds"] > held

        # Through the socket: bob cannot book to alice, nor book memory, nor bad numbers.
        forged = as_user("bob", box.socket, "call", "usage_add", {"user": "alice", "model": "gemma",
                                                                     "prompt_tokens": 1000})
        assert not forged["ok"] and forged["status"] == 403 and "alice" in forged["message"], forged
        bad = as_user("bob", box.socket, "call", "usage_add", {"model": "gemma", "completion_tokens": -5})
        assert not bad["ok"] and bad["status"] == 400 and "completion_tokens" in bad["message"], bad
        own = as_user("bob", box.socket, "call", "usage_add", {"model": "gemma", "gpu_byte_seconds": 10**12})
        assert own["ok"] and own["result"] == {"user": "bob", "model": "gemma"}, own  # memory is not a client's
        after = usage(alice, "box")
        assert after[("alice", "gemma")]["prompt_tokens"] == row["prompt_tokens"]
        assert after[("bob", "gemma")]["requests"] == 2 and after[("bob", "gemma")]["gpu_byte_seconds"] == 0
        theirs = as_user("bob", box.socket, "call", "usage", {})
        assert [(r["user"], r["model"]) for r in theirs["result"]] == [("bob", "gemma")], theirs

        # A restart of the service: the books are in its registry file.
        box.stop()
        box.start()
        again = as_user("alice", box.socket, "call", "usage", {"scope": "box"})["result"]
        kept = {(r["user"], r["model"]): r for r in again}
        assert kept[("alice", "gemma")]["requests"] == 2 and kept[("bob", "gemma")]["requests"] == 2
        assert kept[("alice", "gemma")]["host_byte_seconds"] >= after[("alice", "gemma")]["host_byte_seconds"]
    finally:
        alice.stop()
        bob.stop()
