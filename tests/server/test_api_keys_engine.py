"""An API key with the real default engine: the ``openai`` client works with it unchanged, a key
made for another model gets a 403, usage is counted per key, revoking stops it at once, and the
key is in no log (Jupyter's, xgen's, the engine's) and no process's command line or environment."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import psutil
import pytest

from tests.server.conftest import on_server_loop
from tests.server.test_api_keys import make_key
from tests.server.test_engine import load

pytestmark = pytest.mark.engine


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def every_log(jp_serverapp: Any) -> Iterator[Collect]:
    """Every logger in the process at DEBUG, into one list (Jupyter's access log and errors included)."""
    handler = Collect()
    names = [None, "tornado.access", "tornado.application", "tornado.general", "xgen", *logging.root.manager.loggerDict]
    loggers = {logging.getLogger(n) for n in names} | {jp_serverapp.log}
    levels = {lg: lg.level for lg in loggers}
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler
    for lg, level in levels.items():
        lg.removeHandler(handler)
        lg.setLevel(level)


def client_with(key: str, port: int, base: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}{base}xgen/v1", api_key=key, max_retries=0, timeout=120)


async def wait_counted(api: Any, key_id: str, requests: int) -> dict[str, Any]:
    for _ in range(100):  # counted after the answer, off the IOLoop
        (entry,) = [k for k in (await api("GET", "keys"))[1]["keys"] if k["id"] == key_id]
        if entry["requests"] >= requests:
            return entry
        await asyncio.sleep(0.05)
    raise AssertionError(f"key {key_id} counted {entry['requests']} requests, not {requests}")


def secret_seen(secret: str) -> list[str]:
    """Where the secret shows in a command line or environment of any process we can read."""
    found = [line for line in subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True,
                                             check=True).stdout.splitlines() if secret in line]
    for p in psutil.process_iter():
        try:
            if any(secret in v for v in p.environ().values()):
                found.append(f"environ of {p.pid}")
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            pass
    return found


@on_server_loop
async def test_openai_client_with_a_key(api: Any, jp_ws_fetch: Any, jp_serverapp: Any, jp_http_port: int,
                                        jp_base_url: str, every_log: Collect, capfd: Any) -> None:
    await load(api, jp_ws_fetch, {"model": "default", "name": "chat"})
    mine, other = await make_key(api, "script", ["chat"]), await make_key(api, "elsewhere", ["other"])
    client = client_with(mine["key"], jp_http_port, jp_base_url)
    assert [m.id for m in (await client.models.list()).data] == ["chat"]
    reply = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Say hi."}],
                                                 max_tokens=8, temperature=0)
    assert reply.choices[0].message.content and reply.usage and reply.usage.completion_tokens > 0
    entry = await wait_counted(api, mine["id"], 2)
    assert (entry["requests"], entry["prompt_tokens"], entry["completion_tokens"]) == (
        2, reply.usage.prompt_tokens, reply.usage.completion_tokens), entry
    assert entry["last_used"] >= entry["created_at"]
    text = ""
    stream = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Count: 1, 2,"}],
                                                  max_tokens=8, temperature=0, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert text
    assert (await wait_counted(api, mine["id"], 3))["requests"] == 3

    elsewhere = client_with(other["key"], jp_http_port, jp_base_url)
    assert (await elsewhere.models.list()).data == []  # it opens no loaded model
    with pytest.raises(openai.PermissionDeniedError, match="does not open the model 'chat'"):
        await elsewhere.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}],
                                                max_tokens=2)
    assert (await api("DELETE", "keys", mine["id"]))[0] == 200
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()

    # Never in a log, a log file, a command line or an environment.
    out, err = capfd.readouterr()
    assert len(every_log.lines) > 10  # the collector saw the requests
    assert any("xgen/v1/chat/completions" in line for line in every_log.lines)
    files = [p for d in ("state_dir", "shared_dir") for p in Path(jp_serverapp.config["XGen"][d]).rglob("*")
             if p.is_file()]
    assert any(p.suffix == ".log" for p in files), files
    for made in (mine, other):
        secret = made["key"].split("-", 2)[2]
        assert secret not in out + err
        assert not [line for line in every_log.lines if secret in line]
        assert not [p for p in files if secret.encode() in p.read_bytes()]
        assert not secret_seen(secret)
    assert os.environ.get("OPENAI_API_KEY") is None or mine["key"] not in os.environ["OPENAI_API_KEY"]
