"""Accounting of what test_usage_route_engine.py leaves out, with the real default engine (llama-server on
the CPU) behind a real Jupyter server: a chat stream whose client did not ask for usage (LiteLLM, so
Jupyter AI) is counted with the engine's own usage numbers, and the client sees no extra event; a client
that asks still gets its usage event; a request to a server another user shared (``owner/name``) is
booked to the requester and to the API key it came with."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import on_server_loop
from tests.server.test_api_keys import make_key
from tests.server.test_api_keys_engine import wait_counted
from tests.server.users_idp import TestUsers
from xgen_jupyter.core.config import CoreConfig, default_engines_dir
from xgen_jupyter.core.service import XGenCore

pytestmark = pytest.mark.engine

ALICE = {"Authorization": "token alice-token"}
ENGINES_DIR = default_engines_dir()  # read now: the Jupyter fixtures give the server a HOME of its own
CHAT = {"messages": [{"role": "user", "content": "Count to three."}], "max_tokens": 5, "temperature": 0}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["XGen"]["engines_dir"] = str(ENGINES_DIR)  # the default engine: llama-server
    jp_server_config["ServerApp"]["identity_provider_class"] = TestUsers
    return jp_server_config


def events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: {")]


async def usage_rows(http: httpx.AsyncClient, base: str) -> dict[tuple[str, str], tuple[int, int, int]]:
    box = (await http.get(f"{base}/api/usage", params={"scope": "box"}, headers=ALICE)).json()
    return {(r["user"], r["model"]): (r["requests"], r["prompt_tokens"], r["completion_tokens"]) for r in box["rows"]}


@on_server_loop
async def test_a_stream_without_include_usage_is_counted_and_sees_no_usage_event(
        api: Any, jp_http_port: int, jp_base_url: str) -> None:
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen"
    key = await make_key(api, "litellm")
    bearer = {"Authorization": f"Bearer {key['key']}"}
    chat = {**CHAT, "model": "default"}
    async with httpx.AsyncClient(timeout=180, trust_env=False) as http:
        plain = (await http.post(f"{base}/v1/chat/completions", json=chat, headers=bearer)).json()["usage"]
        # ignore_eos: the engine writes max_tokens tokens, so the count the books must hold is known.
        bare = await http.post(f"{base}/v1/chat/completions", headers=bearer,
                               json={**chat, "stream": True, "ignore_eos": True})
        asked = await http.post(f"{base}/v1/chat/completions", headers=bearer,
                                json={**chat, "stream": True, "stream_options": {"include_usage": True}})
        entry = await wait_counted(api, key["id"], 3)
        rows = await usage_rows(http, base)
    servers = (await api("GET", "servers"))[1]["servers"]
    assert [s["backend"] for s in servers] == ["llama-server-cpu"], servers
    # The client that did not ask: every event has choices, none has usage, and the stream ends as before.
    assert bare.status_code == 200 and bare.content.rstrip().endswith(b"data: [DONE]"), bare.content[-500:]
    got = events(bare.content)
    assert got and all(e["choices"] for e in got) and not any("usage" in e for e in got), got[-2:]
    assert "".join((e["choices"][0].get("delta") or {}).get("content") or "" for e in got)
    # The client that asked: its usage event (no choices) before [DONE], as llama-server sends it.
    last = events(asked.content)[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0, last
    # Counted from the engine's usage: the prompt as the plain answer's (same messages), max_tokens written.
    expect = (3, 2 * plain["prompt_tokens"] + last["usage"]["prompt_tokens"],
              plain["completion_tokens"] + chat["max_tokens"] + last["usage"]["completion_tokens"])
    # An API key counts tokens from usage objects alone: without the added include_usage its stream had none.
    assert (entry["requests"], entry["prompt_tokens"], entry["completion_tokens"]) == expect, entry
    assert rows[(getpass.getuser(), "default")] == expect, rows


@pytest.fixture
def carols_core(tmp_path: Path) -> Iterator[XGenCore]:
    """Another user's core on the same box registry, in this process (as carol's Jupyter server would be)."""
    core = XGenCore(CoreConfig(state_dir=tmp_path / "carol-state", shared_dir=tmp_path / "xgen-shared", user="carol"))
    try:
        yield core
    finally:
        core.shutdown()


@on_server_loop
async def test_a_request_to_a_shared_server_is_booked_to_the_requester(
        api: Any, jp_http_port: int, jp_base_url: str, carols_core: XGenCore) -> None:
    def carol_shares() -> None:
        carols_core.load({"model": "default", "name": "chat", "n_ctx": 512, "n_threads": 1})
        carols_core.manager.wait("chat", timeout=120)
        assert carols_core.manager.get("chat").state == "ready"
        carols_core.share("chat", [getpass.getuser()])  # this Jupyter server's user

    await asyncio.to_thread(carol_shares)
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen"
    key = await make_key(api, "script")
    chat = {**CHAT, "model": "carol/chat"}
    async with httpx.AsyncClient(timeout=180, trust_env=False) as http:
        by_alice = await http.post(f"{base}/v1/chat/completions", json=chat, headers=ALICE)
        by_key = await http.post(f"{base}/v1/chat/completions", json=chat,
                                 headers={"Authorization": f"Bearer {key['key']}"})
        assert by_alice.status_code == 200 and by_key.status_code == 200, (by_alice.text, by_key.text)
        entry = await wait_counted(api, key["id"], 1)
        rows = await usage_rows(http, base)
    a, k = by_alice.json()["usage"], by_key.json()["usage"]
    assert rows[("alice", "carol/chat")] == (1, a["prompt_tokens"], a["completion_tokens"]), rows
    assert rows[(getpass.getuser(), "carol/chat")] == (1, k["prompt_tokens"], k["completion_tokens"]), rows
    assert (entry["requests"], entry["prompt_tokens"], entry["completion_tokens"]) == \
        (1, k["prompt_tokens"], k["completion_tokens"]), entry
    # Nothing booked under carol's bare server name but the memory her engine holds (she loaded it).
    assert not any(n for (_, m), (n, _, _) in rows.items() if m == "chat"), rows
