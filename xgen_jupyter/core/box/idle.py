"""The box janitor: one thread per core that unloads idle servers and reclaims dead owners' entries."""

from __future__ import annotations

import logging
import threading
import time

from ..errors import XGenError
from ..process.server import ManagedServer
from ..process.supervisor import Supervisor
from .registry import BoxRegistry
from .usage_books import MemoryMeter

log = logging.getLogger("xgen.box")


def idle_for(server: ManagedServer, default_ttl: float, now: float) -> tuple[float, float] | None:
    """(ttl, seconds unused) when ``server`` should be unloaded as idle, else None.

    Pinned servers never are; a server's own ``idle_ttl`` beats the default; 0 means never.
    """
    if server.state != "ready" or server.pinned:
        return None
    ttl = server.idle_ttl if server.idle_ttl is not None else default_ttl
    if ttl <= 0:
        return None
    unused = now - max(server.last_used or 0.0, server.ready_at or now)
    return (ttl, unused) if unused > ttl else None


class Janitor:
    def __init__(self, manager: Supervisor, registry: BoxRegistry | None, default_ttl: float,
                 interval: float) -> None:
        self.manager, self.registry, self.default_ttl = manager, registry, default_ttl
        self.interval = max(0.1, interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="xgen-janitor", daemon=True)
        self.meter: MemoryMeter | None = None  # its memory-seconds are booked each tick

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # the janitor must outlive any one bad tick
                log.exception("xgen: janitor tick failed")

    def tick(self) -> list[str]:
        if self.meter is not None:
            self.meter.checkpoint()
        if self.registry is not None:
            try:
                self.registry.reclaim()
            except XGenError as exc:
                log.warning("xgen: reclaiming dead entries failed: %s", exc)
        unloaded = []
        now = time.time()
        for server in self.manager.servers():
            found = idle_for(server, self.default_ttl, now)
            if found is None:
                continue
            ttl, unused = found
            reason = f"idle: unused for {unused:.0f} s (idle_ttl {ttl:g} s)"
            log.info("xgen: unloading %r, %s", server.name, reason)
            try:
                self.manager.unload(server.name, reason)
                unloaded.append(server.name)
            except XGenError as exc:
                log.warning("xgen: could not unload idle %r: %s", server.name, exc)
        return unloaded
