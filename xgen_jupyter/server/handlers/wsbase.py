"""Base of the xgen websockets: Jupyter auth before the upgrade, thread-safe sending."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ...boxd.remote import off_loop
from ...core.service import XGenCore
from ..errors import JsonErrorsMixin
from .base import AUTH_RESOURCE

T = TypeVar("T")


class XGenWebSocket(JsonErrorsMixin, WebSocketMixin, WebSocketHandler, ExtensionHandlerMixin, JupyterHandler):
    """Like jupyter_server's kernel websocket: ``get`` (the upgrade) needs a known, authorized user.

    WebSocketMixin.prepare refuses an unknown user with 403 instead of a login redirect; a
    refused upgrade (unknown server, bad query) answers with the API's JSON error.
    """

    auth_resource = AUTH_RESOURCE
    loop: asyncio.AbstractEventLoop | None = None
    #: Messages from core threads held back until the first snapshot is out (see ``release``).
    _held: list[str] | None = None

    @property
    def core(self) -> XGenCore:
        return self.settings["xgen_core"]

    async def lookup(self, fn: Callable[..., T], *args: Any, light: bool = True) -> T:
        """A core call that never blocks the IOLoop (the box service's are socket round trips)."""
        return await off_loop(self.core, fn, *args, light=light)

    def hold(self) -> None:
        """From now on, messages from core threads wait: a snapshot fetched off the loop goes first."""
        self._held = []

    def release(self) -> None:
        """Send what was held, in order, after the snapshot."""
        held, self._held = self._held or [], None
        for text in held:
            self.send_json(text)

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
            await self.plain_get()
            return
        await super().get(*args, **kwargs)

    async def plain_get(self) -> None:
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
            loop.call_soon_threadsafe(self._send_or_hold, json.dumps(data))

    def _send_or_hold(self, text: str) -> None:
        if self._held is not None:
            self._held.append(text)
        else:
            self.send_json(text)
