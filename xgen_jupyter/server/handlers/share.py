"""POST xgen/api/servers/{name}/share: let named users of this box reach a server through their proxy."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...core.errors import RequestError
from .base import XGenHandler


class ShareHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = self.json_body()
        users = body.get("users")
        if set(body) - {"users"} or not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise RequestError('the body must be {"users": ["login", ...]}', "an empty list stops sharing")
        await self.lookup(self.core.manager.get, name)  # 404 before a thread is used
        server = await self.blocking(self.core.share, name, users)
        self.reply({"name": server.name, "shared_with": server.shared_with,
                    "model": f"{server.owner}/{server.name}"})
