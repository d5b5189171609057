"""The service's books, read as root straight from its registry: what is reserved vs what runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import pid_alive


def entries(state_dir: Path) -> list[tuple[str, str, str, int | None, int]]:
    """(owner, name, state, engine pid, reserved bytes) of every registry entry."""
    con = sqlite3.connect(state_dir / "registry" / "registry.db", timeout=30)
    try:
        return [(o, n, s, p, int(b)) for o, n, s, p, b in con.execute(
            "SELECT s.owner, s.name, s.state, s.engine_pid, coalesce(sum(r.bytes), 0) FROM servers s"
            " LEFT JOIN reservations r ON r.server_id = s.id GROUP BY s.id").fetchall()]
    finally:
        con.close()


def balance(state_dir: Path) -> tuple[int, int]:
    """(entries holding a reservation, of them with a live engine): equal when the books balance."""
    rows = [e for e in entries(state_dir) if e[4] > 0]
    return len(rows), sum(1 for e in rows if e[3] and pid_alive(e[3]))
