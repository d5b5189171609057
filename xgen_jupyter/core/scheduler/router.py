"""Load on first request, one fair queue per server: what the proxy asks before it forwards.

``server_for(model)`` finds the ready server a request's ``model`` names, or loads the catalog
entry of that name (one load shared by every request that waits for it), or raises
UnknownModel listing close names. ``slot(server, user)`` holds one of the engine's slots for the
length of a request. Runs on one asyncio loop; loads and waits go to threads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..errors import ServerNotFound, XGenError
from ..process.events import Event
from ..process.manager import name_for
from ..process.states import FINAL
from .catalog import Catalog
from .evict import load_evicting
from .fairqueue import FairQueue
from .usage import Usage

log = logging.getLogger("xgen.scheduler")
GONE = frozenset({*FINAL, "stopping"})


class UnknownModel(XGenError):
    status = 404

    def __init__(self, model: str, close: list[str], problem: str = "") -> None:
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else "GET xgen/v1/models lists them"
        what = f"its preset cannot be served: {problem}" if problem else "it is neither a loaded server nor a catalog name"
        super().__init__(f"The model {model!r} does not exist: {what}", hint)
        self.close = close


class NotReady(XGenError):
    """A server loaded by hand (not a catalog name) that has stopped or failed: not loaded again here."""

    status = 503

    def __init__(self, server: Any) -> None:
        why = f": {server.error.get('summary')}" if server.error else ""
        super().__init__(f"The model {server.name!r} is not ready (state: {server.state}{why})",
                         "load it again with %xgen load or POST xgen/api/servers")


class LoadFailed(XGenError):
    """The engine of a load on first request did not become ready; ``cause`` is the classified one."""

    status = 503

    def __init__(self, model: str, server: Any) -> None:
        err = server.error or {}
        what = err.get("summary") or server.stop_reason or f"it ended {server.state}"
        super().__init__(f"Loading {model!r} failed: {what}", "see the server's log in xgen")
        self.cause = {k: err[k] for k in ("id", "summary", "engine_fault") if k in err}


class Scheduler:
    def __init__(self, core: Any, catalog: Catalog, queue_limit: int = 64, wait_timeout: float | None = None) -> None:
        self.core, self.catalog, self.queue_limit = core, catalog, queue_limit
        self.wait_timeout = wait_timeout or float(getattr(core.config, "ready_timeout", 600.0)) + 30.0
        self._loads: dict[str, asyncio.Future[Any]] = {}
        self._queues: dict[str, tuple[Any, FairQueue]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: dict[str, Any] = {}  # with the box service: ready_now's servers by name
        self._pool = getattr(core, "pool", None)  # the box service's client's threads; None in-process
        # The core's usage books (its memory-seconds are metered there, by the side that reserves).
        self.usage = Usage(getattr(core, "ledger", None))
        self._unsubscribe = core.manager.subscribe(self._on_event)

    # -- which server ------------------------------------------------------------------
    def _find(self, name: str) -> Any:
        try:
            return self.core.manager.get(name)
        except ServerNotFound:
            return None

    async def _lookup(self, fn: Any, *args: Any) -> Any:
        """Inline in-process (a lock); the box service's client (boxd/remote.py) makes a socket call
        that waits while the service restarts, so on that client's pool, off the IOLoop."""
        if self._pool is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    def ready_now(self, model: str) -> Any | None:
        """The ready server ``model`` names when that takes no waiting, else None: then server_for.
        In-process a lookup under a lock; a warm request so skips a task and two turns of the loop.
        With the box service, the server last found ready under that name until a state event about
        it: not a socket call, and safe, as the service checks it again when it grants the slot."""
        self._loop = asyncio.get_running_loop()
        if self._pool is not None:
            return self._ready.get(model)
        server = self._find(model)
        return server if server is not None and server.state == "ready" else None

    def forget_ready(self, model: str) -> None:
        """A request on ``model`` failed: the next one looks it up afresh."""
        self._ready.pop(model, None)

    async def server_for(self, model: str, user: str) -> Any:
        """The ready server ``model`` names, loading it first when it is a catalog name."""
        self._loop = asyncio.get_running_loop()
        server = await self._lookup(self._find, model)
        if server is not None and server.state == "ready":
            if self._pool is not None:
                self._ready[model] = server
            return server
        request = await asyncio.to_thread(self.catalog.request_for, model)
        if request is None and server is None:
            problems = await asyncio.to_thread(self.catalog.problems)
            broken = [p for p in problems if f"preset {model!r}" in p or "no preset of this" in p]
            if broken:  # an administrator's preset with an error: say which and why, not just "unknown"
                raise UnknownModel(model, [], "; ".join(broken))
            names = [s.name for s in await self._lookup(self.core.manager.servers)]
            raise UnknownModel(model, await asyncio.to_thread(self.catalog.close_names, model, names))
        if request is None:  # loaded by hand under a name of its own: wait while it loads, never reload
            if server.state in GONE:
                raise NotReady(server)
            request = {"model": server.request.model, "name": model}
        name = name_for(self.core.request(request))
        pending = self._loads.get(name)
        if pending is None:  # the first request for this name loads it; the others wait on that load
            pending = asyncio.ensure_future(asyncio.to_thread(self._load, model, request, user, name))
            self._loads[name] = pending
            pending.add_done_callback(lambda _f: self._loads.pop(name, None))
        return await asyncio.shield(pending)  # a client leaving does not cancel the others' load

    def _load(self, model: str, request: dict[str, Any], user: str, name: str) -> Any:
        t0 = time.monotonic()
        if getattr(self.core, "evicts", False):  # the box service evicts box-wide, knowing every queue
            server = self.core.load(request)
        else:
            server = load_evicting(self.core, request, user, self.busy, name)
        wait = getattr(self.core.manager, "wait", None)
        deadline = time.monotonic() + self.wait_timeout
        while server.state not in ("ready", *FINAL) and time.monotonic() < deadline:
            if wait is not None:
                server = wait(server.name, 1.0)
            else:  # the box service's client: poll
                time.sleep(0.2)
                server = self.core.manager.get(server.name)
        if server.state != "ready":
            raise LoadFailed(model, server)
        log.info("xgen: %r loaded on first request of %s in %.1f s", model, user, time.monotonic() - t0)
        return server

    # -- slots ---------------------------------------------------------------------------
    def queue(self, server: Any) -> FairQueue:
        """The server's fair queue. With the box service, a slot asked of the service for one request
        (boxd/slot_client.py: the same acquire/release, one queue per server for the whole box)."""
        remote = getattr(self.core, "slot_queue", None)
        if remote is not None:
            return remote(server.name)
        known = self._queues.get(server.name)
        # A crashed server restarted by its policy is the same object: its closed queue is not reused.
        if known is not None and known[0] is server and not known[1].closed:
            return known[1]
        if known is not None and not known[1].closed:
            known[1].close(f"{server.name!r} was loaded again")
        slots = max(1, int(getattr(server.plan.settings, "n_parallel", 1) or 1))
        q = FairQueue(server.name, slots, self.queue_limit, on_change=self._publish)
        self._queues[server.name] = (server, q)
        return q

    @asynccontextmanager
    async def slot(self, server: Any, user: str) -> AsyncIterator[FairQueue]:
        """Hold one engine slot for the request's length (waiting fairly for it)."""
        self._loop = asyncio.get_running_loop()
        q = self.queue(server)
        await q.acquire(user)
        t0 = time.monotonic()
        try:
            yield q
        finally:
            q.release(time.monotonic() - t0)

    def snapshot(self, name: str) -> dict[str, Any] | None:
        known = self._queues.get(name)
        return known[1].snapshot() if known is not None else None

    def busy(self, server: Any) -> bool:
        """A request is in flight on ``server`` or waiting for it: never evict it."""
        known = self._queues.get(server.name)
        return known is not None and (known[1].in_flight > 0 or known[1].queued > 0)

    def _publish(self, q: FairQueue) -> None:
        emit = getattr(getattr(self.core.manager, "roster", None), "emit", None)
        if emit is not None:
            emit(Event("queue", q.server, q.snapshot()))

    def _on_event(self, event: Event) -> None:
        """On a manager thread: the server went away, so its waiters get an error now."""
        if event.kind == "state":
            self._ready.pop(event.server, None)
        if event.kind != "state" or event.data.get("state") not in GONE or self._loop is None:
            return
        known = self._queues.get(event.server)
        if known is None:
            return
        why = f"the server {event.server!r} is {event.data.get('state')}"
        reason = event.data.get("stop_reason") or (event.data.get("error") or {}).get("summary")
        self._loop.call_soon_threadsafe(known[1].close, f"{why}: {reason}" if reason else why)

    def close(self) -> None:
        self._unsubscribe()
