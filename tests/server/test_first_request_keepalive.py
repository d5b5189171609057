"""A plain (not streamed) first request is kept alive while its model loads and until the cold engine's
first answer begins (seconds more on llama-cpp-python): interim "100 Continue" responses restart the
client's read timeout, and the final status stays open, so a failed load is still a 503 the openai
client raises. Real loads of the default model on llama-cpp-python (1-4 s here, several times the
clients' read timeout below), real Jupyter server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.model_files import GEMMA
from tests.server.conftest import on_server_loop

pytestmark = pytest.mark.engine
# The clients' read timeout: every load below takes longer. The clients run in a thread of their own
# (the sync openai client: a socket timeout), not on the server's IOLoop as these tests do.
READ_TIMEOUT = 0.25  # above twice the keep-alive interval (0.1 s), below a quiet box's 0.8 s load


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["XGen"]["presets"] = {
        name: {"model": "default", "backend": "llama-cpp-python", "n_ctx": 512} for name in ("kept", "unkept")}
    return jp_server_config


@pytest.fixture
def fast_keepalive(monkeypatch: Any) -> None:
    from xgen_jupyter.server import scheduling

    monkeypatch.setattr(scheduling, "KEEPALIVE_AFTER", 0.05)
    monkeypatch.setattr(scheduling, "KEEPALIVE_EVERY", 0.1)


def short_client(jp_serverapp: Any, port: int, base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}{base_url}xgen/v1", max_retries=0,
                              api_key=jp_serverapp.identity_provider.token,
                              timeout=httpx.Timeout(READ_TIMEOUT, connect=5.0))


async def raw_post(port: int, path: str, token: str, body: dict[str, Any]) -> tuple[int, int, dict[str, Any]]:
    """(interim 100s seen, final status, JSON body) of one HTTP/1.1 POST, read off the socket."""
    data = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: token {token}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
                 .encode() + data)
    raw = await asyncio.wait_for(reader.read(-1), 120)
    writer.close()
    interim = 0
    while raw.startswith(b"HTTP/1.1 1"):
        head, _, raw = raw.partition(b"\r\n\r\n")
        interim += 1
    head, _, payload = raw.partition(b"\r\n\r\n")
    return interim, int(head.split()[1]), json.loads(payload)


@on_server_loop
async def test_a_plain_first_request_outlives_the_clients_read_timeout(
        fast_keepalive: None, api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str) -> None:
    client = short_client(jp_serverapp, jp_http_port, jp_base_url)
    t0 = time.monotonic()
    reply = await asyncio.to_thread(client.chat.completions.create, model="kept", max_tokens=2,
                                    messages=[{"role": "user", "content": "Hi"}])
    waited = time.monotonic() - t0
    assert reply.choices and reply.choices[0].message is not None
    assert waited > 2 * READ_TIMEOUT, f"the load took {waited:.2f} s: too fast to prove anything"
    # Without the interim responses the same client gives up while its model loads.
    from xgen_jupyter.server import scheduling

    scheduling.KEEPALIVE_AFTER = 1000.0  # monkeypatch restores it
    with pytest.raises(openai.APITimeoutError):
        await asyncio.to_thread(client.chat.completions.create, model="unkept", max_tokens=2,
                                messages=[{"role": "user", "content": "Hi"}])


@on_server_loop
async def test_a_failed_load_after_interim_responses_is_still_a_503_with_its_cause(
        fast_keepalive: None, model_dir: Path, api: Any, jp_serverapp: Any, jp_http_port: int,
        jp_base_url: str) -> None:
    data, head = GEMMA.read_bytes(), 8 * 1024 * 1024
    (model_dir / "broken.gguf").write_bytes(data[:head].replace(b"gemma3", b"gemmaq") + data[head:])
    token = jp_serverapp.identity_provider.token
    body = {"model": "broken", "messages": [{"role": "user", "content": "x"}]}
    interim, status, err = await raw_post(jp_http_port, f"{jp_base_url}xgen/v1/chat/completions", token, body)
    assert interim >= 1 and status == 503, (interim, status, err)
    assert err["error"]["code"] == "model_load_failed" and err["error"]["cause"]["summary"], err
    # The openai client raises it (its model failed already: answered at once, no interim needed).
    with pytest.raises(openai.APIStatusError, match="Loading 'broken' failed"):
        await asyncio.to_thread(short_client(jp_serverapp, jp_http_port, jp_base_url).chat.completions.create,
                                model="broken", messages=[{"role": "user", "content": "x"}])
