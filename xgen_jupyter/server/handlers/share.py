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
        users, rotate = body.get("users"), body.get("rotate", False)
        if (set(body) - {"users", "rotate"} or not isinstance(users, list) or not all(isinstance(u, str) for u in users)
                or not isinstance(rotate, bool)):
            raise RequestError('the body must be {"users": ["login", ...], "rotate": false}',
                               "an empty list stops sharing; rotate: true restarts the engine under a new key")
        await self.lookup(self.core.manager.get, name)  # 404 before a thread is used
        server = await self.blocking(self.core.share, name, users, rotate)
        self.reply({"name": server.name, "shared_with": server.shared_with,
                    "model": f"{server.owner}/{server.name}"})
