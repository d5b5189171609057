"""A slot of a server in the box service's fair queue, for one request of the proxy.

Shaped as core/scheduler/fairqueue.py's FairQueue is used by the proxy (``try_acquire``,
``acquire``, ``release``), so the proxy's code path is the same with and without the service. The
connection is opened on the IOLoop (asyncio, no thread held while queued) and kept open for the
request's length: closing it releases the slot, or leaves the queue if still waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from ..core.scheduler.fairqueue import QueueClosed, QueueFull
from . import wire
from .client import ServiceUnavailable, rebuild, trusted_owners


class RemoteSlot:
    def __init__(self, path: Path, model: str, retry_for: float = 5.0) -> None:
        self.path, self.model, self.retry_for = Path(path), model, retry_for
        self.position: dict[str, Any] | None = None  # the last "queued" update
        #: What the service's ``route`` answers (endpoint, key, ...), sent with the grant.
        self.route: dict[str, Any] | None = None
        self._writer: asyncio.StreamWriter | None = None

    def try_acquire(self, user: str) -> bool:
        return False  # always asked of the service (acquire)

    async def _read(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            size = int.from_bytes(await reader.readexactly(4), "big")
            if size > wire.MAX_REPLY:
                raise wire.WireError(f"reply of {size} bytes is over the limit")
            data = json.loads((await reader.readexactly(size)).decode())
        except (asyncio.IncompleteReadError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise ServiceUnavailable(f"lost the box service at {self.path} while waiting for a slot of "
                                     f"{self.model!r}: {type(exc).__name__}", "it may be restarting; retry") from None
        if not isinstance(data, dict):
            raise ServiceUnavailable("the box service answered a slot request with garbage")
        return data

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]]:
        """Connect and ask (retrying while the service restarts or says busy), then read its first reply."""
        deadline, delay = time.monotonic() + self.retry_for, 0.05
        while True:
            writer = None
            try:
                if os.stat(self.path).st_uid not in trusted_owners():
                    raise ServiceUnavailable(f"the box socket {self.path} is not the service's")
                reader, writer = await asyncio.open_unix_connection(str(self.path))
                writer.write(wire.encode({"op": "slot", "model": self.model}))
                await writer.drain()
                reply = await self._read(reader)
                if reply.get("ok") is False and reply.get("error") == "Busy":
                    raise ConnectionRefusedError("busy")
                return reader, writer, reply
            except (OSError, ServiceUnavailable) as exc:
                if writer is not None:
                    writer.close()
                if time.monotonic() + delay > deadline:
                    raise ServiceUnavailable(f"the box service at {self.path} does not answer: {exc}",
                                             "it may be restarting: retry in a moment") from None
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    async def acquire(self, user: str) -> None:
        """Wait for the slot. QueueFull (429), QueueClosed (the server went away), or the service's
        error (not found, not shared, not ready); cancelled (the client left): the connection closes."""
        reader, writer, reply = await self._open()
        try:
            if reply.get("error") == "TooManyWaiting":  # the service's cap on waiting connections
                raise QueueFull(self.model, int(reply.get("limit") or 0), 1)
            if not reply.get("ok"):
                raise rebuild(reply)
            while True:
                try:
                    msg = await self._read(reader)
                except ServiceUnavailable as exc:  # the service died (a restart drops every waiter)
                    raise QueueClosed(str(exc)) from None
                kind = msg.get("kind")
                if kind == "granted":
                    self._writer, self.route = writer, msg.get("route")
                    return
                if kind == "queued":
                    self.position = msg
                elif kind == "error" and msg.get("error") == "QueueFull":
                    raise QueueFull(self.model, int(msg.get("limit") or 0), int(msg.get("retry_after") or 1))
                elif kind in ("error", "end"):
                    raise QueueClosed(str(msg.get("message") or f"the box service ended the wait for {self.model!r}"))
        except BaseException:
            writer.close()
            raise

    def release(self, seconds: float | None = None) -> None:
        """The request ended: closing the connection frees the slot in the service."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
