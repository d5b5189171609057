"""API keys in the box registry's file: stored as a hash, sealed per owner, counted, revoked."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from xgen_jupyter.core.box.apikeys import KeyNotFound, KeyStore, parse_key
from xgen_jupyter.core.box.registry import BoxRegistry
from xgen_jupyter.core.errors import RequestError, XGenError


@pytest.fixture
def registry(shared_dir: Path) -> BoxRegistry:
    return BoxRegistry(shared_dir, user="alice")


def store(registry: BoxRegistry, state: Path, user: str = "alice") -> KeyStore:
    return KeyStore(registry.db, user, state)


def test_a_key_is_shown_once_and_stored_as_a_hash(registry: BoxRegistry, tmp_path: Path) -> None:
    keys = store(registry, tmp_path / "alice")
    made = keys.create("ci", ["default"])
    assert made.key and parse_key(made.key) == (made.id, made.key.split("-", 2)[2])
    secret = made.key.split("-", 2)[2]
    assert secret not in registry.db.path.read_bytes().decode("latin-1")
    for suffix in ("-wal", "-shm"):
        p = Path(f"{registry.db.path}{suffix}")
        assert not p.exists() or secret not in p.read_bytes().decode("latin-1")
    assert stat.S_IMODE((tmp_path / "alice" / "api-keys.secret").stat().st_mode) == 0o600
    listed = keys.listing()
    assert [k.id for k in listed] == [made.id] and "key" not in listed[0].to_dict()
    assert listed[0].models == ["default"]
    assert keys.verify(made.key) is not None
    assert keys.verify(made.key[:-1] + ("A" if made.key[-1] != "A" else "B")) is None  # one character off
    assert keys.verify("xgen-nonsense") is None


def test_revoked_and_counted(registry: BoxRegistry, tmp_path: Path) -> None:
    keys = store(registry, tmp_path / "alice")
    made = keys.create("laptop")
    assert made.key
    keys.record(made.id, 12, 5)
    keys.record(made.id)
    (info,) = keys.listing()
    assert (info.requests, info.prompt_tokens, info.completion_tokens) == (2, 12, 5) and info.last_used
    assert keys.revoke(made.id).id == made.id
    assert keys.verify(made.key) is None and keys.listing() == []
    with pytest.raises(KeyNotFound):
        keys.revoke(made.id)


def test_bad_names_and_models_are_refused(registry: BoxRegistry, tmp_path: Path) -> None:
    keys = store(registry, tmp_path / "alice")
    for name, models in [("", None), ("x" * 65, None), ("ok", []), ("ok", "default"), ("ok", [1]), (None, None)]:
        with pytest.raises(RequestError):
            keys.create(name, models)
    assert keys.listing() == []


def test_a_row_someone_else_wrote_opens_nothing(registry: BoxRegistry, tmp_path: Path) -> None:
    """The shared file is world-writable: bob cannot add a key for alice, nor widen hers."""
    alice = store(registry, tmp_path / "alice")
    bob_as_alice = store(registry, tmp_path / "bob", user="alice")  # bob writes alice's name, with his secret
    forged = bob_as_alice.create("forged")
    assert forged.key and alice.verify(forged.key) is None
    assert [k.id for k in alice.listing()] == []
    scoped = alice.create("one model", ["default"])
    assert scoped.key
    con = sqlite3.connect(registry.db.path)
    con.execute("UPDATE api_keys SET models=NULL WHERE id=?", (scoped.id,))  # widen it behind her back
    con.commit()
    con.close()
    assert alice.verify(scoped.key) is None
    # and a key of alice's opens nothing on bob's server
    bob = store(registry, tmp_path / "bob", user="bob")
    good = alice.create("mine")
    assert good.key and bob.verify(good.key) is None and alice.verify(good.key) is not None
    assert json.loads(json.dumps(alice.verify(good.key).to_dict()))["owner"] == "alice"  # type: ignore[union-attr]


def test_store_failures_are_one_clear_error(registry: BoxRegistry, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(XGenError, match="cannot keep the API-key secret"):
        store(registry, blocker)
    keys = store(registry, tmp_path / "alice")
    con = sqlite3.connect(registry.db.path)
    con.execute("DROP TABLE api_keys")  # a registry file from before keys, or a broken one
    con.commit()
    con.close()
    with pytest.raises(XGenError, match=r"the API-key store .* failed"):
        keys.listing()
    with pytest.raises(XGenError, match="failed"):
        keys.create("ci")
