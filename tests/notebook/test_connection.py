"""Connection discovery rules (the real parent-pid path is exercised in test_magics_kernel.py)."""

from __future__ import annotations

import os

from xgen_jupyter.notebook.connection import Connection, from_env, pick_server


def test_xgen_vars_win_over_jupyter_vars() -> None:
    env = {
        "XGEN_SERVER_URL": "http://a:1/base",
        "XGEN_TOKEN": "x",
        "JUPYTER_SERVER_URL": "http://b:2",
        "JUPYTER_TOKEN": "j",
    }
    c = from_env(env)
    assert c == Connection("http://a:1/base/", "x", "env XGEN_SERVER_URL")
    assert c.api("xgen/api/servers") == "http://a:1/base/xgen/api/servers"
    assert c.ws("/xgen/api/events") == "ws://a:1/base/xgen/api/events"
    assert c.headers() == {"Authorization": "token x"}


def test_jupyter_vars_need_a_url() -> None:
    # A server started with JUPYTER_TOKEN passes it to its kernels: a token alone is no URL.
    assert from_env({"JUPYTER_TOKEN": "j"}) is None
    assert from_env({"JUPYTER_SERVER_URL": "https://h/", "JUPYTER_TOKEN": "j"}) == Connection(
        "https://h/", "j", "env JUPYTER_SERVER_URL"
    )
    assert Connection("https://h", "t", "x").ws("a") == "wss://h/a"


def test_pick_the_nearest_ancestor() -> None:
    servers = [{"pid": 10, "url": "u10"}, {"pid": 20, "url": "u20"}, {"pid": 30, "url": "u30"}]
    assert pick_server(servers, [20, 10]) == {"pid": 20, "url": "u20"}
    assert pick_server(servers, [99, 30]) == {"pid": 30, "url": "u30"}  # through a wrapper process
    assert pick_server(servers, [os.getpid()]) is None
    assert pick_server([], [1]) is None
