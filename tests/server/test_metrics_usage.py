"""xgen/metrics with the real default engine: requests and the engine's token counts per user and
model (plain answers and streams), memory-seconds, queue gauges; authenticated."""

from __future__ import annotations

import getpass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import on_server_loop
from tests.server.users_idp import TestUsers

pytestmark = pytest.mark.engine


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ServerApp"]["identity_provider_class"] = TestUsers
    return jp_server_config


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


@on_server_loop
async def test_usage_per_user_and_model_in_prometheus_format(jp_fetch: Any, jp_http_port: int,
                                                             jp_base_url: str) -> None:
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen"
    async with httpx.AsyncClient(timeout=120, trust_env=False) as http:
        r = await http.get(f"{base}/metrics")
        assert r.status_code in (401, 403)  # no credentials: refused
        chat = {"model": "default", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
        alice = {"Authorization": "token alice-token"}
        plain = (await http.post(f"{base}/v1/chat/completions", json=chat, headers=alice)).json()
        streamed = await http.post(f"{base}/v1/chat/completions", json={**chat, "stream": True}, headers=alice)
        assert streamed.status_code == 200 and b"[DONE]" in streamed.content
        await http.post(f"{base}/v1/chat/completions", json=chat, headers={"Authorization": "token bob-token"})
        r = await http.get(f"{base}/metrics", headers=alice)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    got = samples(r.text)
    a, b = (("model", "default"), ("user", "alice")), (("model", "default"), ("user", "bob"))
    assert got[("xgen_requests_total", a)] == 2 and got[("xgen_requests_total", b)] == 1
    # The plain answer's usage plus the stream's (its usage or timings, else one token per text event).
    streamed_text = streamed.content.count(b'"content":') - streamed.content.count(b'"content": ""')
    assert got[("xgen_completion_tokens_total", a)] >= plain["usage"]["completion_tokens"] + 1, streamed_text
    assert got[("xgen_prompt_tokens_total", a)] >= plain["usage"]["prompt_tokens"]
    held = {dict(k[1])["user"]: v for k, v in got.items() if k[0] == "xgen_host_memory_byte_seconds_total"}
    # Credited to the server's owner (this Jupyter server's Unix user loaded it), not to who asked.
    assert held.pop(getpass.getuser()) > 0 and not any(held.values()), held
    assert got[("xgen_queue_depth", (("server", "default"),))] == 0
    assert got[("xgen_load_seconds", (("server", "default"),))] > 0
