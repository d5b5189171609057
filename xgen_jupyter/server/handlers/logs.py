"""xgen/api/servers/{name}/logs: as a websocket, the log history then each new line as it is
written; as a plain GET, ``{"lines": [...]}`` (the last ``tail`` lines)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from ...core.errors import RequestError, XGenError
from ...core.process.logbuffer import LogLine
from .wsbase import XGenWebSocket


class LogsWebSocket(XGenWebSocket):
    _unsubscribe: Callable[[], None] | None = None

    async def pre_get(self, *args: Any, **kwargs: Any) -> None:
        self.server = await self.lookup(self.core.manager.get, kwargs["name"])  # ServerNotFound: 404, no upgrade
        raw = self.get_query_argument("tail", "500").strip()
        if not raw.isdigit():
            raise RequestError(f"tail must be a whole number ≥ 0, not {raw!r}")
        self.tail = int(raw)

    async def plain_get(self) -> None:
        lines = await self.lookup(self.server.logs.tail, self.tail)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"lines": [ln.to_dict() for ln in lines]}))

    async def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self.loop = asyncio.get_running_loop()
        name = self.server.name

        def on_line(line: LogLine) -> None:  # on the engine's log pump thread
            self.send_threadsafe({"kind": "log", "server": name, "line": line.to_dict()})

        # Atomic; live lines that come while the history is fetched (off the loop with the box
        # service) are held and sent after it, in order, with no gap and no duplicate.
        self.hold()
        try:
            history, unsubscribe = await self.lookup(self.server.logs.history_and_subscribe, on_line, self.tail)
        except XGenError as exc:  # the box service went away meanwhile: say so, then close
            self.send_json({"kind": "error", **exc.to_dict()})
            self.close(1011, "xgen: the log is not available")
            return
        if self.ws_connection is None or self.ws_connection.is_closing():
            unsubscribe()  # closed meanwhile: on_close already ran
            return
        self._unsubscribe = unsubscribe
        for line in history:
            self.send_json({"kind": "log", "server": name, "line": line.to_dict()})
        self.release()

    def on_message(self, message: str | bytes) -> None:
        """The log stream is one-way."""

    def on_close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
