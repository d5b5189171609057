"""OpenAI Responses and /v1/rerank through the proxy, on real engines loaded on first request:
llama-server CPU serves both (rerank when loaded as a reranker); an engine or a server without the
route answers a clear OpenAI-shaped 404/501 that names the backend and what to load."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.server.conftest import on_server_loop
from tests.server.llama_server import ENGINES_DIR, needs_llama_server

pytestmark = [pytest.mark.engine, needs_llama_server]


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["XGen"]["engines_dir"] = str(ENGINES_DIR)
    jp_server_config["XGen"]["presets"] = {
        "chat-ls": {"model": "default", "backend": "llama-server-cpu", "n_ctx": 1024},
        "ranker": {"model": "default", "server_type": "rerank", "n_ctx": 1024},
        "chat-lcp": {"model": "default", "backend": "llama-cpp-python", "n_ctx": 1024},
    }
    return jp_server_config


@pytest.fixture
def base(jp_http_port: int, jp_base_url: str) -> str:
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen/v1"


@pytest.fixture
def client(jp_serverapp: Any, base: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base, api_key=jp_serverapp.identity_provider.token, max_retries=0, timeout=120)


@on_server_loop
async def test_openai_responses_streaming_and_not(api: Any, client: openai.AsyncOpenAI) -> None:
    reply = await client.responses.create(model="chat-ls", input="Say hi.", max_output_tokens=8)
    assert reply.object == "response" and reply.status == "completed", reply
    assert reply.output and reply.usage is not None and reply.usage.output_tokens > 0
    stream = await client.responses.create(model="chat-ls", input="Count: 1, 2,", max_output_tokens=8, stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
    assert "response.output_text.delta" in kinds
    code, server = await api("GET", "servers", "chat-ls")
    assert code == 200 and server["backend"] == "llama-server-cpu" and len(server["attempts"]) == 1


@on_server_loop
async def test_rerank_on_a_reranker_and_a_clear_501_elsewhere(api: Any, jp_serverapp: Any, base: str) -> None:
    headers = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    body = {"query": "a cat", "documents": ["cats purr", "stock prices", "kittens"], "top_n": 3}
    async with httpx.AsyncClient(timeout=120, trust_env=False) as http:
        r = await http.post(f"{base}/rerank", json={"model": "ranker", **body}, headers=headers)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert sorted(x["index"] for x in results) == [0, 1, 2]
        assert all(isinstance(x["relevance_score"], float) for x in results)
        code, server = await api("GET", "servers", "ranker")
        assert code == 200 and server["plan"]["settings"]["rerank"] and "--reranking" in server["plan"]["argv"], server["plan"]
        # A chat server has no reranking: the engine's 501, said with what to load.
        r = await http.post(f"{base}/rerank", json={"model": "chat-ls", **body}, headers=headers)
    assert r.status_code == 501, r.text
    err = r.json()["error"]
    assert err["code"] == "route_not_served" and err["type"] == "not_supported_error", err
    assert "(llama-server-cpu)" in err["message"] and 'server_type "rerank"' in err["message"], err


@on_server_loop
async def test_an_engine_without_the_routes_answers_404_naming_the_backend(
        api: Any, client: openai.AsyncOpenAI, jp_serverapp: Any, base: str) -> None:  # api: jp_fetch, so it listens
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.create(model="chat-lcp", input="Say hi.", max_output_tokens=4)
    err = info.value.body
    assert isinstance(err, dict) and err["code"] == "route_not_served", err
    assert "(llama-cpp-python) does not serve /v1/responses" in err["message"], err
    assert "llama-server" in err["message"]
    with pytest.raises(openai.NotFoundError):  # streaming: the same 404 before any event
        stream = await client.responses.create(model="chat-lcp", input="x", max_output_tokens=4, stream=True)
        async for _ in stream:
            pass
    headers = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        r = await http.post(f"{base}/rerank", json={"model": "chat-lcp", "query": "q", "documents": ["d"]},
                            headers=headers)
    assert r.status_code == 404 and "(llama-cpp-python) does not serve /v1/rerank" in r.json()["error"]["message"]
