"""A load progress bar: an ipywidgets bar in a notebook kernel, a text bar in a terminal."""

from __future__ import annotations

import sys
from typing import Any

# Share of the bar each state reaches before the engine's own loading progress fills the rest.
_STATE_BASE = {"planned": 0.0, "starting": 0.05, "loading": 0.1, "ready": 1.0}


def fraction(server: dict[str, Any]) -> float:
    state = server.get("state", "planned")
    base = _STATE_BASE.get(state, 1.0)
    if state == "loading" and server.get("progress") is not None:
        return base + (1.0 - base) * float(server["progress"])
    return base


def label(server: dict[str, Any]) -> str:
    msg = server.get("progress_message") or ""
    return f"{server['name']}: {server.get('state')}" + (
        f" - {msg}" if msg and msg != server.get("state") else ""
    )


def in_notebook_kernel() -> bool:
    """True in an ipykernel (widgets can render there); False in terminal IPython or a script."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


class LoadProgress:
    def __init__(self, backend_name: str = "", widgets: bool | None = None) -> None:
        self.widgets = in_notebook_kernel() if widgets is None else widgets
        self._last = ""
        if self.widgets:
            import ipywidgets as w
            from IPython.display import display

            self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="loading", bar_style="info")
            self.text = w.Label(value="")
            self.box = w.HBox([self.bar, self.text])
            display(self.box)

    def update(self, server: dict[str, Any]) -> None:
        value, text = fraction(server), label(server)
        if self.widgets:
            self.bar.value = value
            self.text.value = text
            return
        line = f"[{'#' * int(value * 30):<30}] {value * 100:3.0f}% {text}"[:110]
        if line != self._last:
            sys.stdout.write("\r" + line.ljust(len(self._last)))
            sys.stdout.flush()
            self._last = line

    def close(self, server: dict[str, Any]) -> None:
        self.update(server)
        ok = server.get("state") == "ready"
        if self.widgets:
            self.bar.bar_style = "success" if ok else "danger"
            self.bar.description = server.get("state", "")
        elif self._last:
            sys.stdout.write("\n")
            sys.stdout.flush()
