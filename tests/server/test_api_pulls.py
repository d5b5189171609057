"""POST xgen/api/pulls against a local hub mirror (HF_ENDPOINT): 202, progress on the events websocket,
the model in GET xgen/api/models when done; bad specs and unknown repos answered clearly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub_mirror import HubMirror
from tests.model_files import write_gguf
from tests.server.conftest import next_json, on_server_loop


@pytest.fixture()
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubMirror]:
    m = HubMirror()
    m.add("acme/tiny-GGUF", {"tiny-Q4_K_M.gguf": write_gguf(tmp_path / "q4.gguf", n_vocab=20000),
                             "tiny-Q8_0.gguf": write_gguf(tmp_path / "q8.gguf")})  # fmt: skip
    monkeypatch.setenv("HF_ENDPOINT", m.url)  # the server pulls in this process: it sees the mirror
    yield m
    m.close()


async def _until_done(api: Any, job: str) -> dict[str, Any]:
    for _ in range(600):
        code, found = await api("GET", "pulls", job)
        assert code == 200, found
        if found["state"] != "running":
            return found  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("the pull did not finish")


@on_server_loop
async def test_pull_over_rest_with_progress_on_the_events_socket(api: Any, jp_ws_fetch: Any, hub: HubMirror,
                                                                  model_dir: Path) -> None:  # fmt: skip
    ws = await jp_ws_fetch("xgen", "api", "events", params={"interval": "0"})
    assert (await next_json(ws))["kind"] == "hello"
    hub.delay = 0.002
    code, job = await api("POST", "pulls", body={"model": "acme/tiny-GGUF"})
    assert code == 202 and job["state"] == "running", job
    code, again = await api("POST", "pulls", body={"model": "acme/tiny-GGUF"})
    assert code == 202 and again["id"] == job["id"]  # the same pull, joined
    seen = []
    while True:
        msg = await next_json(ws)
        if msg["kind"] == "pull":
            seen.append(msg["job"])
            if msg["job"]["state"] != "running":
                break
    ws.close()
    done = seen[-1]
    assert done["state"] == "done" and done["result"]["path"] == str(model_dir / "tiny-Q4_K_M.gguf"), done
    assert any(0 < (j["progress"] or {}).get("fraction", 0) < 1 for j in seen)
    assert (await _until_done(api, job["id"]))["result"]["name"] == "tiny-Q4_K_M"
    code, models = await api("GET", "models")
    assert "tiny-Q4_K_M" in [m["name"] for m in models["models"]]
    assert hub.gets == {"tiny-Q4_K_M.gguf": 1}
    code, listed = await api("GET", "pulls")
    assert code == 200 and [j["id"] for j in listed["pulls"]] == [job["id"]]


@on_server_loop
async def test_pull_errors_over_rest(api: Any, hub: HubMirror) -> None:
    for body in ({"model": 3}, {"model": "not a repo!"}, {}):
        code, err = await api("POST", "pulls", body=body)
        assert code == 400 and err["message"], (body, err)
    code, job = await api("POST", "pulls", body={"model": "acme/tiny-GGUF:Q2_K"})
    assert code == 202
    failed = await _until_done(api, job["id"])
    assert failed["state"] == "failed" and failed["error"]["error"] == "ModelError"
    assert "Q4_K_M" in failed["error"]["hint"] and not hub.gets
    code, err = await api("GET", "pulls", "nope")
    assert code == 404 and "No pull" in err["message"]
