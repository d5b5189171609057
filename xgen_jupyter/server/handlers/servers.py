"""Servers: list, load (202), inspect, unload, and the log tail over REST."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...core.errors import RequestError
from ..scheduling import scheduler
from .base import XGenHandler

# Any path segment: a bad name gets ServerNotFound with a message, not a bare routing 404.
NAME = r"(?P<name>[^/]+)"


class ServersHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        scope = self.get_query_argument("scope", "mine")
        if scope == "box":  # every user's servers on this box (no keys, no logs): core/box/registry.py
            self.reply({"servers": await self.blocking(self.core.box_servers)})
            return
        if scope != "mine":
            raise RequestError(f"scope={scope!r} is not one of: mine, box")
        self.reply({"servers": [s.to_dict() for s in await self.lookup(self.core.manager.servers)]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.core.request(self.json_body())  # 400 before any thread is used
        server = await self.blocking(self.core.load, request)  # plans (inspects the model), then starts
        self.reply(server.to_dict(), status=202)


class ServerHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        server = await self.lookup(self.core.manager.get, name)
        data = server.to_dict()
        # llama-server's /slots and /metrics, read live (a quick loopback call in a thread).
        data["engine"] = await self.blocking(self.core.engine_stats, name)
        # The fair queue in front of its slots (None until a request went through it): the proxy's,
        # or with the box service the service's, for every user's requests (in its reply already).
        data["queue"] = scheduler(self.settings).snapshot(name) or data.get("queue")
        self.reply(data)

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.lookup(self.core.manager.get, name)  # 404 before a thread is used
        server = await self.blocking(self.core.unload, name)  # waits for the process to exit
        self.reply(server.to_dict())
