"""The REST API and the events websocket without an engine running: facts, plans, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.server.conftest import next_json, on_server_loop


@on_server_loop
async def test_facts(api: Any) -> None:
    code, hw = await api("GET", "hardware")
    assert code == 200 and hw["method"] and hw["cpu"]["cores_logical"] >= 1 and "detectors" in hw
    code, be = await api("GET", "backends", params={"refresh": "1"})
    assert code == 200 and be["backends"]["llama-cpp-python"]["available"] is True
    code, models = await api("GET", "models")
    assert code == 200 and models["models"][0]["name"] == "default"


@on_server_loop
async def test_models_lists_the_model_dir(api: Any, model_dir: Path, default_model: str) -> None:
    (model_dir / "tiny.gguf").symlink_to(default_model)  # a link leaving the dir is not listed
    (model_dir / "sub").mkdir()
    code, models = await api("GET", "models")
    assert code == 200 and [m["name"] for m in models["models"]] == ["default"]


@on_server_loop
async def test_plan_starts_nothing(api: Any) -> None:
    code, plan = await api("POST", "plan", body={"model": "default", "kind": "embedding", "n_ctx": 2048})
    assert code == 200, plan
    assert plan["backend"] == "llama-cpp-python" and plan["server_type"] == "embedding"
    assert plan["argv"] and isinstance(plan["reasons"], list) and all("why" in r for r in plan["reasons"])
    assert (await api("GET", "servers")) == (200, {"servers": []})


BAD_BODIES: list[tuple[bytes, str]] = [
    (b"", "empty"),
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"default"', "JSON object"),
    (b"{}", "model is required"),
    (b'{"model": 5}', "model"),
    (b'{"model": "default", "n_ctx": "many"}', "n_ctx"),
    (b'{"model": "default", "n_ctx": -3}', "n_ctx"),
    (b'{"model": "default", "n_gpu_layers": true}', "n_gpu_layers"),
    (b'{"model": "default", "kind": "chat"}', "server_type"),
    (b'{"model": "default", "backend": "magic"}', "backend"),
    (b'{"model": "default", "colour": "red"}', "unknown field"),
    (b'{"model": "default", "name": "../../etc"}', "not allowed"),
    (b'{"model": "default; rm -rf /"}', "not allowed"),
    (b'{"model": "no-such-model"}', "not found"),
]


@pytest.mark.parametrize("route", ["plan", "servers"])
@on_server_loop
async def test_bad_requests_get_4xx_with_a_message(api: Any, route: str) -> None:
    for raw, words in BAD_BODIES:
        code, err = await api("POST", route, raw=raw)
        assert code == 400, (raw, code, err)
        assert err["error"] in ("RequestError", "ModelError") and words.lower() in err["message"].lower(), (
            raw,
            err,
        )
    assert (await api("GET", "servers")) == (200, {"servers": []})


@on_server_loop
async def test_model_paths_outside_the_model_dirs_are_refused(
    api: Any, model_dir: Path, tmp_path: Path, default_model: str
) -> None:
    outside = tmp_path / "outside.gguf"
    outside.symlink_to(default_model)
    (model_dir / "link.gguf").symlink_to(outside)  # a link inside that points outside
    for spec in (
        str(outside),
        "../outside.gguf",
        "../outside",
        f"{model_dir}/../outside.gguf",
        "link",
        "link.gguf",
        "/etc/passwd",
        "../../../../etc/passwd",
    ):
        code, err = await api("POST", "servers", body={"model": spec})
        assert code == 400, (spec, err)
        assert err["error"] == "ModelError" and "outside" in err["message"], (spec, err)
    assert (await api("GET", "servers")) == (200, {"servers": []})


@on_server_loop
async def test_unknown_server_names(api: Any, jp_ws_fetch: Any) -> None:
    for method, path in (
        ("GET", ("servers", "nope")),
        ("DELETE", ("servers", "nope")),
        ("GET", ("servers", "nope", "logs")),
        ("GET", ("servers", "..", "logs")),
    ):
        code, err = await api(method, *path)
        assert code == 404 and err["error"] in ("ServerNotFound", "HTTPError"), (method, path, code, err)
        assert err["message"]
    with pytest.raises(HTTPClientError) as exc:
        await jp_ws_fetch("xgen", "api", "servers", "nope", "logs")
    assert exc.value.code == 404


@on_server_loop
async def test_events_hello_gpu_samples_and_interval(jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("xgen", "api", "events", params={"interval": "0.2"})
    hello = await next_json(ws)
    assert hello["kind"] == "hello" and hello["servers"] == [] and "cpu" in hello["hardware"]
    samples = [await next_json(ws, 5) for _ in range(2)]
    assert all(m["kind"] == "gpus" and isinstance(m["data"]["gpus"], list) for m in samples)
    ws.write_message(json.dumps({"interval": "fast"}))
    err = await next_json(ws, 5)
    while err["kind"] == "gpus":
        err = await next_json(ws, 5)
    assert err["kind"] == "error" and "interval" in err["message"]
    ws.write_message(json.dumps({"interval": 0}))  # off
    ws.close()
    for bad in ("abc", "-1", "nan"):
        with pytest.raises(HTTPClientError) as exc:
            await jp_ws_fetch("xgen", "api", "events", params={"interval": bad})
        assert exc.value.code == 400
