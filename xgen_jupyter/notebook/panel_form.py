"""The panel's load form: a model picker (from the server's model list), backend, context size, and
under it a preview of the plan (panel_preview.py), re-asked when the fields have been still for
``PREVIEW_DEBOUNCE`` seconds."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..core.adapters.registry import backend_ids
from .panel_preview import PlanPreview

PREVIEW_DEBOUNCE = 0.4


class LoadForm:
    def __init__(
        self,
        on_load: Callable[[dict[str, Any]], None],
        on_preview: Callable[[dict[str, Any]], None] | None = None,
        debounce: float = PREVIEW_DEBOUNCE,
    ) -> None:
        self.on_load = on_load
        self.on_preview = on_preview
        self.debounce = debounce
        self.preview = PlanPreview()
        self._timer: threading.Timer | None = None
        self._timer_lock = threading.Lock()
        self.model = w.Dropdown(options=["default"], value="default", description="model")
        self.name = w.Text(value="", placeholder="(from the model)", description="name")
        self.backend = w.Dropdown(options=["auto", *backend_ids()], value="auto", description="backend")
        self.n_ctx = w.IntText(value=0, description="context", tooltip="0: the planner decides")
        self.embedding = w.Checkbox(value=False, description="embedding server", indent=False)
        self.load_button = w.Button(description="load", button_style="primary")
        self.status = w.Label(value="")
        self.load_button.on_click(lambda _: self.submit())
        self.widget = w.VBox([
            w.HTML("<b>Load a model</b>"),
            w.HBox([self.model, self.name]),
            w.HBox([self.backend, self.n_ctx, self.embedding]),
            self.preview.widget,
            w.HBox([self.load_button, self.status]),
        ])  # fmt: skip
        for field in (self.model, self.name, self.backend, self.n_ctx, self.embedding):
            field.observe(lambda _: self.schedule_preview(), names="value")

    def schedule_preview(self) -> None:
        """Ask for the plan once the fields have been still for ``debounce`` s (a timer thread)."""
        if self.on_preview is None:
            return
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.debounce, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        if self.on_preview is not None:
            self.on_preview(self.request())

    def close(self) -> None:
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()
            self.on_preview = None

    def set_models(self, models: list[dict[str, Any]]) -> None:
        names = [m["name"] for m in models] or ["default"]
        current = self.model.value
        self.model.options = names
        self.model.value = current if current in names else names[0]

    def set_backends(self, backends: dict[str, dict[str, Any]]) -> None:
        """Only installed backends can be picked; ``auto`` lets the planner choose."""
        available = [b for b, info in backends.items() if info.get("available")]
        current = self.backend.value
        self.backend.options = ["auto", *available]
        self.backend.value = current if current in self.backend.options else "auto"

    def request(self) -> dict[str, Any]:
        req: dict[str, Any] = {"model": self.model.value, "backend": self.backend.value}
        if self.name.value.strip():
            req["name"] = self.name.value.strip()
        if self.n_ctx.value:
            req["n_ctx"] = int(self.n_ctx.value)
        if self.embedding.value:
            req["server_type"] = "embedding"
        return req

    def submit(self) -> None:
        self.on_load(self.request())
