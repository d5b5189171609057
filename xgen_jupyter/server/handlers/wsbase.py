"""Base of the xgen websockets: Jupyter auth before the upgrade, thread-safe sending."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ...core.service import XGenCore
from ..errors import JsonErrorsMixin
from .base import AUTH_RESOURCE


class XGenWebSocket(JsonErrorsMixin, WebSocketMixin, WebSocketHandler, ExtensionHandlerMixin, JupyterHandler):
    """Like jupyter_server's kernel websocket: ``get`` (the upgrade) needs a known, authorized user.

    WebSocketMixin.prepare refuses an unknown user with 403 instead of a login redirect; a
    refused upgrade (unknown server, bad query) answers with the API's JSON error.
    """

    auth_resource = AUTH_RESOURCE
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def core(self) -> XGenCore:
        return self.settings["xgen_core"]

    def set_default_headers(self) -> None:
        """JupyterHandler's default headers (CSP ...) mean nothing on a websocket upgrade."""

    async def pre_get(self, *args: Any, **kwargs: Any) -> None:
        """Checks that must pass before the upgrade (raise HTTPError to refuse it)."""

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE)
        ):
            raise web.HTTPError(403)
        await self.pre_get(*args, **kwargs)  # XGenError → its status and message, no upgrade
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            self.plain_get()
            return
        await super().get(*args, **kwargs)

    def plain_get(self) -> None:
        """A GET without ``Upgrade: websocket``; WebSocketHandler would answer 400."""
        raise web.HTTPError(400, "this route is a websocket: connect with Upgrade: websocket")

    def send_json(self, data: Any) -> None:
        """Send from the IOLoop; silently drop once the socket is closed."""
        if self.ws_connection is None or self.ws_connection.is_closing():
            return
        try:
            self.write_message(data if isinstance(data, str) else json.dumps(data))
        except WebSocketClosedError:
            pass

    def send_threadsafe(self, data: Any) -> None:
        """Called from core threads (manager, log pump): hop onto the IOLoop first."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            # Serialise here, on the calling thread, to keep the IOLoop's share small.
            loop.call_soon_threadsafe(self.send_json, json.dumps(data))
