"""Base class of every xgen REST handler: auth resource, the core, and JSON errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from ...boxd.remote import off_loop
from ...core.service import XGenCore
from ..errors import JsonErrorsMixin, parse_json_object

AUTH_RESOURCE = "xgen"
T = TypeVar("T")


class XGenHandler(JsonErrorsMixin, ExtensionHandlerMixin, APIHandler):
    """APIHandler refuses unauthenticated calls with 403 (no login redirect)."""

    auth_resource = AUTH_RESOURCE

    @property
    def core(self) -> XGenCore:
        return self.settings["xgen_core"]

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking core call (model inspection, waiting for a process) off the IOLoop."""
        return await off_loop(self.core, fn, *args)

    async def lookup(self, fn: Callable[..., T], *args: Any) -> T:
        """A quick core call: inline in-process (a lock), off the IOLoop with the box service (a socket)."""
        return await off_loop(self.core, fn, *args, light=True)

    def json_body(self) -> dict[str, Any]:
        return parse_json_object(self.request.body)

    def flag(self, name: str) -> bool:
        return self.get_query_argument(name, "0").lower() in ("1", "true", "yes", "on")

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))
