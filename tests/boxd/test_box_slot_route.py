"""The box service's slot grant carries what its ``route`` op answers (endpoint and key of the engine
as it is when the slot is granted), so a warm request through a Jupyter server that is the service's
client makes one call on the socket, not three (benchmarks/box_overhead.py). Real service, real
engine (the default model in the shared folder, loaded by root's Jupyter-less client)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from xgen_jupyter.boxd.client import BoxClient
from xgen_jupyter.boxd.slot_client import RemoteSlot

pytestmark = pytest.mark.engine


def test_the_grant_brings_the_route(box_factory, shared_models):
    box = box_factory()
    client = BoxClient(box.socket)
    client.call("load", request={"model": str(next(shared_models.glob("*.gguf"))), "name": "warm"})
    deadline = time.monotonic() + 120
    while client.call("get", name="warm")["state"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        route = client.call("route", model="warm")

        async def grant() -> dict:
            slot = RemoteSlot(box.socket, "warm")
            await slot.acquire("root")
            try:
                assert slot.route is not None
                return slot.route
            finally:
                slot.release()

        granted = asyncio.run(grant())
        assert granted == route and granted["api_key"] and granted["endpoint"].startswith("http://127.0.0.1:")
        # The key works on the engine: the grant's route is usable as the proxy uses it.
        r = httpx.get(f"{granted['endpoint']}/v1/models", headers={"Authorization": f"Bearer {granted['api_key']}"},
                      trust_env=False, timeout=30)
        assert r.status_code == 200
    finally:
        client.call("unload", name="warm")
