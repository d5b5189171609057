"""What Jupyter AI and jupyterlite-ai send, through a real Jupyter server's proxy: a chat that
carries ``tools``, to the default model (no chat template in its GGUF) on the real llama-server,
loaded on that first request. It failed with "tools param requires --jinja flag" before xgen gave
template-less GGUFs a Jinja copy of their chat format."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.server.conftest import on_server_loop
from tests.server.llama_server import llama_server_only, needs_llama_server

pytestmark = [pytest.mark.engine, needs_llama_server]
TOOLS: Any = [{"type": "function", "function": {
    "name": "get_time", "description": "The current time", "parameters": {"type": "object", "properties": {}}}}]


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    return llama_server_only(jp_server_config)


@on_server_loop
async def test_a_chat_with_tools_is_answered_through_the_proxy(
    api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str
) -> None:
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen/v1",
                                api_key=jp_serverapp.identity_provider.token, max_retries=0, timeout=120)
    messages: Any = [{"role": "user", "content": "Name three colors."}]
    out = await client.chat.completions.create(model="default", messages=messages, tools=TOOLS, max_tokens=12)
    message = out.choices[0].message
    assert message.content or message.tool_calls
    stream = await client.chat.completions.create(model="default", messages=messages, tools=TOOLS, max_tokens=8,
                                                  stream=True)
    chunks = [c async for c in stream]
    assert chunks and chunks[-1].choices[0].finish_reason in ("length", "stop", "tool_calls")
    code, server = await api("GET", "servers", "default")
    assert code == 200 and server["backend"] == "llama-server-cpu"
    argv, rules = server["plan"]["argv"], {r["rule"] for r in server["plan"]["reasons"]}
    assert "--jinja" in argv and "--chat-template-file" in argv and "--no-jinja" not in argv
    assert {"chat-template-missing", "jinja-chat-format"} <= rules
