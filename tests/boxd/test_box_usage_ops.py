"""The service's usage ops in-process (a real BoxService and its private registry; peers as the
kernel's SO_PEERCRED would name them): bookings go to the peer's own row, bad numbers and forged
users are refused, a user cannot fill the books with invented model names."""

from __future__ import annotations

from pathlib import Path

import pytest

from xgen_jupyter.boxd import usage_ops
from xgen_jupyter.boxd.ops import Ops
from xgen_jupyter.boxd.peer import Peer
from xgen_jupyter.boxd.service import BoxService
from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.errors import RequestError, XGenError

ALICE, BOB = Peer(100, 1001, 1001, "alice"), Peer(101, 1002, 1002, "bob")


@pytest.fixture
def ops(tmp_path: Path):
    service = BoxService(CoreConfig(state_dir=tmp_path / "cfg"), tmp_path / "state")
    yield Ops(service, tmp_path / "box.sock")
    service.shutdown()


def test_bookings_go_to_the_peer_and_bad_ones_are_refused(ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ops(ALICE, {"op": "usage_add", "model": "chat", "prompt_tokens": 7, "completion_tokens": 2}) == \
        {"user": "alice", "model": "chat"}
    ops(ALICE, {"op": "usage_add", "model": "chat", "user": "alice", "completion_tokens": 3})
    ops(BOB, {"op": "usage_add", "model": "chat", "requests": 2, "host_byte_seconds": 10**15})
    with pytest.raises(XGenError) as forged:
        ops(BOB, {"op": "usage_add", "model": "chat", "user": "alice", "prompt_tokens": 100})
    assert forged.value.status == 403 and "bob may not add to 'alice'" in str(forged.value)
    for bad in ({"model": ""}, {"model": "x" * 131}, {"model": "chat", "requests": -1},
                {"model": "chat", "prompt_tokens": 1.5}, {"model": "chat", "completion_tokens": 10**10}):
        with pytest.raises(RequestError):
            ops(BOB, {"op": "usage_add", **bad})
    with pytest.raises(RequestError):
        ops(BOB, {"op": "usage", "scope": "everyone"})
    mine = ops(ALICE, {"op": "usage"})
    assert [(r["user"], r["requests"], r["prompt_tokens"], r["completion_tokens"]) for r in mine] == \
        [("alice", 2, 7, 5)]
    box = {r["user"]: r for r in ops(ALICE, {"op": "usage", "scope": "box"})}
    assert set(box) == {"alice", "bob"} and box["bob"]["requests"] == 2
    assert box["bob"]["host_byte_seconds"] == 0  # memory-seconds are the service's to meter, not a client's

    monkeypatch.setattr(usage_ops, "MAX_MODELS", 3)
    for name in ("a", "b"):
        ops(BOB, {"op": "usage_add", "model": name})
    with pytest.raises(RequestError) as full:
        ops(BOB, {"op": "usage_add", "model": "invented"})
    assert "already has usage rows for 3 models" in str(full.value)
    ops(BOB, {"op": "usage_add", "model": "a"})  # an existing row still counts
    assert {r["model"]: r["requests"] for r in ops(BOB, {"op": "usage"})} == {"a": 2, "b": 1, "chat": 2}
