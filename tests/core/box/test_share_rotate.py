"""In-process (no box service): sharing with ``rotate`` restarts the engine under a new key, so a
key file a former grantee copied stops working; a server that is not running is refused."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import pid_alive
from xgen_jupyter.core.errors import ServerConflict

pytestmark = pytest.mark.engine


def chat(endpoint: str, key: str) -> int:
    body = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
    return httpx.post(f"{endpoint}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"},
                      timeout=120, trust_env=False).status_code


def test_share_with_rotate_restarts_under_a_new_key(core_factory, tmp_path):
    core = core_factory(shared_dir=tmp_path / "shared", allowed_backends=["llama-cpp-python"])
    core.load({"model": "default", "name": "chat", "n_ctx": 512, "n_threads": 1})
    old = core.manager.wait("chat", timeout=120)
    assert old.state == "ready", old.error
    old_key, old_pid = old.api_key, old.pid
    assert chat(old.endpoint, old_key) == 200

    new = core.share("chat", [], rotate=True)
    assert new is not old and new.api_key != old_key and old.state == "stopped"
    assert old.stop_reason == "restarted under a new key (sharing changed)"
    assert core.manager.wait("chat", timeout=120).state == "ready", new.error
    deadline = time.monotonic() + 10
    while pid_alive(old_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(old_pid)
    assert chat(new.endpoint, old_key) == 401 and chat(new.endpoint, new.api_key) == 200
    assert [e["name"] for e in core.registry.listing()] == ["chat"]  # one entry: the old one released

    core.unload("chat")
    with pytest.raises(ServerConflict, match="is stopped"):
        core.share("chat", [], rotate=True)
