"""The panel's "Usage" section: the box's usage books (``GET xgen/api/usage``), yours or everyone's.

Requests, tokens in/out and memory held over time per model (and user, for the whole box). Refreshed
with the box listing (panel.py) and when the scope changes.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as w

from ..core.errors import XGenError
from .usage import GIB

HEADER = ("model", "requests", "tokens in/out", "GPU GiB·s", "host GiB·s")


def usage_html(rows: list[dict[str, Any]], box: bool) -> str:
    """The rows as a small HTML table (with a user column for the whole box)."""
    if not rows:
        return "<i>nothing booked on this box yet</i>" if box else "<i>nothing booked for you yet</i>"
    head = (("user",) if box else ()) + HEADER

    def cells(r: dict[str, Any]) -> tuple[str, ...]:
        who = (str(r["user"]),) if box else ()
        return (*who, str(r["model"]), str(r["requests"]), f"{r['prompt_tokens']}/{r['completion_tokens']}",
                f"{r['gpu_byte_seconds'] / GIB:.1f}", f"{r['host_byte_seconds'] / GIB:.1f}")

    def tr(cols: tuple[str, ...], tag: str = "td") -> str:
        return "<tr>" + "".join(f"<{tag} style='padding:0 8px 0 0'>{html.escape(c)}</{tag}>" for c in cols) + "</tr>"

    return "<table>" + tr(head, "th") + "".join(tr(cells(r)) for r in rows) + "</table>"


class UsageView:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.rows: list[dict[str, Any]] = []
        self.scope = w.ToggleButtons(options=[("Mine", "mine"), ("Whole box", "box")], value="mine",
                                     style={"button_width": "90px"})
        self.table = w.HTML(value="<i>waiting for the usage books ...</i>")
        self.widget = w.VBox([w.HTML("<b>Usage</b>"), self.scope, self.table])
        self._lock = threading.Lock()
        self.scope.observe(lambda _c: threading.Thread(target=self.refresh, name="xgen-panel-usage",
                                                       daemon=True).start(), names="value")

    def refresh(self) -> None:
        """The books once, for the scope shown (blocking: a REST call)."""
        scope = self.scope.value
        try:
            rows = list(self.client.usage(scope))
        except XGenError as exc:
            self.table.value = f"<span style='color:var(--jp-error-color1)'>xgen: {html.escape(str(exc))}</span>"
            return
        with self._lock:
            if scope != self.scope.value:  # the scope changed meanwhile: its own refresh shows it
                return
            self.rows = rows
            self.table.value = usage_html(rows, scope == "box")
