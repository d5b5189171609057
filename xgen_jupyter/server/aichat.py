"""Jupyter AI's chat (Jupyternaut) on xgen models, with no URL or key typed by the user.

When the ``jupyter_ai_jupyternaut`` server extension runs in the same Jupyter server, xgen (once the
server listens, so the port is final) makes an API key scoped to ``xgen/v1`` named ``jupyter-ai``
(revoking the one of the previous start: keys are stored hashed, so an old one cannot be reused),
then writes, through Jupyternaut's own ConfigManager (what its settings page calls):

- one custom model per model the proxy lists (``xgen · NAME`` in the chat's model picker), LiteLLM
  model ``openai/NAME`` with ``api_base`` = this server's ``xgen/v1`` and ``api_key`` = that key;
- the default chat model (``model_provider_id``), unless the user chose one that is not xgen's.

The user's own custom models and settings are kept. The Jupyter token is never written anywhere.
``c.XGen.ai_chat = False`` turns all of this off. See docs/jupyter-ai.md.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx

from ..core.errors import XGenError
from .keyauth import key_store

KEY_NAME = "jupyter-ai"
#: Custom-model ids xgen owns start with this (Jupyternaut resolves ids starting with ``custom-``).
ID_PREFIX = "custom-xgen/"
LABEL = "xgen · "
PROVIDER = "openai"  # LiteLLM's OpenAI-compatible route: any base URL, Bearer key, streaming


def proxy_url(ip: str, port: int, base_url: str, https: bool = False) -> str:
    """The URL this Jupyter server's own process reaches its proxy at (LiteLLM calls it server-side)."""
    host = ip.strip("[]")
    if host in ("", "0.0.0.0", "::", "localhost", "*"):
        host = "127.0.0.1"  # a wildcard bind listens on loopback too
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if https else 'http'}://{host}:{port}/{base_url.strip('/')}/xgen/v1".replace("//xgen", "/xgen")


def fresh_key(settings: dict[str, Any]) -> str:
    """A new key for Jupyter AI (scoped to ``xgen/v1``); earlier ``jupyter-ai`` keys are revoked."""
    store = key_store(settings)
    for info in store.listing():
        if info.name == KEY_NAME:
            store.revoke(info.id)
    key = store.create(KEY_NAME).key
    assert key is not None  # create() always returns the plain key once
    return key


async def served_models(base: str, key: str) -> list[str]:
    """The model names ``GET xgen/v1/models`` lists for ``key``: ready servers, then the catalog."""
    # verify=False: this is the server's own loopback URL; an HTTPS Jupyter's certificate rarely names it.
    async with httpx.AsyncClient(trust_env=False, timeout=30.0, verify=False) as client:
        r = await client.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"})
    if r.status_code != 200:
        raise XGenError(f"the proxy refused Jupyter AI's new key listing models ({r.status_code}): {r.text[:200]}",
                        "see the Jupyter log; c.XGen.ai_chat = False turns this off")
    return [m["id"] for m in r.json().get("data", [])]


def is_ours(model_id: str | None, params: dict[str, Any] | None) -> bool:
    """Whether a configured model is one xgen wrote (an OpenAI-compatible entry at some xgen/v1)."""
    base = str((params or {}).get("api_base", ""))
    return bool(model_id) and str(model_id).startswith(f"{PROVIDER}/") and base.rstrip("/").endswith("/xgen/v1")


def jupyternaut_update(current: dict[str, Any], base: str, key: str, models: list[str],
                       extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields of Jupyternaut's ``UpdateConfigRequest`` that offer ``models`` (pure: easy to test).

    ``current`` is its config (``get_config().model_dump()``). Custom models not made by xgen stay,
    in their order, after xgen's. The default chat model becomes xgen's first model unless the user
    set one that xgen did not write.
    """
    params = {**(extra or {}), "api_base": base, "api_key": key}
    ours = [{"id": f"{ID_PREFIX}{PROVIDER}/{name}", "name": f"{LABEL}{name}",
             "description": f"{name}, served by xgen at {base}", "model_id": f"{PROVIDER}/{name}",
             "params": dict(params)} for name in models]
    theirs = [m for m in current.get("custom_models") or [] if not str(m.get("id", "")).startswith(ID_PREFIX)]
    update: dict[str, Any] = {"custom_models": ours + theirs}
    fields = current.get("fields") or {}
    default = current.get("model_provider_id")
    if models and (not default or is_ours(default, fields.get(default))):
        default = f"{PROVIDER}/{models[0]}"
        update["model_provider_id"] = default
    # Refresh the key of every xgen entry in `fields` (an old key was just revoked).
    new_fields = {mid: {**p, **params} for mid, p in fields.items() if is_ours(mid, p)}
    if default and default.startswith(f"{PROVIDER}/") and default.removeprefix(f"{PROVIDER}/") in models:
        new_fields[default] = dict(params)
    if new_fields:
        update["fields"] = new_fields
    return update


def apply_jupyternaut(config_manager: Any, update: dict[str, Any]) -> None:
    """Write ``update`` through Jupyternaut's ConfigManager (the path its settings REST API takes)."""
    from jupyter_ai_jupyternaut.config.config_models import UpdateConfigRequest

    config_manager.update_config(UpdateConfigRequest(**update))
    # It now holds a key: the owner's eyes only (Jupyter AI writes it with the umask's mode).
    os.chmod(config_manager.config_path, 0o600)


def current_config(config_manager: Any) -> dict[str, Any]:
    """Jupyternaut's config as a dict (``get_config`` leaves the API key values out, which we never need)."""
    return dict(config_manager.get_config().model_dump())


async def configure(serverapp: Any, extra: dict[str, Any] | None = None) -> list[str] | None:
    """Offer xgen's models in Jupyter AI's chat; the names offered, or None when it is not installed
    or this server cannot reach itself over TCP. A failure is logged: Jupyter runs on without it."""
    settings = serverapp.web_app.settings
    manager = settings.get("jupyternaut.config_manager")
    if manager is None:
        return None
    if getattr(serverapp, "sock", ""):
        serverapp.log.warning("xgen: Jupyter listens on a Unix socket, which LiteLLM cannot reach: "
                              "Jupyter AI is not set up (docs/jupyter-ai.md gives the manual steps)")
        return None
    base = proxy_url(serverapp.ip, serverapp.port, serverapp.base_url, bool(serverapp.certfile))
    try:
        key = await asyncio.to_thread(fresh_key, settings)
        models = await served_models(base, key)
        update = jupyternaut_update(await asyncio.to_thread(current_config, manager), base, key, models, extra)
        await asyncio.to_thread(apply_jupyternaut, manager, update)
    except Exception as exc:  # another package's config: never let it stop Jupyter
        serverapp.log.warning("xgen: could not set up Jupyter AI's chat: %s", exc)
        return None
    serverapp.log.info("xgen: Jupyter AI's chat offers %d xgen model(s) at %s", len(models), base)
    return models
