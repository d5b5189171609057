"""Anthropic Messages through the proxy: the official anthropic client, streaming and not, on the
real llama-server CPU build (which serves /v1/messages natively), loaded on first request."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import on_server_loop
from tests.server.llama_server import ENGINES_DIR, needs_llama_server

anthropic = pytest.importorskip("anthropic")
pytestmark = [pytest.mark.engine, needs_llama_server]


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["XGen"]["engines_dir"] = str(ENGINES_DIR)
    jp_server_config["XGen"]["presets"] = {"claude-ish": {"model": "default", "backend": "llama-server-cpu",
                                                          "n_ctx": 1024}}
    return jp_server_config


@on_server_loop
async def test_anthropic_client_streaming_and_not(jp_fetch: Any, jp_serverapp: Any, jp_http_port: int,
                                                  jp_base_url: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen",
                                      auth_token=jp_serverapp.identity_provider.token, api_key=None,
                                      max_retries=0, timeout=120)
    reply = await client.messages.create(model="claude-ish", max_tokens=8,
                                         messages=[{"role": "user", "content": "Say hi."}])
    assert reply.type == "message" and reply.content and reply.content[0].text
    assert reply.usage.output_tokens > 0
    text = ""
    async with client.messages.stream(model="claude-ish", max_tokens=8,
                                      messages=[{"role": "user", "content": "Count: 1, 2,"}]) as stream:
        async for delta in stream.text_stream:
            text += delta
    assert text
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.create(model="claude-typo", max_tokens=4, messages=[{"role": "user", "content": "x"}])
