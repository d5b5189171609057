"""The box-wide registry: every user's servers on this machine, their memory reservations and shares.

One SQLite file in the shared folder (see db.py). A reservation is checked and written in
one ``BEGIN IMMEDIATE`` transaction, so two loads that start together, in two users' Jupyter
servers, cannot both take the same free memory. Entries of dead owners are reclaimed.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from ..errors import CapacityRefused, QuotaExceeded, XGenError
from ..units import gib as _gib
from . import identity
from .db import SCHEMA, Database, is_corrupt
from .devices import Claim, committed
from .quotas import Quota, Quotas

log = logging.getLogger("xgen.box")
T = TypeVar("T")


def gib(n: int) -> str:
    return _gib(n, 2)  # refusals name bytes to two decimals (the sidebar's formatGiB matches)


class BoxRegistry:
    def __init__(self, shared_dir: Path, quotas: dict[str, Any] | None = None, user: str | None = None,
                 private: bool = False) -> None:
        self.folder = Path(shared_dir)
        self.db = Database(self.folder, private)
        self.quotas = Quotas(self.folder, quotas)
        self.user = user or identity.current_user()
        self.host = identity.hostname()
        self.pid = os.getpid()
        self.started = identity.started_at(self.pid) or time.time()
        self.reclaim()

    # -- plumbing ------------------------------------------------------------------------
    def _me(self) -> tuple[str, int, float, str]:
        """This owner's entries: one process, and within it one user (the box service holds several)."""
        return self.host, self.pid, self.started, self.user

    def _do(self, fn: Callable[[sqlite3.Connection], T], write: bool = True) -> T:
        """Run ``fn`` in a transaction; a corrupted file is recreated (with a warning) and ``fn`` retried once."""
        for retry in (False, True):
            try:
                if write:
                    with self.db.transaction() as con:
                        return fn(con)
                with self.db.connect() as con:
                    return fn(con)
            except sqlite3.DatabaseError as exc:
                if is_corrupt(exc) and not retry:
                    self.db.recreate(str(exc))
                    with self.db.connect() as con:
                        con.execute("PRAGMA journal_mode=WAL")
                        con.executescript(SCHEMA)
                    continue
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise XGenError("the box registry stayed locked for 30 s",
                                    "another Jupyter server holds it; try again") from None
                raise XGenError(f"the box registry {self.db.path} failed: {exc}") from None
        raise AssertionError("unreachable")

    def _row(self, con: sqlite3.Connection, name: str) -> int | None:
        r = con.execute("SELECT id FROM servers WHERE host=? AND owner_pid=? AND owner_started=? AND owner=?"
                        " AND name=?",
                        (*self._me(), name)).fetchone()
        return int(r[0]) if r else None

    # -- reservations --------------------------------------------------------------------
    def reserve(self, name: str, model: str, backend: str, claims: list[Claim], force: bool = False) -> None:
        """Record ``name``'s claims, or raise CapacityRefused / QuotaExceeded naming who holds what.

        Replaces this server's earlier reservation (a fallback or a restart plans anew).
        ``force`` skips the checks (re-registering a running engine after the file was recreated).
        """

        def op(con: sqlite3.Connection) -> None:
            self._reclaim(con)
            me = self._row(con, name)
            if not force:
                self._check_quota(con, me, claims)
                for c in claims:
                    if c.bytes > 0:
                        self._check_capacity(con, me, c)
            now = time.time()
            if me is None:
                cur = con.execute(
                    "INSERT INTO servers (host, owner, owner_pid, owner_started, name, model, backend, state,"
                    " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (self.host, self.user, self.pid, self.started, name, model, backend, "planned", now, now))
                me = int(cur.lastrowid or 0)
            else:
                con.execute("UPDATE servers SET model=?, backend=?, state='planned', engine_pid=NULL, endpoint=NULL,"
                            " updated_at=? WHERE id=?", (model, backend, now, me))
                con.execute("DELETE FROM reservations WHERE server_id=?", (me,))
            con.executemany("INSERT INTO reservations (server_id, device, label, kind, bytes) VALUES (?,?,?,?,?)",
                            [(me, c.device, c.label, c.kind, c.bytes) for c in claims if c.bytes > 0])

        self._do(op)

    def _check_capacity(self, con: sqlite3.Connection, me: int | None, c: Claim) -> None:
        rows = con.execute(
            "SELECT s.owner, s.name, s.state, r.bytes FROM reservations r JOIN servers s ON s.id = r.server_id"
            " WHERE r.device=? AND s.id IS NOT ? ORDER BY r.bytes DESC", (c.device, me)).fetchall()
        held = sum(r[3] for r in rows)
        held_ready = sum(r[3] for r in rows if r[2] == "ready")
        usable = c.total - c.margin
        taken = committed(held, held_ready, c.used)
        if taken + c.bytes <= usable:
            return
        holders = ", ".join(f"{o}/{n} {gib(b)} ({s})" for o, n, s, b in rows[:8]) or "nobody"
        if len(rows) > 8:
            holders += f" and {len(rows) - 8} more"
        outside = max(0, c.used - held_ready)
        refused = CapacityRefused(
            f"{c.label}: this load needs {gib(c.bytes)} but only {gib(max(0, usable - taken))} of "
            f"{gib(usable)} is left box-wide (after a {gib(c.margin)} margin). Reserved: {holders}; "
            f"used outside xgen: {gib(outside)}",
            "wait, unload a server you do not need, ask its owner, or ask for less (smaller n_ctx, fewer GPU layers)",
        )
        refused.device = c.device
        raise refused

    def _check_quota(self, con: sqlite3.Connection, me: int | None, claims: list[Claim]) -> None:
        q: Quota = self.quotas.for_user(self.user)
        if q.max_servers is None and q.gpu_bytes is None and q.host_bytes is None:
            return
        mine = con.execute("SELECT name FROM servers WHERE owner=? AND id IS NOT ?", (self.user, me)).fetchall()
        if q.max_servers is not None and len(mine) + 1 > q.max_servers:
            names = ", ".join(r[0] for r in mine)
            raise QuotaExceeded(f"{self.user} may run {q.max_servers} server(s) on this box and has {len(mine)}"
                                f" ({names})", "unload one first (the quota is set by the box's administrator)")
        for kind, limit in (("gpu", q.gpu_bytes), ("host", q.host_bytes)):
            if limit is None:
                continue
            held = con.execute(
                "SELECT coalesce(sum(r.bytes), 0) FROM reservations r JOIN servers s ON s.id = r.server_id"
                " WHERE s.owner=? AND r.kind=? AND s.id IS NOT ?", (self.user, kind, me)).fetchone()[0]
            new = sum(c.bytes for c in claims if c.kind == kind)
            if held + new > limit:
                raise QuotaExceeded(
                    f"{self.user}'s {kind.upper()} memory quota is {gib(limit)}: {gib(held)} reserved, "
                    f"this load needs {gib(new)}", "unload a server or load with less memory")

    def update(self, name: str, state: str, engine_pid: int | None = None, endpoint: str | None = None) -> bool:
        """The server's state (and engine) changed; False when it has no entry (the file was recreated)."""

        def op(con: sqlite3.Connection) -> bool:
            started = identity.started_at(engine_pid) if engine_pid else None
            cur = con.execute(
                "UPDATE servers SET state=?, engine_pid=?, engine_started=?, endpoint=?, updated_at=?"
                " WHERE host=? AND owner_pid=? AND owner_started=? AND owner=? AND name=?",
                (state, engine_pid, started, endpoint, time.time(), *self._me(), name))
            return cur.rowcount > 0

        return self._do(op)

    def release(self, name: str) -> str | None:
        """Drop the server's entry, reservations and shares; returns its share key file, if any."""

        def op(con: sqlite3.Connection) -> str | None:
            r = con.execute("SELECT id, key_file FROM servers WHERE host=? AND owner_pid=? AND owner_started=?"
                            " AND owner=? AND name=?", (*self._me(), name)).fetchone()
            if r is None:
                return None
            con.execute("DELETE FROM servers WHERE id=?", (r[0],))
            return str(r[1]) if r[1] else None

        key_file = self._do(op)
        if key_file:
            _unlink(key_file)
        return key_file

    def set_shares(self, name: str, grantees: list[str]) -> bool:
        """Record who may use ``name`` (the box service keeps the key itself: no key file). False: no entry."""

        def op(con: sqlite3.Connection) -> bool:
            me = self._row(con, name)
            if me is None:
                return False
            con.execute("DELETE FROM shares WHERE server_id=?", (me,))
            con.executemany("INSERT INTO shares (server_id, grantee) VALUES (?,?)", [(me, g) for g in grantees])
            return True

        return self._do(op)

    def release_all(self) -> None:
        self._do(lambda con: con.execute("DELETE FROM servers WHERE host=? AND owner_pid=? AND owner_started=?"
                                         " AND owner=?", self._me()))

    # -- dead owners ---------------------------------------------------------------------
    def reclaim(self) -> list[str]:
        """Remove entries of Jupyter servers on this host that are gone; kill engines they left."""
        return self._do(self._reclaim)

    def _reclaim(self, con: sqlite3.Connection) -> list[str]:
        rows = con.execute("SELECT id, owner, name, owner_pid, owner_started, engine_pid, engine_started, key_file"
                           " FROM servers WHERE host=?", (self.host,)).fetchall()
        gone: list[str] = []
        checked: dict[tuple[int, float], bool] = {}
        for sid, owner, name, pid, started, epid, estarted, key_file in rows:
            key = (pid, started)
            if key not in checked:
                checked[key] = identity.alive(pid, started)
            if checked[key]:
                continue
            if epid and identity.alive(epid, estarted):
                _kill_orphan(epid)
            con.execute("DELETE FROM servers WHERE id=?", (sid,))
            if key_file:
                _unlink(key_file)
            gone.append(f"{owner}/{name}")
        if gone:
            log.warning("xgen: reclaimed %d registry entr%s of Jupyter servers that are gone: %s",
                        len(gone), "y" if len(gone) == 1 else "ies", ", ".join(gone))
        return gone

    # -- views ---------------------------------------------------------------------------
    def held(self, exclude: str | None = None) -> dict[str, tuple[int, int]]:
        """Per device: (bytes reserved, bytes reserved by ready engines), leaving out our ``exclude``."""

        def op(con: sqlite3.Connection) -> dict[str, tuple[int, int]]:
            me = self._row(con, exclude) if exclude else None
            rows = con.execute(
                "SELECT r.device, sum(r.bytes), sum(CASE WHEN s.state='ready' THEN r.bytes ELSE 0 END)"
                " FROM reservations r JOIN servers s ON s.id = r.server_id WHERE s.id IS NOT ? GROUP BY r.device",
                (me,)).fetchall()
            return {d: (int(h), int(hr)) for d, h, hr in rows}

        return self._do(op, write=False)

    def listing(self) -> list[dict[str, Any]]:
        """Everyone's servers: owner, model, devices, memory, state. No keys, no logs, no paths of others."""

        def op(con: sqlite3.Connection) -> list[dict[str, Any]]:
            servers = con.execute("SELECT id, host, owner, name, model, backend, state, created_at, updated_at,"
                                  " owner_pid, owner_started FROM servers ORDER BY created_at").fetchall()
            res = con.execute("SELECT server_id, device, label, kind, bytes FROM reservations").fetchall()
            shares = con.execute("SELECT server_id, grantee FROM shares").fetchall()
            out = []
            for sid, host, owner, name, model, backend, state, created, updated, pid, started in servers:
                mine = [r for r in res if r[0] == sid]
                out.append({
                    "owner": owner, "name": name, "host": host, "model": model, "backend": backend, "state": state,
                    "created_at": created, "updated_at": updated,
                    "devices": [{"device": d, "label": lab, "kind": k, "bytes": b} for _, d, lab, k, b in mine],
                    "gpu_bytes": sum(r[4] for r in mine if r[3] == "gpu"),
                    "host_bytes": sum(r[4] for r in mine if r[3] == "host"),
                    "shared_with": sorted(g for s, g in shares if s == sid),
                    "mine": (host, pid, started, owner) == self._me(),
                })
            return out

        return self._do(op, write=False)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # another user's key file in a sticky folder: useless once its engine is gone


def _kill_orphan(pid: int) -> None:
    """An engine whose Jupyter server died without taking it along (it should not happen: PDEATHSIG)."""
    try:
        if psutil.Process(pid).uids().real != os.getuid():
            return  # someone else's: only their next start (or root) can stop it
        os.killpg(pid, signal.SIGKILL)  # engines lead their own process group
        log.warning("xgen: killed engine %d left behind by a dead Jupyter server", pid)
    except (psutil.Error, ProcessLookupError, PermissionError):
        pass
