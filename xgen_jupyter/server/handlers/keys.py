"""xgen/api/keys: the user's API keys for the proxy (create: the key is in this answer only; list;
revoke). These routes need the Jupyter login or token: an API key cannot make more keys."""

from __future__ import annotations

import asyncio

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...core.errors import RequestError
from ..keyauth import key_store
from .base import XGenHandler


class KeysHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        keys = await asyncio.to_thread(key_store(self.settings).listing)
        self.reply({"keys": [k.to_dict() for k in keys]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        if set(body) - {"name", "models"}:
            raise RequestError(f"unknown field(s): {', '.join(sorted(set(body) - {'name', 'models'}))}",
                               'the body is {"name": "...", "models": ["..."]} (models optional)')
        info = await asyncio.to_thread(key_store(self.settings).create, body.get("name"), body.get("models"))
        self.set_header("Cache-Control", "no-store")  # the one answer that holds the key
        self.reply(info.to_dict(), 201)


class KeyHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def delete(self, key_id: str) -> None:
        info = await asyncio.to_thread(key_store(self.settings).revoke, key_id)
        self.reply({"id": info.id, "name": info.name, "revoked": True})
