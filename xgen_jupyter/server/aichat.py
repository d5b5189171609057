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

from .keyauth import key_store
from .scheduling import catalog_models

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


async def served_models(settings: dict[str, Any]) -> list[str]:
    """The names ``GET xgen/v1/models`` lists (ready servers, then the catalog), read in-process so a
    poll is not counted as a request of Jupyter AI's key."""
    servers = await asyncio.to_thread(settings["xgen_core"].manager.servers)
    ready = [s.name for s in servers if s.state == "ready"]
    return ready + [e["id"] for e in await catalog_models(settings, set(ready), lambda _name: True)]


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


class AIChat:
    """Jupyter AI's config kept in step with the proxy's model list, with one key per server start."""

    def __init__(self, serverapp: Any, extra: dict[str, Any] | None = None) -> None:
        self.app, self.extra = serverapp, extra
        self.manager = serverapp.web_app.settings.get("jupyternaut.config_manager")
        self.base = proxy_url(serverapp.ip, serverapp.port, serverapp.base_url, bool(serverapp.certfile))
        self.key = ""
        self.models: list[str] | None = None  # what Jupyter AI offers now; None: not set up

    async def start(self) -> list[str] | None:
        """Offer xgen's models in Jupyter AI's chat; the names offered, or None when it is not installed
        or this server cannot reach itself over TCP. A failure is logged: Jupyter runs on without it."""
        if self.manager is None:
            return None
        if getattr(self.app, "sock", ""):
            self.app.log.warning("xgen: Jupyter listens on a Unix socket, which LiteLLM cannot reach: "
                                 "Jupyter AI is not set up (docs/jupyter-ai.md gives the manual steps)")
            return None
        try:
            self.key = await asyncio.to_thread(fresh_key, self.app.web_app.settings)
            await self.sync()
        except Exception as exc:  # another package's config: never let it stop Jupyter
            self.app.log.warning("xgen: could not set up Jupyter AI's chat: %s", exc)
            return None
        self.app.log.info("xgen: Jupyter AI's chat offers %d xgen model(s) at %s", len(self.models or []), self.base)
        return self.models

    async def sync(self) -> bool:
        """Write the proxy's model list into Jupyter AI's config if it changed; whether it did."""
        models = await served_models(self.app.web_app.settings)
        if models == self.models:
            return False
        current = await asyncio.to_thread(current_config, self.manager)
        update = jupyternaut_update(current, self.base, self.key, models, self.extra)
        await asyncio.to_thread(apply_jupyternaut, self.manager, update)
        self.models = models
        return True

    async def follow(self, interval: float) -> None:
        """Re-check every ``interval`` s, so a model pulled or loaded later shows in new chats."""
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.sync():
                    self.app.log.info("xgen: Jupyter AI's chat now offers %s", ", ".join(self.models or []))
            except Exception as exc:  # the next round tries again
                self.app.log.debug("xgen: Jupyter AI model list not refreshed: %s", exc)
