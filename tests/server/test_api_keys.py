"""API keys through a real Jupyter server: made, listed and revoked over REST; a key opens the
proxy (``xgen/v1``) and nothing else, route by route from openapi.yaml; revoked, it is refused at once."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from tornado.httpclient import HTTPClientError

from tests.server.conftest import on_server_loop

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "xgen_jupyter/server/openapi.yaml").read_text())
KEY = re.compile(r"^xgen-[0-9a-f]{12}-[A-Za-z0-9_-]{43}$")
#: Jupyter's own routes: a key must not read files, start kernels or terminals (run code).
JUPYTER = [("GET", "api/contents"), ("POST", "api/contents"), ("GET", "api/kernels"), ("POST", "api/kernels"),
           ("GET", "api/sessions"), ("POST", "api/sessions"), ("GET", "api/me"), ("GET", "api/kernelspecs"),
           ("GET", "api/config/notebook"), ("GET", "api/status")]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def make_key(api: Any, name: str = "ci", models: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name} | ({"models": models} if models is not None else {})
    code, made = await api("POST", "keys", body=body)
    assert code == 201, made
    return made


@on_server_loop
async def test_create_list_revoke(api: Any, jp_serverapp: Any) -> None:
    made = await make_key(api, "laptop", ["default"])
    assert KEY.match(made["key"]) and made["models"] == ["default"] and made["requests"] == 0
    code, listed = await api("GET", "keys")
    assert code == 200 and [k["id"] for k in listed["keys"]] == [made["id"]]
    assert "key" not in listed["keys"][0] and made["key"] not in str(listed)  # shown once
    secret = made["key"].split("-", 2)[2]
    shared = Path(jp_serverapp.config["XGen"]["shared_dir"])
    for f in shared.rglob("*"):  # stored as a hash only
        assert not f.is_file() or secret.encode() not in f.read_bytes(), f
    for body in ({}, {"name": ""}, {"name": "x", "models": []}, {"name": "x", "scope": "all"}):
        code, err = await api("POST", "keys", body=body)
        assert code == 400 and err["error"] == "RequestError" and err["hint"], (body, err)
    assert (await api("DELETE", "keys", made["id"]))[0] == 200
    assert (await api("GET", "keys"))[1] == {"keys": []}
    code, err = await api("DELETE", "keys", made["id"])
    assert code == 404 and err["error"] == "KeyNotFound", err


def _spec_calls(key_id: str) -> list[tuple[str, str]]:
    calls = []
    for template, item in SPEC["paths"].items():
        path = re.sub(r"\{key_id\}", key_id, template)
        path = re.sub(r"\{\w+\}", "some-server", path).lstrip("/")
        calls += [(m.upper(), path) for m in item if m != "parameters"]
    return calls


@on_server_loop
async def test_a_key_opens_the_proxy_and_nothing_else(api: Any, jp_fetch: Any, jp_ws_fetch: Any) -> None:
    made = await make_key(api)
    calls = _spec_calls(made["id"])
    assert len(calls) >= 18 and any(p.startswith("xgen/v1") for _, p in calls)
    for method, path in calls + JUPYTER:
        body = b'{"model": "no-such-model", "name": "x", "users": []}' if method in ("POST", "PUT") else None
        r = await jp_fetch(*path.split("/"), method=method, body=body, headers=bearer(made["key"]), raise_error=False)
        if path.startswith("xgen/v1"):
            assert r.code not in (401, 403), (method, path, r.code, r.body)  # the proxy let it in
            assert r.code in (200, 404), (method, path, r.code, r.body)  # no such model, or the list
        else:
            assert r.code == 403, (method, path, r.code)
    for template, item in SPEC["paths"].items():  # the websockets (GET + Upgrade) refuse it too
        if "101" in str(item.get("get", {}).get("responses", {})):
            path = re.sub(r"\{\w+\}", "some-server", template).lstrip("/")
            with pytest.raises(HTTPClientError) as err:
                await jp_ws_fetch(*path.split("/"), headers=bearer(made["key"]))
            assert err.value.code == 403, path
    # the DELETE xgen/api/keys/{key_id} above was refused: the key still exists, and still opens the proxy
    assert [k["id"] for k in (await api("GET", "keys"))[1]["keys"]] == [made["id"]]
    r = await jp_fetch("xgen", "v1", "models", headers=bearer(made["key"]))
    assert r.code == 200
    # a key in the URL is not accepted (and Jupyter scrubs ?token= from its log)
    r = await jp_fetch("xgen", "v1", "models", params={"token": made["key"]}, headers={"Authorization": ""},
                       raise_error=False)
    assert r.code == 403


@on_server_loop
async def test_revoked_key_is_refused_at_once(api: Any, jp_fetch: Any) -> None:
    made = await make_key(api)
    r = await jp_fetch("xgen", "v1", "models", headers=bearer(made["key"]))
    assert r.code == 200
    assert (await api("DELETE", "keys", made["id"]))[0] == 200
    r = await jp_fetch("xgen", "v1", "models", headers=bearer(made["key"]), raise_error=False)
    assert r.code == 401 and b"authentication_error" in r.body and b"revoked" in r.body
    # one character off, or a made-up one: refused alike, with no hint which
    other = await make_key(api, "other")
    bad = other["key"][:-1] + ("A" if other["key"][-1] != "A" else "B")
    r2 = await jp_fetch("xgen", "v1", "models", headers=bearer(bad), raise_error=False)
    assert r2.code == 401 and r2.body == r.body
    # the Jupyter token still opens everything, the proxy included
    assert (await jp_fetch("xgen", "v1", "models")).code == 200


@on_server_loop
async def test_a_scoped_key_lists_and_opens_only_its_models(api: Any, jp_fetch: Any) -> None:
    made = await make_key(api, "one", ["alpha"])
    r = await jp_fetch("xgen", "v1", "models", "beta", headers=bearer(made["key"]), raise_error=False)
    assert r.code == 403 and b"does not open the model 'beta'" in r.body
    r = await jp_fetch("xgen", "v1", "chat", "completions", method="POST", body=b'{"model": "beta"}',
                       headers=bearer(made["key"]), raise_error=False)
    assert r.code == 403 and b"alpha" in r.body
    r = await jp_fetch("xgen", "v1", "models", "alpha", headers=bearer(made["key"]), raise_error=False)
    assert r.code == 404  # allowed, just not loaded
