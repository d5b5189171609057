"""GET xgen/api/usage with the real default engine behind a real Jupyter server: each answer through the
proxy adds to the asking user's row in the box registry's books, with the engine's own usage fields;
"mine" is the asking user's rows, ``scope=box`` everyone's; memory-seconds grow while the server is
ready; xgen/metrics reads the same books."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import on_server_loop
from tests.server.users_idp import TestUsers
from xgen_jupyter.core.box.db import Database
from xgen_jupyter.core.box.usage_books import UsageBooks

pytestmark = pytest.mark.engine

ALICE, BOB = {"Authorization": "token alice-token"}, {"Authorization": "token bob-token"}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ServerApp"]["identity_provider_class"] = TestUsers
    return jp_server_config


def stream_usage(body: bytes) -> tuple[int, int]:
    """The engine's own numbers in a stream: its last ``usage`` object, else llama-server's ``timings``,
    else (llama-cpp-python says neither) one completion token per event with text, as it streams."""
    found: tuple[int, int] | None = None
    texts = 0
    for line in body.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        event = json.loads(line[6:])
        texts += any((c.get("delta") or {}).get("content") for c in event.get("choices") or [])
        if event.get("usage"):
            found = (event["usage"]["prompt_tokens"], event["usage"]["completion_tokens"])
        elif event.get("timings") and found is None:
            t = event["timings"]
            found = (t.get("cache_n", 0) + t["prompt_n"], t["predicted_n"])
    return found or (0, texts)


@on_server_loop
async def test_answers_add_the_engines_usage_to_the_users_row(jp_fetch: Any, jp_http_port: int, jp_base_url: str,
                                                              tmp_path: Path) -> None:  # jp_fetch: starts the server
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}xgen"
    chat = {"model": "default", "messages": [{"role": "user", "content": "Count to three."}], "max_tokens": 6}
    async with httpx.AsyncClient(timeout=180, trust_env=False) as http:
        assert (await http.get(f"{base}/api/usage")).status_code in (401, 403)  # no credentials
        plain = (await http.post(f"{base}/v1/chat/completions", json=chat, headers=ALICE)).json()["usage"]
        streamed = await http.post(f"{base}/v1/chat/completions", headers=ALICE,
                                   json={**chat, "stream": True, "stream_options": {"include_usage": True}})
        assert streamed.status_code == 200 and b"[DONE]" in streamed.content
        bobs = (await http.post(f"{base}/v1/chat/completions", json=chat, headers=BOB)).json()["usage"]
        mine = (await http.get(f"{base}/api/usage", headers=ALICE)).json()
        box = (await http.get(f"{base}/api/usage", params={"scope": "box"}, headers=BOB)).json()
        bad = await http.get(f"{base}/api/usage", params={"scope": "all"}, headers=BOB)
        await asyncio.sleep(1.5)
        later = (await http.get(f"{base}/api/usage", params={"scope": "box"}, headers=BOB)).json()
        metrics = (await http.get(f"{base}/metrics", headers=BOB)).text
    sp, sc = stream_usage(streamed.content)
    assert mine["scope"] == "mine" and mine["user"] == "alice"
    assert [(r["user"], r["model"], r["requests"], r["prompt_tokens"], r["completion_tokens"]) for r in mine["rows"]] \
        == [("alice", "default", 2, plain["prompt_tokens"] + sp, plain["completion_tokens"] + sc)], mine
    rows = {r["user"]: r for r in box["rows"]}
    assert (rows["bob"]["requests"], rows["bob"]["prompt_tokens"], rows["bob"]["completion_tokens"]) == \
        (1, bobs["prompt_tokens"], bobs["completion_tokens"])
    assert box["totals"]["requests"] == 3
    # Memory is the owner's (this Jupyter server's Unix user loaded it on alice's first request).
    owner = getpass.getuser()
    held = {r["user"]: r["host_byte_seconds"] for r in later["rows"]}
    assert held[owner] > rows[owner]["host_byte_seconds"] > 0 and not held["alice"] and not held["bob"], later
    assert bad.status_code == 400 and "scope must be" in bad.json()["message"]
    assert 'xgen_requests_total{model="default",user="bob"} 1.0' in metrics
    # The books are the registry's table: what a restarted server (or any other reader) will find.
    on_disk = {(r.user, r.model): r.requests for r in UsageBooks(Database(tmp_path / "xgen-shared")).rows()}
    assert on_disk[("alice", "default")] == 2 and on_disk[("bob", "default")] == 1


@on_server_loop
async def test_metrics_show_each_cards_memory(jp_fetch: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: a simulated box of two cards (an injected report, as the shared-box tests use)."""
    gib = 1024**3
    cards = [{"index": i, "name": f"Sim {i}", "vendor": "nvidia", "memory_total": 24 * gib,
              "memory_free": (24 - 5 * i) * gib, "uuid": f"GPU-sim-{i}", "source": "injected"} for i in (0, 1)]
    report = tmp_path / "two-cards.json"
    report.write_text(json.dumps({"gpus": cards, "cpu": {"cores_physical": 2, "cores_logical": 2,
                                                         "memory_total": 8 * gib, "memory_available": 8 * gib}}))
    monkeypatch.setenv("XGEN_HARDWARE_REPORT", str(report))
    text = (await jp_fetch("xgen", "metrics")).body.decode()
    got = {(s.name, s.labels["gpu"], s.labels["name"]): s.value for fam in text_string_to_metric_families(text)
           for s in fam.samples if s.name.startswith("xgen_gpu_memory")}
    assert got == {("xgen_gpu_memory_total_bytes", "0", "Sim 0"): 24 * gib,
                   ("xgen_gpu_memory_total_bytes", "1", "Sim 1"): 24 * gib,
                   ("xgen_gpu_memory_used_bytes", "0", "Sim 0"): 0, ("xgen_gpu_memory_used_bytes", "1", "Sim 1"): 5 * gib}
