"""Unload servers nobody has used through the proxy for ``c.XGen.idle_ttl`` seconds."""

from __future__ import annotations

import asyncio
import logging
import time

from tornado.ioloop import PeriodicCallback

from ..core.errors import XGenError
from ..core.service import XGenCore


class IdleReaper:
    def __init__(self, core: XGenCore, last_used: dict[str, float], ttl: float, log: logging.Logger) -> None:
        self.core, self.last_used, self.ttl, self.log = core, last_used, ttl, log
        # Check often enough that a server lives at most ~1.25 x ttl unused.
        self.timer = PeriodicCallback(self.check, max(1.0, min(60.0, ttl / 4)) * 1000)

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def idle(self) -> list[str]:
        now = time.time()
        return [
            s.name
            for s in self.core.manager.servers()
            if s.state == "ready" and now - max(self.last_used.get(s.name, 0.0), s.ready_at or now) > self.ttl
        ]

    async def check(self) -> None:
        for name in self.idle():
            self.log.info("xgen: unloading %r, unused for more than %.0f s (c.XGen.idle_ttl)", name, self.ttl)
            try:
                await asyncio.to_thread(self.core.unload, name)
            except XGenError as exc:
                self.log.warning("xgen: could not unload idle %r: %s", name, exc)
