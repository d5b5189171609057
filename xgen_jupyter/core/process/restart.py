"""The on-crash restart policy: when a crashed engine starts again (1 s doubling, capped), or not."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .server import ManagedServer


@dataclass(frozen=True)
class Backoff:
    first: float = 1.0
    cap: float = 30.0

    def schedule(self, server: ManagedServer) -> float | None:
        """Seconds until ``server`` restarts (counted and logged), or None when its policy says no more."""
        if server.restart_policy != "on-crash":
            return None
        if server.restarts >= server.max_restarts:
            server.logs.append(f"[xgen] restart policy on-crash: gave up after {server.restarts} restart(s)")
            return None
        delay = min(self.cap, self.first * 2**server.restarts)
        server.restarts += 1
        server.next_restart_at = time.time() + delay
        server.logs.append(f"[xgen] restart policy on-crash: restart {server.restarts}/{server.max_restarts} "
                           f"in {delay:.1f} s")
        return delay
