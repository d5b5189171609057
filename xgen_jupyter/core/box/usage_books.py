"""The box's usage books: per user and model, requests, prompt and completion tokens, and memory
held over time, in the registry's SQLite file (db.py's ``usage`` table), so they survive restarts.

Who writes what: token counts come from the proxy of the user's own Jupyter server after each
answer (with the box service, through its ``usage_add`` op, always to the peer's own row);
memory-seconds come from the side that owns the reservations (:class:`MemoryMeter`, in the core
that admitted the server: the box service, or the Jupyter server itself in-process), never from
a client. Every write is one ``BEGIN IMMEDIATE`` transaction of additions: nothing is ever
overwritten, so two writers cannot lose each other's counts.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import RequestError, XGenError
from ..process.events import Event
from . import identity
from .db import Database

log = logging.getLogger("xgen.box")

#: The numbers an addition may carry, in the table's column order.
COUNTS = ("requests", "prompt_tokens", "completion_tokens", "gpu_byte_seconds", "host_byte_seconds")
#: One answer cannot have used more (a bad client's numbers are refused, not booked).
MAX_TOKENS = 10**9


@dataclass
class Entry:
    """One addition to (user, model)'s row."""

    user: str
    model: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    gpu_byte_seconds: float = 0.0
    host_byte_seconds: float = 0.0


@dataclass
class UsageRow(Entry):
    """A (user, model) row as booked: the sums of its entries, and when it began and last grew."""

    first_at: float = 0.0
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_tokens(requests: Any, prompt: Any, completion: Any) -> tuple[int, int, int]:
    """A client's counts, or RequestError saying which number is wrong."""
    out = []
    for what, v, top in (("requests", requests, 10**6), ("prompt_tokens", prompt, MAX_TOKENS),
                         ("completion_tokens", completion, MAX_TOKENS)):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top:
            raise RequestError(f"{what} must be a whole number from 0 to {top}, not {v!r}")
        out.append(v)
    return out[0], out[1], out[2]


class UsageBooks:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, entries: Iterable[Entry]) -> None:
        """Add every entry in one transaction (all or nothing)."""
        now = time.time()
        rows = [(e.user, e.model, *(getattr(e, c) for c in COUNTS), now, now) for e in entries
                if any(getattr(e, c) for c in COUNTS)]
        if not rows:
            return
        sets = ", ".join(f"{c} = {c} + excluded.{c}" for c in COUNTS)
        sql = (f"INSERT INTO usage (user, model, {', '.join(COUNTS)}, first_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)"
               f" ON CONFLICT (user, model) DO UPDATE SET {sets}, updated_at = excluded.updated_at")
        with self._errors(), self.db.transaction() as con:
            con.executemany(sql, rows)

    def rows(self, user: str | None = None) -> list[UsageRow]:
        """Every row (the box), or ``user``'s alone, ordered by user and model."""
        cols = f"user, model, {', '.join(COUNTS)}, first_at, updated_at"
        with self._errors(), self.db.connect() as con:
            if user is None:
                found = con.execute(f"SELECT {cols} FROM usage ORDER BY user, model").fetchall()
            else:
                found = con.execute(f"SELECT {cols} FROM usage WHERE user=? ORDER BY model", (user,)).fetchall()
        return [UsageRow(*r) for r in found]

    def models(self, user: str) -> set[str]:
        """The models ``user`` has a row for."""
        with self._errors(), self.db.connect() as con:
            return {r[0] for r in con.execute("SELECT model FROM usage WHERE user=?", (user,)).fetchall()}

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite's failures (a lock held 30 s, a full disk) as one clear XGenError."""
        try:
            yield
        except sqlite3.Error as exc:
            raise XGenError(f"the usage books in {self.db.path} failed: {exc}",
                            "try again; see docs/shared-box.md") from None


class MemoryMeter:
    """Memory-seconds of one core's servers: planned GPU and host bytes times the seconds ready,
    credited to the server's owner and name. Written when a server leaves ready and at every
    ``checkpoint`` (the janitor's tick, and before each read), so a crash loses one interval at most."""

    def __init__(self, books: Callable[[], UsageBooks], default_owner: Callable[[], str]) -> None:
        self.books, self.default_owner = books, default_owner
        self._held: dict[str, tuple[str, int, int, float]] = {}  # server -> (owner, gpu, host, since)
        self._lock = threading.Lock()

    def on_event(self, event: Event) -> None:
        """Supervisor listener: memory is held from ready until the server leaves ready."""
        if event.kind != "state":
            return
        state, name, now = event.data.get("state"), event.server, time.time()
        if state == "ready":
            mem = (event.data.get("plan") or {}).get("memory") or {}
            owner = str(event.data.get("owner") or self.default_owner())
            since = min(now, float(event.data.get("ready_at") or now))
            with self._lock:
                if name in self._held:  # a repeated 'ready': keep counting from the first
                    return
                self._held[name] = (owner, int(mem.get("gpu_total") or 0), int(mem.get("host_total") or 0), since)
        elif state is not None:  # stopping, crashed, failed...: no longer held
            with self._lock:
                held = self._held.pop(name, None)
            if held is not None:
                self._write([_credit(name, held, now)])

    def checkpoint(self) -> None:
        """Credit every ready server up to now, and count on from now."""
        now = time.time()
        with self._lock:
            entries = [_credit(name, held, now) for name, held in self._held.items()]
            self._held = {n: (o, g, h, now) for n, (o, g, h, _s) in self._held.items()}
        self._write(entries)

    def _write(self, entries: list[Entry]) -> None:
        try:
            self.books().add(entries)
        except XGenError as exc:  # counting must never take a server down
            log.warning("xgen: could not book memory-seconds: %s", exc)


def _credit(name: str, held: tuple[str, int, int, float], now: float) -> Entry:
    owner, gpu, host, since = held
    secs = max(0.0, now - since)
    return Entry(owner, name, gpu_byte_seconds=gpu * secs, host_byte_seconds=host * secs)


class Ledger:
    """A core's books: in the box registry it holds (the box service's, or the shared folder's), else
    in a private file in its state folder; plus the meter of its servers' memory."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self._books: tuple[Database, UsageBooks] | None = None
        self._lock = threading.Lock()
        self.meter = MemoryMeter(self.books, self.owner)

    def owner(self) -> str:
        """Whose servers this core runs (memory-seconds of a server without an owner go to them)."""
        registry = getattr(self.core, "registry", None)
        return str(registry.user if registry is not None else self.core.config.user or identity.current_user())

    def books(self) -> UsageBooks:
        registry = getattr(self.core, "registry", None)
        with self._lock:
            if registry is not None and (self._books is None or self._books[0] is not registry.db):
                self._books = (registry.db, UsageBooks(registry.db))
            elif self._books is None:
                db = Database(Path(self.core.config.state_dir) / "usage", private=True)
                self._books = (db, UsageBooks(db))
            return self._books[1]

    def record(self, user: str, model: str, requests: int, prompt_tokens: int, completion_tokens: int) -> None:
        self.books().add([Entry(user, model, requests, prompt_tokens, completion_tokens)])

    def rows(self, user: str | None = None) -> list[UsageRow]:
        self.meter.checkpoint()
        return self.books().rows(user)
