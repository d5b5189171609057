"""What the box has and what could run: hardware, backends, models, and a dry-run plan."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...boxd.remote import where
from .base import XGenHandler


class HardwareHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        report = await self.blocking(self.core.hardware, self.flag("refresh"))
        # Where this server's models run: "in this Jupyter server" or "box service at <socket>".
        self.reply({**report.to_dict(), "xgen_core": where(self.core)})


class BackendsHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        found = await self.blocking(self.core.backends, self.flag("refresh"))
        self.reply({"backends": {k: v.to_dict() for k, v in found.items()}})


class ModelsHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"models": await self.blocking(self.core.models)})


class PlanHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.core.request(self.json_body())
        plan = await self.blocking(self.core.plan, request)  # reads the model's metadata
        self.reply(plan.to_dict())
