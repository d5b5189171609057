"""POST xgen/api/servers/{name}/share with ``rotate`` through a real Jupyter server (in-process core,
the real default engine): a bad value is a 400 before anything restarts; ``true`` restarts the
engine (a new process, under a new key) and keeps the server's name."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.server.conftest import on_server_loop

pytestmark = pytest.mark.engine


async def ready(api: Any, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status, body = await api("GET", "servers", name)
        assert status == 200, body
        if body["state"] in ("ready", "failed", "crashed", "stopped"):
            assert body["state"] == "ready", body.get("error")
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)


@on_server_loop
async def test_share_rotate_over_rest(api: Any) -> None:
    status, body = await api("POST", "servers", body={"model": "default", "name": "chat", "n_ctx": 512,
                                                      "n_threads": 1, "backend": "llama-cpp-python"})
    assert status in (200, 201, 202), body
    first = await ready(api, "chat")
    status, body = await api("POST", "servers", "chat", "share", body={"users": [], "rotate": "yes"})
    assert status == 400 and "rotate" in body["message"], body
    assert (await ready(api, "chat"))["pid"] == first["pid"]
    status, body = await api("POST", "servers", "chat", "share", body={"users": [], "rotate": True})
    assert status == 200 and body["shared_with"] == [], body
    second = await ready(api, "chat")
    assert second["pid"] != first["pid"], (first, second)
