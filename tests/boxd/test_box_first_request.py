"""Load on first request through the box service: a Jupyter server whose models run in the service
asks its proxy for a catalog name not loaded (a GGUF in the shared model folder); the scheduler loads
it through the service and answers; concurrent first requests share one load; an unknown name is a
404 listing close names."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.core.box.jupyter_proc import JupyterProc

pytestmark = pytest.mark.engine


def ask(j: JupyterProc, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
    return httpx.post(f"{j.base}/xgen/v1/chat/completions", json=body, headers=j.headers, timeout=180,
                      trust_env=False)


def test_first_request_loads_through_the_box_service(box_factory, box_root, shared_models):
    box = box_factory()
    j = JupyterProc(box_root, "root", {"shared_dir": str(box_root / "shared"), "model_dirs": [str(shared_models)]})
    j.start()
    try:
        assert j.api("GET", "hardware").json()["xgen_core"] == f"box service at {box.socket}, user root"
        listed = httpx.get(f"{j.base}/xgen/v1/models", headers=j.headers, trust_env=False).json()["data"]
        assert {m["id"]: m["loaded"] for m in listed}.get("gemma") is False, listed
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _i: ask(j, "gemma"), range(3)))
        assert [r.status_code for r in answers] == [200] * 3, [r.text for r in answers]
        assert all(r.json()["choices"][0]["message"] for r in answers)
        servers = j.api("GET", "servers").json()["servers"]
        assert [(s["name"], s["state"], len(s["attempts"])) for s in servers] == [("gemma", "ready", 1)], servers
        missing = ask(j, "gemmma")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
        assert "'gemma'" in missing.json()["error"]["message"]
    finally:
        j.stop()
