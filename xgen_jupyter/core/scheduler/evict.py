"""Eviction by memory: when admission refuses a load for memory, unload idle servers (least
recently used first, the requester's own first) until the box registry admits the new plan.

Admission counts bytes per device (core/box/registry.py), so "fits" is its answer, asked again
after each unload. A server with a request in flight or waiting (``busy``), a pinned one, or one
not ready is never chosen. In-process the candidates are this Jupyter server's own servers; the box
service (boxd/evict.py) passes every user's, with its policy for other users' idle servers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..errors import CapacityRefused

log = logging.getLogger("xgen.scheduler")


def idle_for(server: Any, now: float | None = None) -> float:
    """Seconds since the server was last used (or became ready)."""
    return (now or time.time()) - (server.last_used or server.ready_at or now or time.time())


def victims(servers: list[Any], user: str, busy: Callable[[Any], bool], keep: str,
            others_after: float | None = 0.0) -> list[Any]:
    """Idle servers that may be unloaded, in the order to unload them: the requester's own
    first, then least recently used first. ``keep``: the name being loaded (the requester's own).
    ``others_after``: other users' servers qualify once idle this many seconds (None: never)."""
    now = time.time()

    def allowed(s: Any) -> bool:
        if s.state != "ready" or s.pinned or busy(s):
            return False
        if s.owner in (None, user):
            return bool(s.name != keep)
        return others_after is not None and idle_for(s, now) >= others_after

    return sorted(filter(allowed, servers), key=lambda s: (s.owner not in (None, user), s.last_used or s.ready_at or 0.0))


def reason_for(victim: Any, user: str, model: str) -> str:
    return f"unloaded for {user}/{model} after {idle_for(victim) / 60:.0f} min idle"


def load_evicting(core: Any, request: dict[str, Any], user: str,
                  busy: Callable[[Any], bool] = lambda _s: False, name: str = "") -> Any:
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
            if busy(victim):  # a request came in meanwhile: look again
                continue
            reason = reason_for(victim, user, name or str(request.get("model")))
            log.info("xgen: %s: %s (%s)", victim.name, reason, refused.message)
            core.manager.unload(victim.name, reason)
            evicted.append(victim.name)
