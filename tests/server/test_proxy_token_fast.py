"""The proxy checks Jupyter's token itself (keyauth.jupyter_token) only where Jupyter would give the
same answer: the default identity provider and authorizer. These tests hold its answers to Jupyter's
own, header by header, and show it steps aside for any other provider or authorizer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider

from tests.server.conftest import on_server_loop

UNKNOWN = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}


class NoOne(IdentityProvider):
    """A provider (as JupyterHub's) that knows nobody, the server's own token included."""

    def get_user(self, handler: Any) -> Any:
        return None


class DenyAll(Authorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return False


def variants(token: str) -> dict[str, dict[str, str]]:
    return {"token": {"Authorization": f"token {token}"}, "Bearer": {"Authorization": f"Bearer {token}"},
            "TOKEN, spaces": {"Authorization": f"TOKEN   {token}"}, "tab": {"Authorization": f"token\t{token}"}, "wrong": {"Authorization": "token wrong"},
            "prefix": {"Authorization": f"token {token[:-1]}"}, "longer": {"Authorization": f"token {token}x"},
            "Basic": {"Authorization": f"Basic {token}"}, "none": {}, "empty": {"Authorization": ""}}


async def verdicts(port: int, base_url: str, token: str) -> dict[str, tuple[bool, bool, str | None]]:
    """Per header: (Jupyter's own API lets it in, the proxy lets it in, the proxy's Set-Cookie)."""
    base = f"http://127.0.0.1:{port}{base_url}"
    out = {}
    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        for name, headers in variants(token).items():
            jupyter = await http.get(f"{base}api/me", headers=headers)
            http.cookies.clear()  # each variant on its own: no login cookie from the one before
            proxy = await http.post(f"{base}xgen/v1/chat/completions", json=UNKNOWN, headers=headers)
            http.cookies.clear()
            # past the auth, the unknown model is a 404; refused, a 401/403
            assert proxy.status_code in (401, 403, 404), (name, proxy.status_code, proxy.text)
            out[name] = (jupyter.status_code == 200, proxy.status_code == 404, proxy.headers.get("set-cookie"))
    return out


@on_server_loop
async def test_the_proxy_lets_in_what_jupyter_lets_in(jp_fetch: Any, jp_http_port: int, jp_base_url: str,
                                                      jp_serverapp: Any) -> None:
    got = await verdicts(jp_http_port, jp_base_url, jp_serverapp.identity_provider.token)
    assert {k: v[:2] for k, v in got.items()} == {k: (v[0], v[0]) for k, v in got.items()}
    assert [k for k, v in got.items() if v[0]] == ["token", "Bearer", "TOKEN, spaces", "tab"]
    # Checked here: no login cookie signed for a header credential. A tab after the scheme is left to
    # Jupyter (same answer, and its login cookie).
    assert [k for k, v in got.items() if v[2]] == ["tab"]


@pytest.fixture
def provider(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request, "param", {}))


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], provider: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ServerApp"].update(provider)
    return jp_server_config


@pytest.mark.parametrize("provider", [{}, {"identity_provider_class": NoOne}, {"authorizer_class": DenyAll}],
                         ids=["default", "provider knows nobody", "authorizer denies all"], indirect=True)
@on_server_loop
async def test_other_providers_and_authorizers_decide_themselves(jp_fetch: Any, jp_http_port: int, jp_base_url: str,
                                                                 jp_serverapp: Any, provider: dict[str, Any]) -> None:
    token = jp_serverapp.identity_provider.token or "no-token"
    got = await verdicts(jp_http_port, jp_base_url, token)
    assert got["token"][1] is (not provider)  # the server's own token opens the proxy only with the defaults
    assert got["token"][0] is ("identity_provider_class" not in provider)
