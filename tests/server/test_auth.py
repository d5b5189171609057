"""Every route refuses a request without the Jupyter token; none is left unguarded."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
from jupyter_server.utils import JupyterServerAuthWarning
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketHandler

from tests.server.conftest import on_server_loop
from xgen_jupyter.server.routes import ROUTES, handlers

NO_TOKEN = [{"Authorization": ""}, {"Authorization": "token wrong"}, {"Authorization": "Bearer wrong"}]


def _path(template: str) -> list[str]:
    return re.sub(r"\{\w+\}", "some-server", template).split("/")


def _methods(handler: type) -> list[str]:
    return [
        m.upper()
        for m in ("get", "post", "delete")
        if getattr(handler, m)
        is not getattr(WebSocketHandler if issubclass(handler, WebSocketHandler) else object, m, None)
        and any(m in vars(b) for b in handler.__mro__ if b.__module__.startswith("xgen_jupyter"))
    ]


@on_server_loop
async def test_rest_and_proxy_routes_refuse_without_token(jp_fetch: Any) -> None:
    checked = 0
    for template, handler, _ in ROUTES:
        for method in _methods(handler):
            for headers in NO_TOKEN:
                body = b'{"model": "default"}' if method == "POST" else None
                r = await jp_fetch(
                    *_path(template), method=method, body=body, headers=dict(headers), raise_error=False
                )
                assert r.code in (401, 403), (method, template, headers, r.code)
                checked += 1
    assert checked >= 3 * 14


@on_server_loop
async def test_websockets_refuse_without_token(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    for template, handler, _ in ROUTES:
        if not issubclass(handler, WebSocketHandler):
            continue
        for headers in NO_TOKEN:
            with pytest.raises(HTTPClientError) as err:
                await jp_ws_fetch(*_path(template), headers=dict(headers))
            assert err.value.code in (401, 403), (template, headers)


@on_server_loop
async def test_bearer_token_is_accepted(jp_fetch: Any, jp_serverapp: Any) -> None:
    token = jp_serverapp.identity_provider.token
    r = await jp_fetch("xgen", "v1", "models", headers={"Authorization": f"Bearer {token}"})
    assert r.code == 200
    r = await jp_fetch("xgen", "api", "servers", headers={"Authorization": f"Bearer {token}"})
    assert r.code == 200


def test_no_route_is_left_unauthenticated(jp_configurable_serverapp: Any, jp_server_config: dict) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        app = jp_configurable_serverapp(config=jp_server_config)
    auth_warnings = [w for w in seen if issubclass(w.category, JupyterServerAuthWarning)]
    assert not auth_warnings, [str(w.message) for w in auth_warnings]
    assert app.web_app.settings["allow_unauthenticated_access"] is False
    for pattern, handler, _ in handlers():
        assert app.web_app._check_handler_auth(pattern, handler) == [], pattern
