"""The panel's server list: state, backend, endpoint, queue and reasons per server, with an unload button."""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..core.api import FINAL
from .progress import fraction

STATE_STYLE = {
    "ready": "success",
    "failed": "danger",
    "crashed": "danger",
    "stopped": "",
    "stopping": "warning",
}


def queue_text(queue: dict[str, Any] | None, user: str | None) -> str:
    """"n queued (you: position k)" from a FairQueue snapshot (1 = next); "" when nothing waits."""
    if not queue or not queue.get("queued"):
        return ""
    mine = (queue.get("positions") or {}).get(user, []) if user else []
    you = f" (you: position{'s' if len(mine) > 1 else ''} {', '.join(map(str, mine))})" if mine else ""
    return f"{queue['queued']} queued{you}"


def user_of(core: str | None) -> str | None:
    """The user a box service knows us as ("box service at <socket>, user <name>"), else None."""
    m = re.search(r", user (\S+)$", core or "")
    return m.group(1) if m and m.group(1) != "None" else None


def stale(new: dict[str, Any], shown: dict[str, Any]) -> bool:
    """True when ``new`` is an older snapshot of the server shown: a load's REST reply can arrive
    after the events socket already said "ready", and must not put the row back to "loading"."""
    if "revision" not in new or "revision" not in shown:
        return False
    key = (new.get("created_at") or 0, new["revision"])
    return key < (shown.get("created_at") or 0, shown["revision"])


class ServerRow:
    def __init__(
        self, server: dict[str, Any], on_unload: Callable[[str], None], on_select: Callable[[str], None]
    ):
        self.name = server["name"]
        self.title = w.HTML()
        self.state = w.Label()
        self.backend = w.Label()
        self.endpoint = w.Label()
        self.progress = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(width="120px"))
        self.reasons = w.HTML()
        self.queue = w.Label()  # the proxy's fair queue: requests waiting for this server's slots
        self.unload_button = w.Button(
            description="unload", button_style="warning", layout=w.Layout(width="80px")
        )
        self.logs_button = w.Button(description="logs", layout=w.Layout(width="60px"))
        self.unload_button.on_click(lambda _: on_unload(self.name))
        self.logs_button.on_click(lambda _: on_select(self.name))
        head = w.HBox([self.title, self.state, self.progress, self.backend, self.endpoint,
                       self.queue, self.logs_button, self.unload_button])  # fmt: skip
        self.widget = w.VBox([head, self.reasons], layout=w.Layout(border="1px solid #ddd", padding="2px"))
        self.data: dict[str, Any] = {}
        self.user: str | None = None
        self.update(server)

    def update(self, server: dict[str, Any]) -> None:
        if stale(server, self.data):
            return
        self.data = {**self.data, **server}
        s = self.data
        self.title.value = f"<b>{s['name']}</b>&nbsp;({s.get('model', '')}, {s.get('server_type', '')})"
        self.state.value = s.get("state", "")
        self.progress.value = fraction(s)
        self.progress.bar_style = STATE_STYLE.get(s.get("state", ""), "info")
        self.backend.value = s.get("backend", "")
        self.endpoint.value = s.get("endpoint") or ""
        self.queue.value = queue_text(s.get("queue"), self.user)
        err = (s.get("error") or {}).get("summary")
        items = [f"<li>[{r['rule']}] {r['effect']}: {r['why']}</li>" for r in s.get("reasons") or []]
        if err:
            items.insert(0, f"<li style='color:#b00'>error: {err}</li>")
        self.reasons.value = f"<ul style='margin:0'>{''.join(items)}</ul>" if items else ""
        self.unload_button.disabled = s.get("state") in FINAL | {"stopping"}

    def set_progress(self, progress: float | None, message: str) -> None:
        self.update({"progress": progress, "progress_message": message})


class ServersView:
    def __init__(self, on_unload: Callable[[str], None], on_select: Callable[[str], None]) -> None:
        self.on_unload, self.on_select = on_unload, on_select
        self.rows: dict[str, ServerRow] = {}
        self.user: str | None = getpass.getuser()  # who we are to the queues; a box service's hello says
        self.empty = w.Label(value="no servers loaded")
        self.servers_box = w.VBox([])
        self.widget = w.VBox([w.HTML("<b>Servers</b>"), self.empty, self.servers_box])

    def replace_all(self, servers: list[dict[str, Any]]) -> None:
        names = {s["name"] for s in servers}
        for name in set(self.rows) - names:
            del self.rows[name]
        for s in servers:
            self.apply(s, relayout=False)
        self._relayout()

    def apply(self, server: dict[str, Any], relayout: bool = True) -> None:
        row = self.rows.get(server["name"])
        if row is None:
            row = self.rows[server["name"]] = ServerRow(server, self.on_unload, self.on_select)
            row.user = self.user
            row.update({})
            relayout = True
        else:
            row.user = self.user
            row.update(server)
        if relayout:
            self._relayout()

    def progress(self, name: str, data: dict[str, Any]) -> None:
        if name in self.rows:
            self.rows[name].set_progress(data.get("progress"), data.get("message", ""))

    def set_core(self, core: str | None) -> None:
        self.user = user_of(core) or self.user

    def queue(self, name: str, snapshot: dict[str, Any]) -> None:
        if name in self.rows:
            self.rows[name].user = self.user
            self.rows[name].update({"queue": snapshot})

    def _relayout(self) -> None:
        self.servers_box.children = tuple(r.widget for r in self.rows.values())
        self.empty.value = "" if self.rows else "no servers loaded"
