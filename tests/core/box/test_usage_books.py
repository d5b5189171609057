"""The usage books in the box registry: additions from several processes at once are all kept, the rows
survive reopening the file, memory-seconds are metered from state events, bad counts are refused."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from xgen_jupyter.core.box.db import Database
from xgen_jupyter.core.box.registry import BoxRegistry
from xgen_jupyter.core.box.usage_books import Entry, MemoryMeter, UsageBooks, check_tokens
from xgen_jupyter.core.errors import RequestError
from xgen_jupyter.core.process.events import Event

WRITER = """
import sys
from pathlib import Path
from xgen_jupyter.core.box.db import Database
from xgen_jupyter.core.box.usage_books import Entry, UsageBooks
books = UsageBooks(Database(Path(sys.argv[1])))
for i in range(200):
    books.add([Entry(sys.argv[2], "chat", 1, 10, 3), Entry(sys.argv[2], "embed", 1, 7, 0)])
"""


def test_concurrent_writers_lose_nothing_and_rows_survive_reopening(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    Database(shared)  # the file exists before the writers race
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(shared), user], cwd=REPO)
             for user in ("alice", "alice", "bob")]
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    # A new process's view: a registry opened afresh on the same folder.
    rows = {(r.user, r.model): r for r in UsageBooks(BoxRegistry(shared, user="carol").db).rows()}
    assert set(rows) == {("alice", "chat"), ("alice", "embed"), ("bob", "chat"), ("bob", "embed")}
    chat = rows[("alice", "chat")]
    assert (chat.requests, chat.prompt_tokens, chat.completion_tokens) == (400, 4000, 1200)
    assert (rows[("bob", "embed")].requests, rows[("bob", "embed")].prompt_tokens) == (200, 1400)
    assert [r.model for r in UsageBooks(Database(shared)).rows("bob")] == ["chat", "embed"]


def test_meter_books_planned_bytes_times_seconds_ready(tmp_path: Path) -> None:
    books = UsageBooks(Database(tmp_path / "shared"))
    meter = MemoryMeter(lambda: books, lambda: "alice")
    plan = {"memory": {"gpu_total": 1000, "host_total": 10}}
    meter.on_event(Event("state", "chat", {"state": "loading", "plan": plan}))
    t0 = time.time()
    meter.on_event(Event("state", "chat", {"state": "ready", "plan": plan, "ready_at": t0}))
    time.sleep(0.2)
    meter.checkpoint()
    (first,) = books.rows("alice")
    assert first.model == "chat" and first.requests == 0
    assert 1000 * 0.2 <= first.gpu_byte_seconds <= 1000 * (time.time() - t0)
    assert first.host_byte_seconds == pytest.approx(first.gpu_byte_seconds / 100)
    time.sleep(0.1)
    meter.on_event(Event("state", "chat", {"state": "stopping"}))
    stopped = books.rows("alice")[0].gpu_byte_seconds
    assert 1000 * 0.3 <= stopped <= 1000 * (time.time() - t0)
    time.sleep(0.1)
    meter.checkpoint()
    assert books.rows("alice")[0].gpu_byte_seconds == stopped  # no longer held: no longer counted
    # The server's owner (the registry's user that admitted it) is credited, not the default.
    meter.on_event(Event("state", "other", {"state": "ready", "plan": plan, "owner": "bob"}))
    time.sleep(0.05)
    meter.on_event(Event("state", "other", {"state": "crashed"}))
    assert [r.model for r in books.rows("bob")] == ["other"]


def test_bad_counts_are_refused_with_the_number_named(tmp_path: Path) -> None:
    assert check_tokens(1, 0, 5) == (1, 0, 5)
    for bad in ((-1, 0, 0), (1, "3", 0), (1, 0, 10**12), (True, 0, 0)):
        with pytest.raises(RequestError) as err:
            check_tokens(*bad)
        assert "must be a whole number" in str(err.value)
    books = UsageBooks(Database(tmp_path / "shared"))
    books.add([Entry("alice", "chat")])  # nothing to add: no row appears
    assert books.rows() == []
