"""A server row ignores a snapshot older than the one it shows (no Jupyter needed)."""

from __future__ import annotations

from xgen_jupyter.notebook.panel_servers import ServersView


def test_a_late_load_reply_does_not_undo_the_ready_event() -> None:
    view = ServersView(on_unload=lambda _: None, on_select=lambda _: None)
    base = {"name": "m", "model": "default", "created_at": 10.0}
    view.apply({**base, "state": "ready", "revision": 3})
    view.apply({**base, "state": "loading", "revision": 2})  # the REST reply, sent before "ready"
    assert view.rows["m"].state.value == "ready"
    view.apply({**base, "state": "stopping", "revision": 4})
    assert view.rows["m"].state.value == "stopping"
    # the same name loaded again is a new server: its revisions start over
    view.apply({**base, "created_at": 11.0, "state": "planned", "revision": 0})
    assert view.rows["m"].state.value == "planned"
