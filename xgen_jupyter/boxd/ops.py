"""The service's requests, each authorized against the peer's uid (never against what it claims).

A user acts on their own servers only; ``owner/name`` reaches another user's server only where
its owner shared it, and only to use it (``route``); root may name any owner (administration).
Replies never carry keys, logs, ports or paths of other users' servers.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.box.shares import USER_RE
from ..core.errors import RequestError, ServerNotFound, XGenError
from ..core.process.manager import Event
from ..core.process.server import ManagedServer
from ..core.service import XGenCore
from .evict import load_evicting_box
from .follow import Follower
from .listener import Stream
from .peer import Peer, check_readable, may_list
from .service import BoxService
from .slots import BoxSlots
from .usage_ops import UsageOps

VERSION = 1


class Forbidden(XGenError):
    status = 403


class NotReady(XGenError):
    status = 503


def _str(req: dict[str, Any], key: str, limit: int = 200) -> str:
    v = req.get(key)
    if not isinstance(v, str) or not v or len(v) > limit:
        raise RequestError(f"{key!r} must be a non-empty string of at most {limit} characters")
    return v


def _tail(req: dict[str, Any]) -> int:
    v = req.get("tail", 500)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100_000:
        raise RequestError("tail must be a whole number from 0 to 100000")
    return v


class Ops(UsageOps):
    def __init__(self, service: BoxService, socket_path: Path, queue_limit: int = 64,
                 evict_others_after: float | None = None) -> None:
        self.service, self.socket_path = service, socket_path
        #: One fair queue per server for the whole box (boxd/slots.py); eviction asks it who is busy.
        self.slots = BoxSlots(queue_limit)
        #: Box policy: another user's idle server may be evicted once unused this long (None: never).
        self.evict_others_after = evict_others_after
        self.shares: weakref.WeakKeyDictionary[ManagedServer, list[str]] = weakref.WeakKeyDictionary()
        self.table: dict[str, Callable[[Peer, dict[str, Any]], Any]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("op_")}

    def __call__(self, peer: Peer, req: dict[str, Any]) -> Any:
        op = req.get("op")
        fn = self.table.get(op) if isinstance(op, str) else None
        if fn is None:
            raise RequestError(f"unknown op {op!r}", f"one of: {', '.join(sorted(self.table))}")
        return fn(peer, req)

    # -- whose core ----------------------------------------------------------------------
    def _core(self, peer: Peer, req: dict[str, Any]) -> tuple[str, XGenCore]:
        owner = req.get("owner") or peer.user
        if owner != peer.user and not peer.is_root:
            raise Forbidden(f"{peer.user} may not act on {owner}'s servers", "only their owner (or root) may")
        if owner != peer.user:  # root: an existing user's servers only
            core = self.service.cores().get(str(owner))
            if core is None:
                raise ServerNotFound(f"{owner} has no servers on this box")
            return str(owner), core
        return owner, self.service.core(owner)

    def _server(self, peer: Peer, req: dict[str, Any]) -> tuple[str, XGenCore, ManagedServer]:
        owner, core = self._core(peer, req)
        return owner, core, core.manager.get(_str(req, "name", 64))

    def view(self, owner: str, s: ManagedServer) -> dict[str, Any]:
        d = s.to_dict()
        d["owner"], d["shared_with"] = owner, list(self.shares.get(s, []))
        d["queue"] = self.slots.snapshot(owner, s.name)  # the box-wide fair queue (None: no request yet)
        return d

    # -- facts -----------------------------------------------------------------------------
    def op_hello(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        return {"service": "xgen box", "version": VERSION, "user": peer.user, "uid": peer.uid, "pid": os.getpid(),
                "socket": str(self.socket_path)}

    def op_hardware(self, peer: Peer, req: dict[str, Any]) -> Any:
        return self.service.core(peer.user).hardware(bool(req.get("refresh"))).to_dict()

    def op_backends(self, peer: Peer, req: dict[str, Any]) -> Any:
        found = self.service.core(peer.user).backends(bool(req.get("refresh")))
        return {k: v.to_dict() for k, v in found.items()}

    def op_models(self, peer: Peer, req: dict[str, Any]) -> Any:
        # Only what the peer could load: names in folders they cannot read are not theirs to see.
        return [m for m in self.service.core(peer.user).models() if may_list(str(m.get("path")), peer)]

    def _request(self, peer: Peer, core: XGenCore, req: dict[str, Any]) -> Any:
        data = req.get("request")
        if not isinstance(data, dict):
            raise RequestError("'request' must be a JSON object", 'e.g. {"model": "default"}')
        request = core.request(data)
        check_readable(core.resolve(request.model), peer)  # never run a file the requester could not read
        return request

    def op_plan(self, peer: Peer, req: dict[str, Any]) -> Any:
        core = self.service.core(peer.user)
        return core.plan(self._request(peer, core, req)).to_dict()

    # -- own servers -----------------------------------------------------------------------
    def op_load(self, peer: Peer, req: dict[str, Any]) -> Any:
        core = self.service.core(peer.user)
        request = self._request(peer, core, req)
        self.slots.watch(peer.user, core)
        # Refused for memory: idle servers are unloaded box-wide (boxd/evict.py), never a busy one.
        return self.view(peer.user, load_evicting_box(self.service, self.slots, peer.user, core, request,
                                                      self.evict_others_after))

    def op_servers(self, peer: Peer, req: dict[str, Any]) -> Any:
        owner, core = self._core(peer, req)
        return [self.view(owner, s) for s in core.manager.servers()]

    def op_get(self, peer: Peer, req: dict[str, Any]) -> Any:
        owner, core, server = self._server(peer, req)
        d = self.view(owner, server)
        if req.get("stats"):
            d["engine"] = core.engine_stats(server.name)
        return d

    def op_unload(self, peer: Peer, req: dict[str, Any]) -> Any:
        owner, core, server = self._server(peer, req)
        reason = "unloaded on request" if owner == peer.user else f"unloaded by {peer.user} (administrator)"
        return self.view(owner, core.manager.unload(server.name, reason))

    def op_forget(self, peer: Peer, req: dict[str, Any]) -> Any:
        _, core, server = self._server(peer, req)
        core.manager.forget(server.name)
        return {"name": server.name}

    def op_logs(self, peer: Peer, req: dict[str, Any]) -> Any:
        _, _, server = self._server(peer, req)
        return [ln.to_dict() for ln in server.logs.tail(_tail(req))]

    def op_follow_logs(self, peer: Peer, req: dict[str, Any]) -> Stream:
        _, _, server = self._server(peer, req)
        f = Follower(lambda ln: {"kind": "log", "server": server.name, "line": ln.to_dict()})
        history, unsubscribe = server.logs.history_and_subscribe(f, _tail(req))
        first = [{"kind": "log", "server": server.name, "line": ln.to_dict()} for ln in history]
        return Stream(f.stream(first, unsubscribe))

    def op_events(self, peer: Peer, req: dict[str, Any]) -> Stream:
        owner, core = self._core(peer, req)

        def convert(e: Event) -> dict[str, Any] | None:
            return e.to_dict() if e.kind in ("state", "progress", "queue") else None

        f = Follower(convert)
        unsubscribe = core.manager.subscribe(f)  # before the snapshot: nothing falls between
        first = [{"kind": "hello", "servers": [self.view(owner, s) for s in core.manager.servers()]}]
        return Stream(f.stream(first, unsubscribe))

    def op_touch(self, peer: Peer, req: dict[str, Any]) -> Any:
        _, _, server = self._server(peer, req)
        server.touch()
        return {"name": server.name, "last_used": server.last_used}

    # -- the box ---------------------------------------------------------------------------
    def op_box(self, peer: Peer, req: dict[str, Any]) -> Any:
        listing = self.service.housekeeping.listing()
        for entry in listing:
            entry["mine"] = entry["owner"] == peer.user
            if not entry["mine"]:  # a path says where in someone's home a model lives: the file name is enough
                entry["model"] = os.path.basename(str(entry["model"]).rstrip("/"))
        return listing

    def op_share(self, peer: Peer, req: dict[str, Any]) -> Any:
        owner, core, server = self._server(peer, req)
        users = req.get("users")
        if not isinstance(users, list) or len(users) > 1000 or not all(isinstance(u, str) and USER_RE.match(u)
                                                                      for u in users):
            raise RequestError("'users' must be a list of login names", "an empty list stops sharing")
        unknown = [u for u in users if not _is_user(u)]
        if unknown:
            raise RequestError(f"no such user on this box: {', '.join(unknown)}", "give login names")
        grantees = sorted(set(users) - {owner})
        rotate = req.get("rotate", False)
        if not isinstance(rotate, bool):
            raise RequestError("'rotate' must be true or false")
        if rotate:  # a new engine, a new key: what a grantee kept from `route` stops working
            server = core.reload(server.name, f"restarted under a new key by {peer.user} (sharing changed)")
        self.shares[server] = grantees
        if core.registry is not None:
            core.registry.set_shares(server.name, grantees)
        return {"name": server.name, "shared_with": grantees, "model": f"{owner}/{server.name}", "rotated": rotate}

    def op_route(self, peer: Peer, req: dict[str, Any]) -> Any:
        """Endpoint and key of a ready engine the peer may use: their own, or one shared with them."""
        owner, _, server = self._usable(peer, _str(req, "model", 130))
        return _route(owner, server)

    def op_slot(self, peer: Peer, req: dict[str, Any]) -> Stream:
        """One of a ready engine's slots for one request, waited for fairly (boxd/slots.py); the
        connection is held for the request's length. Who may: as ``route``, whose answer comes with
        the grant (the engine as it is then), so the proxy's request needs no other call."""
        owner, core, server = self._usable(peer, _str(req, "model", 130))
        self.slots.watch(owner, core)

        def hold(conn: socket.socket) -> Iterator[dict[str, Any]]:
            with contextlib.closing(self.slots.hold(owner, server, peer.user, conn)) as messages:
                for msg in messages:
                    yield {**msg, "route": _route(owner, server)} if msg.get("kind") == "granted" else msg

        return Stream(opener=hold, parked=True)

    def _usable(self, peer: Peer, model: str) -> tuple[str, XGenCore, ManagedServer]:
        """The ready server ``model`` names (``name`` or ``owner/name``), if the peer may use it."""
        owner, _, name = model.rpartition("/")
        owner = owner or peer.user
        core = self.service.core(peer.user) if owner == peer.user else self.service.cores().get(owner)
        server = None
        if core is not None:
            try:
                server = core.manager.get(name)
            except ServerNotFound:
                server = None
        allowed = server is not None and (owner == peer.user or peer.is_root or peer.user in self.shares.get(server, []))
        if server is None or not allowed:
            if owner != peer.user:
                raise ServerNotFound(f"{owner} has not shared a server named {name!r} with {peer.user}",
                                     "ask its owner to share it with you")
            raise ServerNotFound(f"no server named {name!r}", "see the loaded servers with `%xgen ls`")
        if server.state != "ready" or server.endpoint is None:
            why = f": {server.error.get('summary')}" if server.error else ""
            raise NotReady(f"{model} is not ready (state: {server.state}{why})", "try again when it is ready")
        assert core is not None
        return owner, core, server


def _is_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _route(owner: str, server: ManagedServer) -> dict[str, Any]:
    server.touch()
    return {"owner": owner, "name": server.name, "endpoint": server.endpoint, "api_key": server.api_key,
            "state": server.state, "created_at": server.created_at, "backend": server.backend,
            "server_type": server.request.server_type}
