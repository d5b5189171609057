"""Eviction frees the card that was short: a real registry's refusal names the device (the key its
reservations are booked under), and only the servers holding bytes there are candidates."""

from __future__ import annotations

from pathlib import Path

import pytest

from xgen_jupyter.boxd.evict import on_device
from xgen_jupyter.core.box.devices import Claim
from xgen_jupyter.core.box.registry import BoxRegistry
from xgen_jupyter.core.errors import CapacityRefused

GiB = 1024**3


def gpu(device: str, nbytes: int) -> Claim:
    return Claim(device, f"GPU {device[-1]} (Sim 24GB)", "gpu", nbytes, 24 * GiB, 0, GiB // 2)


def test_the_refusal_names_the_short_card_and_only_its_holders_are_candidates(tmp_path: Path) -> None:
    alice = BoxRegistry(tmp_path / "registry", {}, "alice", private=True)
    bob = BoxRegistry(tmp_path / "registry", {}, "bob", private=True)
    alice.reserve("big", "m.gguf", "llama-server-cuda", [gpu("gpu:0", 20 * GiB)])
    alice.reserve("other-card", "m.gguf", "llama-server-cuda", [gpu("gpu:1", 20 * GiB)])
    bob.reserve("cpu", "m.gguf", "llama-cpp-python", [Claim("host", "host RAM", "host", 2 * GiB, 64 * GiB, 0, GiB)])
    with pytest.raises(CapacityRefused) as refused:
        bob.reserve("new", "m.gguf", "llama-server-cuda", [gpu("gpu:0", 8 * GiB)])
    assert refused.value.device == "gpu:0" and "GPU 0" in refused.value.message
    listing = alice.listing()
    assert on_device(listing, refused.value.device) == {("alice", "big")}  # not gpu:1's, not host RAM's
    assert on_device(listing, "host") == {("bob", "cpu")}
    assert on_device(listing, None) is None  # a refusal naming no device: every idle server may go
