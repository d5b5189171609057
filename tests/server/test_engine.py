"""The real default engine behind the extension: load, events, proxy (openai client), logs, unload."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import openai
import psutil
import pytest

from tests.conftest import pid_alive
from tests.server.conftest import next_json, on_server_loop, wait_state

pytestmark = pytest.mark.engine


@pytest.fixture
def client(jp_serverapp: Any, jp_http_port: int, jp_base_url: str) -> openai.AsyncOpenAI:
    """The official client, with the Jupyter token as its API key (sent as ``Bearer``)."""
    return openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen/v1",
        api_key=jp_serverapp.identity_provider.token,
        max_retries=0,
        timeout=60,
    )


async def load(api: Any, jp_ws_fetch: Any, body: dict[str, Any]) -> dict[str, Any]:
    ws = await jp_ws_fetch("xgen", "api", "events", params={"interval": "0"})
    assert (await next_json(ws))["kind"] == "hello"
    code, server = await api("POST", "servers", body=body)
    assert code == 202 and server["state"] in ("planned", "starting", "loading"), server
    ready = await wait_state(ws, server["name"], {"ready", "failed", "crashed"})
    ws.close()
    assert ready["state"] == "ready", ready.get("error")
    return ready


def engines() -> list[psutil.Process]:
    out = []
    for p in psutil.Process(os.getpid()).children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
            if "llama_cpp.server" in cmd or "llama_cpp_entry" in cmd:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@on_server_loop
async def test_chat_streams_through_the_proxy(
    api: Any, jp_ws_fetch: Any, client: openai.AsyncOpenAI, jp_serverapp: Any
) -> None:
    server = await load(api, jp_ws_fetch, {"model": "default", "name": "chat"})
    # Loaded servers, then the catalog's names not loaded (issue 15: a request for one loads it).
    assert [(m.id, m.model_extra["loaded"]) for m in (await client.models.list()).data] == [
        ("chat", True), ("default", False)]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stream = await client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "Count from 1 to 30, separated by commas."}],
        max_tokens=60,
        temperature=0,
        stream=True,
    )
    arrivals: list[float] = []
    text = ""
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(loop.time() - t0)
            text += chunk.choices[0].delta.content
    assert len(arrivals) >= 10 and text.strip(), text
    # Streamed, not buffered: the first token came long before the last.
    assert arrivals[0] < 0.5 * arrivals[-1], arrivals
    # A non-streamed call works as well; the engine's key is in no answer.
    reply = await client.completions.create(model="chat", prompt="The capital of France is", max_tokens=5)
    assert reply.choices[0].text
    code, detail = await api("GET", "servers", "chat")
    key = jp_serverapp.web_app.settings["xgen_core"].manager.get("chat").api_key
    assert code == 200 and detail["pid"] == server["pid"] and key not in json.dumps(detail)


@on_server_loop
async def test_embeddings(api: Any, jp_ws_fetch: Any, client: openai.AsyncOpenAI) -> None:
    await load(api, jp_ws_fetch, {"model": "default", "kind": "embedding", "name": "emb"})
    out = await client.embeddings.create(model="emb", input=["hello world", "xgen in jupyter"])
    assert len(out.data) == 2 and all(len(d.embedding) == 640 for d in out.data)  # gemma-3-270m width


@on_server_loop
async def test_log_websocket_history_then_live(
    api: Any, jp_ws_fetch: Any, client: openai.AsyncOpenAI
) -> None:
    await load(api, jp_ws_fetch, {"model": "default", "name": "logs"})
    code, rest = await api("GET", "servers", "logs", "logs", params={"tail": "5"})
    assert code == 200 and len(rest["lines"]) == 5
    last = rest["lines"][-1]["seq"]
    ws = await jp_ws_fetch("xgen", "api", "servers", "logs", "logs", params={"tail": "5"})
    history = [(await next_json(ws, 5))["line"] for _ in range(5)]
    assert [ln["seq"] for ln in history] == [ln["seq"] for ln in rest["lines"]]
    await client.completions.create(model="logs", prompt="Hi", max_tokens=2)  # the engine logs the request
    live = (await next_json(ws, 10))["line"]
    assert live["seq"] > last and live["text"]
    ws.close()


@on_server_loop
async def test_delete_stops_the_process_and_then_503(
    api: Any, jp_ws_fetch: Any, client: openai.AsyncOpenAI
) -> None:
    server = await load(api, jp_ws_fetch, {"model": "default", "name": "gone"})
    assert pid_alive(server["pid"])
    code, stopped = await api("DELETE", "servers", "gone")
    assert code == 200 and stopped["state"] == "stopped"
    assert not pid_alive(server["pid"])
    with pytest.raises(openai.InternalServerError) as err:
        await client.completions.create(model="gone", prompt="Hi", max_tokens=2)
    assert err.value.status_code == 503 and "not ready" in str(err.value)
    with pytest.raises(openai.NotFoundError) as nf:
        await client.completions.create(model="never-loaded", prompt="Hi", max_tokens=2)
    assert "does not exist" in str(nf.value)
    with pytest.raises(openai.BadRequestError):
        await client.post("/completions", body={"prompt": "no model"}, cast_to=object)


@on_server_loop
async def test_second_post_while_loading_starts_no_second_engine(api: Any, jp_ws_fetch: Any) -> None:
    body = {"model": "default", "name": "once"}
    (c1, s1), (c2, s2) = await asyncio.gather(
        api("POST", "servers", body=body), api("POST", "servers", body=body)
    )
    assert c1 == c2 == 202 and s1["created_at"] == s2["created_at"]
    ready = await load(api, jp_ws_fetch, body)  # a third POST, joining the same server
    assert ready["created_at"] == s1["created_at"] and len(ready["attempts"]) == 1
    assert [p.pid for p in engines()] == [ready["pid"]]
    code, err = await api("POST", "servers", body={"model": "default", "name": "once", "kind": "embedding"})
    assert code == 409 and err["error"] == "ServerConflict"


@on_server_loop
async def test_engine_dying_mid_stream_ends_the_stream(
    api: Any, jp_ws_fetch: Any, client: openai.AsyncOpenAI
) -> None:
    server = await load(api, jp_ws_fetch, {"model": "default", "name": "doomed"})
    stream = await client.chat.completions.create(
        model="doomed",
        messages=[{"role": "user", "content": "Write a long story about a lighthouse."}],
        max_tokens=400,
        stream=True,
    )
    got = 0
    t0 = time.monotonic()
    with pytest.raises(openai.APIError) as err:
        async for _ in stream:
            got += 1
            if got == 3:
                os.kill(server["pid"], signal.SIGKILL)
    assert got >= 3 and time.monotonic() - t0 < 30
    assert "mid-stream" in str(err.value)


@on_server_loop
async def test_extension_shutdown_stops_every_engine(api: Any, jp_ws_fetch: Any, jp_serverapp: Any) -> None:
    a = await load(api, jp_ws_fetch, {"model": "default", "name": "a"})
    b = await load(api, jp_ws_fetch, {"model": "default", "name": "b", "kind": "embedding"})
    assert pid_alive(a["pid"]) and pid_alive(b["pid"])
    await jp_serverapp.cleanup_extensions()
    assert not pid_alive(a["pid"]) and not pid_alive(b["pid"])
    assert engines() == []
