"""Eviction by memory in the box service, box-wide: when admission refuses a load for memory, idle
servers of every user are unloaded (least recently used, the requester's own first; other users'
only where the box policy allows, ``xgen box --evict-idle-others SECONDS``) until the registry,
which counts bytes per card, admits the new plan. Only servers holding bytes on the card (or the
host RAM) the refusal named are candidates: unloading another frees nothing there. "Idle" is the
service's own word: no request holds or waits for a slot in its fair queues (boxd/slots.py), so a
server with a stream in flight is never chosen, and a claimed one takes no new request until gone. The evicted server's owner
sees why in its status, stop_reason and log ("unloaded for alice/gemma after 14 min idle").
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from ..core.errors import CapacityRefused
from ..core.process.manager import name_for
from ..core.scheduler.evict import reason_for, victims
from .service import BoxService
from .slots import BoxSlots

log = logging.getLogger("xgen.boxd")


def load_evicting_box(service: BoxService, slots: BoxSlots, user: str, core: Any, request: Any,
                      others_after: float | None) -> Any:
    """``core.load(request)`` for ``user``, evicting idle servers box-wide while refused for memory."""
    evicted: list[str] = []
    tried: set[tuple[str, str]] = set()
    name = name_for(request)
    while True:
        try:
            return core.load(request)
        except CapacityRefused as refused:
            cores = service.cores()
            holders = on_device(service.housekeeping.listing(), refused.device)
            owners = {id(s): o for o, c in cores.items() for s in c.manager.servers()
                      if (o, s.name) not in tried and (holders is None or (o, s.name) in holders)}
            servers = [s for c in cores.values() for s in c.manager.servers() if id(s) in owners]
            order = victims(servers, user, functools.partial(_busy, slots, owners), name, others_after)
            if not order:
                if evicted:
                    refused.message += f" (after unloading the idle {', '.join(evicted)})"
                raise
            victim = order[0]
            owner = owners[id(victim)]
            tried.add((owner, victim.name))
            if not slots.claim(owner, victim.name):  # a request came in meanwhile: look again
                continue
            try:
                reason = reason_for(victim, user, name)
                log.info("xgen box: %s/%s: %s (%s)", owner, victim.name, reason, refused.message)
                cores[owner].manager.unload(victim.name, reason)
            finally:
                slots.unclaim(owner, victim.name)
            evicted.append(f"{owner}/{victim.name}")


def _busy(slots: BoxSlots, owners: dict[int, str], server: Any) -> bool:
    return slots.busy(owners[id(server)], server.name)


def on_device(listing: list[dict[str, Any]], device: str | None) -> set[tuple[str, str]] | None:
    """(owner, name) of the servers holding bytes on ``device``, the card (or host RAM) a load was
    refused on: unloading any other frees nothing there. None: the refusal named no device."""
    if device is None:
        return None
    return {(e["owner"], e["name"]) for e in listing if any(d["device"] == device and d["bytes"] > 0
                                                          for d in e["devices"])}
