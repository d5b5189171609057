"""Eviction by memory: when admission refuses a load for memory, unload idle servers (least
recently used first, the requester's own first) until the box registry admits the new plan.

Admission counts bytes per device (core/box/registry.py), so "fits" is its answer, asked again
after each unload. A server with a request in flight or waiting (``busy``), a pinned one, or one
not ready is never chosen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..errors import CapacityRefused

log = logging.getLogger("xgen.scheduler")


def victims(servers: list[Any], user: str, busy: Callable[[str], bool], keep: str) -> list[Any]:
    """Idle servers that may be unloaded, in the order to unload them: the requester's own
    first, then least recently used first."""
    idle = [s for s in servers if s.state == "ready" and not s.pinned and s.name != keep and not busy(s.name)]
    return sorted(idle, key=lambda s: (s.owner not in (None, user), s.last_used or s.ready_at or 0.0))


def load_evicting(core: Any, request: dict[str, Any], user: str,
                  busy: Callable[[str], bool] = lambda _n: False, name: str = "") -> Any:
    """``core.load(request)``, unloading idle servers one at a time while admission refuses for memory."""
    evicted: list[str] = []
    while True:
        try:
            return core.load(request)
        except CapacityRefused as refused:
            order = victims(core.manager.servers(), user, busy, name)
            if not order:
                if evicted:
                    refused.message += f" (after unloading the idle {', '.join(evicted)})"
                raise
            victim = order[0]
            if busy(victim.name):  # a request came in meanwhile: look again
                continue
            idle_min = (time.time() - (victim.last_used or victim.ready_at or time.time())) / 60
            reason = f"unloaded for {user}/{name or request.get('model')} after {idle_min:.0f} min idle"
            log.info("xgen: %s: %s (%s)", victim.name, reason, refused.message)
            core.manager.unload(victim.name, reason)
            evicted.append(victim.name)
