"""Anthropic Messages through the proxy: the official anthropic client, streaming and not, on the
real llama-server CPU build (which serves /v1/messages natively), loaded on first request."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import on_server_loop
from xgen_jupyter.core.builds.install import installed_engines
from xgen_jupyter.core.config import default_engines_dir

anthropic = pytest.importorskip("anthropic")
ENGINES_DIR = default_engines_dir()  # read now: the Jupyter fixtures give the server a HOME of its own
pytestmark = [pytest.mark.engine, pytest.mark.skipif("llama-server-cpu" not in installed_engines(ENGINES_DIR),
                                                     reason="llama-server-cpu not built: run scripts/ci-engines.sh")]


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
