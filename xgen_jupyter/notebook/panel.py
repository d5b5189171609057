"""``%xgen panel``: GPUs, servers, a load form and a live log, fed by the extension's events.

All state comes from the extension (its events websocket, or polling as a fallback); the
kernel detects nothing itself. The widget models are plain attributes so tests can read them:
``panel.rows[name].state.value``, ``panel.servers_box.children``, ``panel.gpus.rows``,
``panel.box_rows`` (everyone's servers on the box, refreshed on state events and every
``BOX_PERIOD`` seconds), ``panel.usage.rows`` (the usage books, refreshed with it).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as w

from ..core.errors import XGenError
from .client_api import Message, XGenClient
from .current import get_client
from .panel_box import BoxRow, BoxView
from .panel_form import LoadForm
from .panel_gpus import GpuTable
from .panel_logs import LogView
from .panel_servers import ServerRow, ServersView
from .panel_usage import UsageView

BOX_PERIOD = 10.0  # other users' servers send us no events: poll the box listing this often


class XGenPanel:
    def __init__(self, client: XGenClient | None = None, interval: float = 2.0, live: bool = True) -> None:
        self.client = client or get_client()
        self.gpus = GpuTable()
        self.servers = ServersView(on_unload=self.unload, on_select=self.show_logs)
        self.box = BoxView()
        self.usage = UsageView(self.client)  # the box's usage books, refreshed with the box listing
        self.form = LoadForm(on_load=self.load, on_preview=self.preview_plan)
        self.logs = LogView(self.client)
        self.message = w.Label(value="")
        where = "in this kernel" if self.client.mode == "local" else f"from {self.client.where}"
        self.widget = w.VBox([
            w.HTML(f"<h4 style='margin:2px'>xgen {where}</h4>"),
            self.gpus.widget, self.servers.widget, self.box.widget, self.usage.widget, self.form.widget, self.message,
            self.logs.widget,
        ])  # fmt: skip
        self.events_seen = 0
        self.polls = 0  # refreshes made by polling because no events came
        self._last_event = time.monotonic()
        self._stop_events: Any = None
        self._closed = threading.Event()
        self._box_wake = threading.Event()  # a state event: refresh the box listing now
        self._preview_seq = 0
        self._preview_lock = threading.Lock()
        self._fill_form()
        if live:
            self._stop_events = self.client.events(self.apply, interval)
            threading.Thread(
                target=self._watchdog, args=(interval,), name="xgen-panel-poll", daemon=True
            ).start()
            threading.Thread(target=self._box_loop, name="xgen-panel-box", daemon=True).start()

    # Shortcuts for readers and tests.
    @property
    def rows(self) -> dict[str, ServerRow]:
        return self.servers.rows

    @property
    def servers_box(self) -> w.VBox:
        return self.servers.servers_box

    @property
    def box_rows(self) -> list[BoxRow]:
        return self.box.rows

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _fill_form(self) -> None:
        try:
            self.form.set_models(self.client.models())
            self.form.set_backends(self.client.backends())
        except XGenError as exc:
            self.message.value = f"xgen: {exc}"
        self.form.schedule_preview()

    def preview_plan(self, request: dict[str, Any]) -> None:
        """The plan of ``request`` under the form (the form's timer thread); an answer that a newer
        request overtook is dropped."""
        with self._preview_lock:
            self._preview_seq += 1
            seq = self._preview_seq
        try:
            plan: Message | None = self.client.plan(request)
            error = ""
        except XGenError as exc:
            plan, error = None, str(exc)
        with self._preview_lock:
            if seq != self._preview_seq or self._closed.is_set():
                return
            if plan is not None:
                self.form.preview.set_plan(plan)
            else:
                self.form.preview.set_error(error)

    # -- events (on the events thread) ----------------------------------------------------
    def apply(self, msg: Message) -> None:
        """One events-websocket message → the widgets."""
        self.events_seen += 1
        self._last_event = time.monotonic()
        kind = msg.get("kind")
        if kind == "hello":
            self.gpus.set_hardware(msg.get("hardware") or {})
            self.form.preview.set_hardware(msg.get("hardware") or {})
            self.gpus.set_core(msg.get("xgen_core"))
            self.servers.set_core(msg.get("xgen_core"))
            self.servers.replace_all(msg.get("servers") or [])
        elif kind == "state":
            self.servers.apply(msg["data"])
            self._box_wake.set()
        elif kind == "progress":
            self.servers.progress(msg["server"], msg.get("data") or {})
        elif kind == "queue":
            self.servers.queue(msg["server"], msg.get("data") or {})
        elif kind == "gpus":
            self.gpus.set_gpus((msg.get("data") or {}).get("gpus") or [])
            self.form.preview.set_gpus((msg.get("data") or {}).get("gpus") or [])
        elif kind == "error":
            self.message.value = f"xgen: {msg.get('message')}"

    def _watchdog(self, interval: float) -> None:
        """Poll REST while the events websocket is silent (GPU samples come every ``interval`` s)."""
        period = max(interval, 1.0)
        silence = 3 * period + 5.0
        while not self._closed.wait(period):
            if time.monotonic() - self._last_event > silence:
                try:
                    self.refresh()
                    self.polls += 1
                except XGenError as exc:
                    self.message.value = f"xgen: {exc}"

    def _box_loop(self) -> None:
        """Refresh the box listing at start, on each state event and every BOX_PERIOD s (REST, off
        the events thread so a slow listing never holds up events)."""
        while not self._closed.is_set():
            self._box_wake.clear()
            self.refresh_box()
            self.usage.refresh()
            self._box_wake.wait(BOX_PERIOD)

    def refresh_box(self) -> None:
        """Everyone's servers on this box, once."""
        try:
            self.box.set_entries(self.client.box_servers())
        except XGenError as exc:
            self.box.set_error(f"xgen: {exc}")

    def refresh(self) -> None:
        """Poll once (the fallback when no events arrive): servers and hardware over REST."""
        hardware = self.client.hardware()
        self.gpus.set_hardware(hardware)
        self.form.preview.set_hardware(hardware)
        self.servers.replace_all(self.client.servers())

    # -- actions (buttons) -----------------------------------------------------------------
    def load(self, request: dict[str, Any]) -> None:
        try:
            server = self.client.load(request)
        except XGenError as exc:
            self.form.status.value = f"xgen: {exc}"
            return
        self.form.status.value = f"{server['name']}: {server['state']}"
        self.servers.apply(server)
        self.show_logs(server["name"])

    def unload(self, name: str) -> None:
        def run() -> None:  # unload waits for the engine to exit: keep the kernel free meanwhile
            try:
                self.servers.apply(self.client.unload(name))
                self.message.value = f"{name}: unloaded"
            except XGenError as exc:
                self.message.value = f"xgen: {exc}"

        threading.Thread(target=run, name=f"xgen-panel-unload-{name}", daemon=True).start()

    def show_logs(self, name: str) -> None:
        self.logs.select(name)

    def close(self) -> None:
        self._closed.set()
        self.form.close()
        self._box_wake.set()  # the box thread wakes, sees closed, and ends
        if self._stop_events is not None:
            self._stop_events()
            self._stop_events = None
        self.logs.close()
