"""Which idle servers eviction may unload, and in which order (core/scheduler/evict.py::victims):
the requester's own first, then least recently used; never busy, pinned, not ready or the one being
loaded; other users' only where the box policy allows, and only once idle that long."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from xgen_jupyter.core.scheduler.evict import reason_for, victims


def server(owner: str, name: str, idle_s: float, state: str = "ready", pinned: bool = False) -> Any:
    return SimpleNamespace(owner=owner, name=name, state=state, pinned=pinned, last_used=time.time() - idle_s,
                           ready_at=None)


def servers() -> list[Any]:
    """Made per test: idle times count from now (a list made at import ages while other tests run)."""
    return [
        server("bob", "b-old", 3600), server("alice", "a-new", 10), server("alice", "a-old", 900),
        server("carol", "c-mid", 600), server("bob", "b-busy", 7200), server("carol", "c-pinned", 9000, pinned=True),
        server("carol", "c-loading", 9000, state="loading"), server("alice", "gemma", 5000),
    ]


def names(order: list[Any]) -> list[str]:
    return [f"{s.owner}/{s.name}" for s in order]


def busy(s: Any) -> bool:
    return bool(s.name == "b-busy")


def test_own_first_then_least_recently_used_never_busy_pinned_loading_or_the_load_itself() -> None:
    assert names(victims(servers(), "alice", busy, "gemma", others_after=0.0)) == [
        "alice/a-old", "alice/a-new", "bob/b-old", "carol/c-mid"]


def test_other_users_servers_only_where_the_policy_allows() -> None:
    assert names(victims(servers(), "alice", busy, "gemma", others_after=None)) == ["alice/a-old", "alice/a-new"]
    # Idle at least 15 minutes: bob's hour-old one qualifies, carol's 10-minute one does not.
    assert names(victims(servers(), "alice", busy, "gemma", others_after=900.0)) == [
        "alice/a-old", "alice/a-new", "bob/b-old"]


def test_the_reason_names_who_and_how_long() -> None:
    assert reason_for(servers()[0], "alice", "gemma") == "unloaded for alice/gemma after 60 min idle"
