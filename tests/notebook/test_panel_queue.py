"""The panel's queue line per server row, fed `queue` events as Scheduler._publish sends them
(core/scheduler/router.py: FairQueue.snapshot()), against the real Jupyter server's client."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from typing import Any

import pytest

from xgen_jupyter.notebook.panel import XGenPanel
from xgen_jupyter.notebook.panel_servers import queue_text, user_of

pytestmark = pytest.mark.engine

BOX = "box service at /run/xgen/box.sock, user alice"


def snapshot(queued: int, positions: dict[str, list[int]]) -> dict[str, Any]:
    return {"slots": 1, "in_flight": 1, "queued": queued, "limit": 64, "positions": positions}


def row_server(name: str) -> dict[str, Any]:
    return {"name": name, "model": "default", "server_type": "llm", "state": "ready",
            "backend": "llama-server-cpu", "endpoint": None, "reasons": []}


@pytest.fixture()
def panel(remote: Any) -> Iterator[XGenPanel]:
    p = XGenPanel(remote, live=False)
    try:
        yield p
    finally:
        p.close()


def test_queue_text() -> None:
    q = snapshot(3, {"alice": [1, 3], "bob": [2]})
    assert queue_text(q, "alice") == "3 queued (you: positions 1, 3)"
    assert queue_text(q, "bob") == "3 queued (you: position 2)"
    assert queue_text(q, "carol") == "3 queued"
    assert queue_text(snapshot(0, {}), "alice") == ""
    assert queue_text(None, "alice") == ""
    assert user_of(BOX) == "alice"
    assert user_of("in this Jupyter server") is None


def test_queue_events_update_the_row(panel: XGenPanel) -> None:
    panel.apply({"kind": "hello", "servers": [row_server("m"), row_server("n")], "hardware": {}, "xgen_core": BOX})
    panel.apply({"kind": "queue", "server": "m", "data": snapshot(3, {"alice": [2], "bob": [1, 3]})})
    assert panel.rows["m"].queue.value == "3 queued (you: position 2)"
    assert panel.rows["m"].queue in panel.rows["m"].widget.children[0].children
    assert panel.rows["n"].queue.value == ""
    panel.apply({"kind": "queue", "server": "m", "data": snapshot(1, {"bob": [1]})})
    assert panel.rows["m"].queue.value == "1 queued"
    # A state event after it keeps the queue it knows; a drained queue clears the line.
    panel.apply({"kind": "state", "server": "m", "data": {**row_server("m"), "state": "ready"}})
    assert panel.rows["m"].queue.value == "1 queued"
    panel.apply({"kind": "queue", "server": "m", "data": snapshot(0, {})})
    assert panel.rows["m"].queue.value == ""
    panel.apply({"kind": "queue", "server": "gone", "data": snapshot(2, {})})  # no row: ignored
    assert "gone" not in panel.rows


def test_in_process_user_is_this_user(panel: XGenPanel) -> None:
    panel.apply({"kind": "hello", "servers": [row_server("m")], "hardware": {}, "xgen_core": "in this Jupyter server"})
    panel.apply({"kind": "queue", "server": "m", "data": snapshot(2, {getpass.getuser(): [2], "bob": [1]})})
    assert panel.rows["m"].queue.value == "2 queued (you: position 2)"
