"""The panel's live log view of one selected server (history first, then new lines)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import ipywidgets as w

from .client_api import XGenClient


class LogView:
    def __init__(self, client: XGenClient, max_lines: int = 300) -> None:
        self.client = client
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.selected: str | None = None
        self.received = 0  # lines of the selected server seen so far (the view keeps the last max_lines)
        self.title = w.HTML("<b>Log</b> (press a server's <i>logs</i> button)")
        self.text = w.Textarea(value="", layout=w.Layout(width="100%", height="220px"), disabled=True)
        self.widget = w.VBox([self.title, self.text])
        self._stop: threading.Event | None = None
        self._lock = threading.Lock()

    def select(self, name: str) -> None:
        """Follow ``name``'s log on a daemon thread, replacing the one followed before."""
        self.close()
        stop = threading.Event()
        with self._lock:
            self._stop, self.selected = stop, name
            self.lines.clear()
            self.received = 0
            self.text.value = ""
        self.title.value = f"<b>Log of {name}</b>"

        def on_line(line: dict[str, Any]) -> None:
            with self._lock:
                if self._stop is not stop:  # a late line of the previous server
                    return
                self.lines.append(str(line.get("text", "")))
                self.received += 1
                self.text.value = "\n".join(self.lines)

        def run() -> None:
            try:
                self.client.follow_logs(name, on_line, stop, self.lines.maxlen or 300)
            except Exception as exc:  # shown in the view, never raised on a thread
                on_line({"text": f"[xgen] log stream ended: {exc}"})

        threading.Thread(target=run, name=f"xgen-panel-logs-{name}", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            if self._stop is not None:
                self._stop.set()
            self._stop = None
