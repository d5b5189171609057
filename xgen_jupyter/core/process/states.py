"""Server states and the transitions allowed between them, applied as compare-and-set.

Every state change goes through :func:`transition`: it names the state(s) the caller expects the
server to be in. A pair not in :data:`ALLOWED` is a bug and raises ``IllegalTransition`` (whether
or not the race that would reach it happens in this run); a server that has already moved on
(another thread won: an unload against a crash, two unloads) makes it return False, and the
caller decides what that means. Nothing is ever silently overwritten.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .server import ManagedServer

State = Literal["planned", "starting", "loading", "ready", "stopping", "stopped", "failed", "crashed"]
STATES: tuple[State, ...] = ("planned", "starting", "loading", "ready", "stopping", "stopped", "failed", "crashed")
ACTIVE: frozenset[str] = frozenset({"planned", "starting", "loading", "ready"})
FINAL: frozenset[str] = frozenset({"stopped", "failed", "crashed"})

#: from → the states it may go to (what the managers do; see each line's why).
ALLOWED: dict[str, frozenset[str]] = {
    # planned: the first attempt starts; or it is unloaded (or its node is lost) before it did.
    "planned": frozenset({"starting", "stopping", "stopped", "crashed"}),
    # starting: the engine process runs (loading), or the attempt failed and the next one starts
    # (same backend again or a fallback), or it ended: failed, stopped on request, node lost.
    "starting": frozenset({"starting", "loading", "failed", "stopping", "stopped", "crashed"}),
    "loading": frozenset({"starting", "ready", "failed", "stopping", "stopped", "crashed"}),
    # ready: unloaded, or the engine died (crashed).
    "ready": frozenset({"stopping", "crashed"}),
    "stopping": frozenset({"stopped"}),
    # crashed: the on-crash restart policy plans it again. stopped and failed are the end:
    # a new load under the name is a new server.
    "crashed": frozenset({"planned"}),
    "stopped": frozenset(),
    "failed": frozenset(),
}


class IllegalTransition(RuntimeError):
    """A state change the table does not allow: a bug in xgen, not a user error."""


def check(expected: Iterable[str], to: str) -> tuple[str, ...]:
    """The expected states, after checking every (expected → to) pair is allowed."""
    froms = (expected,) if isinstance(expected, str) else tuple(expected)
    bad = [f for f in froms if to not in ALLOWED.get(f, ())]
    if bad or not froms:
        raise IllegalTransition(f"no transition {' | '.join(bad or ['(nothing)'])} -> {to}")
    return froms


def transition(server: ManagedServer, expected: str | Iterable[str], to: State) -> bool:
    """Set ``server.state`` to ``to`` if it is one of ``expected`` (compare-and-set); False if it was not.

    Waiters on ``server.changed`` are woken; a final state stamps ``stopped_at``. Raises IllegalTransition for a pair the table lacks.
    """
    froms = check(expected, to)
    with server.changed:
        if server.state not in froms:
            return False
        server.state = to
        server.revision += 1
        if to in FINAL:
            server.stopped_at = server.stopped_at or time.time()
        server.changed.notify_all()
    return True


def path(start: str, goal: str) -> list[str]:
    """The shortest allowed way from ``start`` to ``goal`` (excluding ``start``); [] when equal.

    A mirror that polls (the Ray cluster's) may miss states in between: it replays them this way.
    Raises IllegalTransition when ``goal`` cannot be reached from ``start``.
    """
    if start == goal:
        return []
    seen, queue = {start: ""}, deque([start])
    while queue:
        here = queue.popleft()
        for nxt in sorted(ALLOWED.get(here, ())):
            if nxt in seen:
                continue
            seen[nxt] = here
            if nxt == goal:
                out = [goal]
                while seen[out[-1]] != start:
                    out.append(seen[out[-1]])
                return out[::-1]
            queue.append(nxt)
    raise IllegalTransition(f"{goal} cannot be reached from {start}")
