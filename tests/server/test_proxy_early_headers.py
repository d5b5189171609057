"""A streamed answer's status and headers leave the proxy when the engine's do (upstream.relay), so
the client reads them while the engine works on the prompt, not on the way to the first token. Real
llama-server, real Jupyter server: a long prompt makes the gap large enough to see."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.server.conftest import on_server_loop
from tests.server.llama_server import llama_server_only, needs_llama_server

pytestmark = [pytest.mark.engine, needs_llama_server]


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    return llama_server_only(jp_server_config)


@on_server_loop
async def test_headers_reach_the_client_before_the_first_token(jp_fetch: Any, jp_serverapp: Any, jp_http_port: int,
                                                               jp_base_url: str) -> None:
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen/v1/chat/completions"
    auth = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    async with httpx.AsyncClient(timeout=300, trust_env=False) as http:
        # Loaded on this first request; the next one is warm.
        r = await http.post(url, headers=auth, json={"model": "default", "max_tokens": 1,
                                                      "messages": [{"role": "user", "content": "Hi"}]})
        assert r.status_code == 200, r.text
        words = " ".join(f"w{i}" for i in range(700))  # some 1,400 tokens: a prompt the engine takes a while on
        body = {"model": "default", "max_tokens": 2, "stream": True, "cache_prompt": False,
                "messages": [{"role": "user", "content": f"Repeat the last word: {words}"}]}
        t0 = time.perf_counter()
        async with http.stream("POST", url, headers=auth, json=body) as s:
            headers_at = time.perf_counter() - t0
            assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
            first_at = None
            async for line in s.aiter_lines():
                if first_at is None and line.startswith("data: {") and '"content":"' in line.replace(" ", ""):
                    first_at = time.perf_counter() - t0
    assert first_at is not None
    # Before the change the headers came with the first token (headers_at ≈ first_at).
    assert first_at - headers_at > 0.1 and headers_at < first_at / 2, (headers_at, first_at)
