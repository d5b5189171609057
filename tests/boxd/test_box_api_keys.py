"""API keys where a box service runs the engines: each user's Jupyter server keeps its keys in a
private file of its own (the service keeps the registry to itself), and the key opens its owner's
proxy, whose requests go through the service, and nothing else, nobody else's proxy included."""

from __future__ import annotations

import os
import stat

import httpx
import pytest

from .box_jupyter import UserJupyter

pytestmark = pytest.mark.engine


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_with_the_box_service(unix_users, box_factory, box_root, shared_models):
    box = box_factory()
    xgen = {"shared_dir": str(box_root / "shared"), "model_dirs": [str(shared_models)]}
    alice, bob = UserJupyter(box_root, "alice", xgen), UserJupyter(box_root, "bob", xgen)
    alice.start()
    bob.start()
    try:
        assert alice.api("GET", "hardware").json()["xgen_core"].startswith(f"box service at {box.socket}")
        load = {"model": str(shared_models / "gemma.gguf"), "name": "chat", "n_threads": 1, "n_ctx": 512}
        assert alice.api("POST", "servers", json=load).status_code == 202
        assert alice.wait_state("chat", {"ready", "failed"})["state"] == "ready"
        r = alice.api("POST", "keys", json={"name": "script", "models": ["chat"]})
        assert r.status_code == 201 and r.json()["owner"] == "alice", r.text  # the service's word, not XGEN_USER
        key = r.json()["key"]
        body = {"model": "chat", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
        r = httpx.post(f"{alice.base}/xgen/v1/chat/completions", json=body, headers=bearer(key), timeout=120,
                       trust_env=False)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"], r.text
        assert httpx.get(f"{alice.base}/xgen/api/servers", headers=bearer(key)).status_code == 403
        r = httpx.post(f"{bob.base}/xgen/v1/chat/completions", json=body | {"model": "alice/chat"},
                       headers=bearer(key), timeout=60, trust_env=False)
        assert r.status_code == 401, r.text  # alice's key is nothing to bob's server
        (entry,) = alice.api("GET", "keys").json()["keys"]
        assert entry["requests"] == 1 and entry["completion_tokens"] > 0, entry
        store = alice.root / "state" / "api-keys"
        st = store.stat()
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.stat(alice.root).st_uid
        secret = key.split("-", 2)[2].encode()
        for f in [*store.rglob("*"), *(box_root / "shared").rglob("*")]:
            assert not f.is_file() or secret not in f.read_bytes(), f
        assert alice.api("DELETE", f"keys/{entry['id']}").status_code == 200
        r = httpx.get(f"{alice.base}/xgen/v1/models", headers=bearer(key))
        assert r.status_code == 401
        assert secret.decode() not in alice.log_text() + bob.log_text()
    finally:
        alice.stop()
        bob.stop()
