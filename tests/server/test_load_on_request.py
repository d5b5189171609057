"""Load on first request through a real Jupyter server and the real default engine."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.model_files import GEMMA
from tests.server.conftest import on_server_loop

pytestmark = pytest.mark.engine


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    jp_server_config["XGen"]["presets"] = {"small": {"model": "default", "n_ctx": 512, "n_parallel": 1}}
    shared = tmp_path / "xgen-shared"
    shared.mkdir(exist_ok=True)
    # The administrator's file: one good preset, one with an error (reported; the others still served).
    (shared / "presets.json").write_text(json.dumps({"tiny": {"model": "default", "n_ctx": 256},
                                                     "typo": {"model": "default", "n_ctx": "big"}}))
    return jp_server_config


@pytest.fixture
def client(jp_serverapp: Any, jp_http_port: int, jp_base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen/v1",
                              api_key=jp_serverapp.identity_provider.token, max_retries=0, timeout=120)


async def first_token(client: openai.AsyncOpenAI, model: str) -> str:
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hi."}], max_tokens=4, temperature=0, stream=True)
    text = ""
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    return text


def listed(models: Any) -> dict[str, Any]:
    return {m.id: (m.model_extra["loaded"], m.model_extra.get("catalog")) for m in models.data}


@on_server_loop
async def test_concurrent_first_requests_share_one_load(api: Any, client: openai.AsyncOpenAI) -> None:
    assert (await api("GET", "servers"))[1]["servers"] == []
    # The catalog: default, the presets (c.XGen.presets and the file's good one), none loaded.
    assert listed(await client.models.list()) == {"default": (False, "default"), "small": (False, "preset"),
                                                  "tiny": (False, "preset")}
    texts = await asyncio.gather(*(first_token(client, "default") for _ in range(3)))
    assert all(t for t in texts), texts  # each streaming client got its tokens once the engine was ready
    code, body = await api("GET", "servers")
    servers = body["servers"]
    assert code == 200
    assert [(s["name"], s["state"]) for s in servers] == [("default", "ready")]
    assert len(servers[0]["attempts"]) == 1  # one load, shared by the three requests
    assert listed(await client.models.list())["default"] == (True, None)
    # Now warm: a plain (not streamed) request goes straight through.
    reply = await client.chat.completions.create(model="default", messages=[{"role": "user", "content": "Hi"}],
                                                 max_tokens=2)
    assert reply.choices[0].message is not None


@on_server_loop
async def test_unknown_name_is_404_in_openai_shape_listing_close_names(client: openai.AsyncOpenAI, api: Any) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="defualt", messages=[{"role": "user", "content": "x"}])
    err = info.value.body
    assert isinstance(err, dict) and err["code"] == "model_not_found", err
    assert "'default'" in err["message"], err["message"]
    assert (await api("GET", "servers"))[1]["servers"] == []  # nothing was started


@on_server_loop
async def test_a_failed_load_answers_with_the_classified_cause(model_dir: Path, client: openai.AsyncOpenAI,
                                                                api: Any) -> None:
    # A GGUF of an architecture no engine knows: xgen plans it, the engine refuses to read it.
    data, head = GEMMA.read_bytes(), 8 * 1024 * 1024
    (model_dir / "unknown_arch.gguf").write_bytes(data[:head].replace(b"gemma3", b"gemmaq") + data[head:])
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="unknown_arch", messages=[{"role": "user", "content": "x"}])
    err = info.value.body
    assert isinstance(err, dict), err
    assert info.value.status_code == 503 and err["code"] == "model_load_failed", (info.value.status_code, err)
    assert err["cause"]["id"] and err["cause"]["summary"] in err["message"], err
    code, body = await api("GET", "servers", "unknown_arch")
    assert code == 200 and body["state"] == "failed", body
    assert json.dumps(err).find(body["error"]["summary"]) >= 0


@on_server_loop
async def test_presets_load_by_name_and_a_bad_one_says_why(client: openai.AsyncOpenAI, api: Any) -> None:
    assert await first_token(client, "small")
    assert await first_token(client, "tiny")
    code, small = await api("GET", "servers", "small")
    assert code == 200 and small["plan"]["settings"]["n_ctx"] == 512 and small["plan"]["settings"]["n_parallel"] == 1
    assert (await api("GET", "servers", "tiny"))[1]["plan"]["settings"]["n_ctx"] == 256
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="typo", messages=[{"role": "user", "content": "x"}])
    err = info.value.body
    assert isinstance(err, dict) and "presets.json: preset 'typo'" in err["message"] and "n_ctx" in err["message"]


@on_server_loop
async def test_a_stream_hears_keep_alive_comments_while_its_model_loads(
        monkeypatch: Any, model_dir: Path, client: openai.AsyncOpenAI, jp_serverapp: Any, jp_http_port: int,
        jp_base_url: str, api: Any) -> None:  # api: jp_fetch, so the server listens
    from xgen_jupyter.server import scheduling

    monkeypatch.setattr(scheduling, "KEEPALIVE_AFTER", 0.01)
    monkeypatch.setattr(scheduling, "KEEPALIVE_EVERY", 0.1)
    body = {"model": "default", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": True}
    headers = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen/v1/chat/completions"
    async with httpx.AsyncClient(timeout=120, trust_env=False) as http, \
            http.stream("POST", url, json=body, headers=headers) as r:
        lines = [ln async for ln in r.aiter_lines() if ln]
    assert r.status_code == 200 and lines[0] == ": xgen: loading the model", lines[:3]
    assert any(ln.startswith("data: {") for ln in lines) and lines[-1] == "data: [DONE]"
    # A load that fails after the stream began ends it with an error event (the client raises).
    data, head = GEMMA.read_bytes(), 8 * 1024 * 1024
    (model_dir / "broken.gguf").write_bytes(data[:head].replace(b"gemma3", b"gemmaq") + data[head:])
    with pytest.raises(openai.APIError, match="Loading 'broken' failed"):
        stream = await client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "x"}],
                                                      stream=True)
        async for _ in stream:
            pass
