"""The ipywidgets panel, driven in this process against the real Jupyter server: its widget
models hold the live data from the extension's events websocket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import xgen_jupyter
from tests.hardware.hwfixtures import FIXTURES, NVMLReplay
from xgen_jupyter.core.hardware.nvml import NVMLDetector
from xgen_jupyter.notebook.panel import XGenPanel

pytestmark = pytest.mark.engine


def wait_for(cond: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or cond}")


@pytest.fixture()
def panel(remote: Any) -> Iterator[XGenPanel]:
    p = XGenPanel(remote, interval=0.5)
    try:
        yield p
    finally:
        p.close()
        for s in remote.servers():
            if s["state"] not in ("stopped", "failed", "crashed"):
                remote.unload(s["name"])


def test_rows_appear_and_turn_ready_from_events(panel: XGenPanel, remote: Any) -> None:
    wait_for(lambda: panel.events_seen, 30, "the hello message")
    assert panel.gpus.cpu.value.startswith("CPU: ")  # hardware from the server's hello
    assert "default" in panel.form.model.options  # model picker from xgen/api/models
    assert "auto" in panel.form.backend.options
    assert "pl" not in panel.rows

    # Loaded behind the panel's back (REST, as another notebook would): only events can tell it.
    remote.load({"model": "default", "name": "pl"})
    row = wait_for(lambda: panel.rows.get("pl"), 30, "a row for 'pl'")
    assert row.widget in panel.servers_box.children
    seen: list[str] = []

    def ready() -> bool:
        if not seen or seen[-1] != row.state.value:
            seen.append(row.state.value)
        return row.state.value == "ready"

    wait_for(ready, 120, "state ready")
    assert seen[0] in ("planned", "starting", "loading"), seen  # it changed, it did not start out ready
    assert row.endpoint.value.startswith("http://127.0.0.1:")
    assert row.backend.value == remote.server("pl")["backend"]
    assert "[" in row.reasons.value  # the plan's reasons, e.g. [cpu-parallel-1]
    assert row.progress.value == 1.0

    # The unload button: state goes to stopped through the events, the button disables.
    row.unload_button.click()
    wait_for(lambda: row.state.value == "stopped", 60, "state stopped")
    assert row.unload_button.disabled


def test_load_form_and_live_log(panel: XGenPanel) -> None:
    wait_for(lambda: panel.events_seen, 30, "the hello message")
    panel.form.model.value = "default"
    panel.form.name.value = "form"
    panel.form.n_ctx.value = 1024
    assert panel.form.request() == {"model": "default", "backend": "auto", "name": "form", "n_ctx": 1024}
    panel.form.load_button.click()
    row = wait_for(lambda: panel.rows.get("form"), 30, "a row for 'form'")
    wait_for(lambda: row.state.value == "ready", 120, "state ready")
    assert panel.logs.selected == "form"  # loading selects its log
    wait_for(lambda: panel.logs.received and panel.logs.text.value, 30, "the log history in the view")
    # live: a request through the proxy makes the engine log, and the view shows it
    time.sleep(1.0)
    before = panel.logs.received
    reply = xgen_jupyter.client("form", panel.backend).completions.create(
        model="form", prompt="Hi", max_tokens=2
    )
    assert reply.choices
    wait_for(lambda: panel.logs.received > before, 30, "a live log line after a request")


def test_bad_load_shows_in_the_form(panel: XGenPanel) -> None:
    panel.load({"model": "/no/such/file.gguf", "name": "bad"})
    assert panel.form.status.value.startswith("xgen: ") and "file.gguf" in panel.form.status.value
    assert "bad" not in panel.rows


def test_gpu_table_from_a_recorded_h100(remote: Any) -> None:
    """No GPU here: feed the table the GPU sample the NVML detector makes from a recorded H100."""
    gpus = [
        g.to_dict() for g in NVMLDetector(nvml=NVMLReplay(FIXTURES / "nvidia-h100.nvml.json")).detect().gpus
    ]
    p = XGenPanel(remote, live=False)
    p.apply({"kind": "gpus", "data": {"gpus": gpus, "time": 0}})
    (row,) = p.gpus.rows.values()
    assert "H100" in row.name.value
    assert row.kind.value == "discrete"
    assert "nvidia" in row.arch.value
    assert row.memory.value == "0.5 / 79.6 GiB"
    assert 0 < row.memory_bar.value < 0.01
    assert row.utilization.value == "0%"
    assert p.gpus.empty.value == ""
    p.apply({"kind": "gpus", "data": {"gpus": [], "time": 1}})
    assert not p.gpus.rows and "no GPU" in p.gpus.empty.value


class SilentEvents:
    """The real remote backend, but its events websocket never says anything (a proxy that drops it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def events(self, on_message: Any, interval: float = 2.0) -> Callable[[], None]:
        return lambda: None


def test_polls_rest_when_no_events_come(remote: Any) -> None:
    p = XGenPanel(SilentEvents(remote), interval=0.2)  # type: ignore[arg-type]
    try:
        remote.load({"model": "default", "name": "polled"})
        row = wait_for(lambda: p.rows.get("polled"), 30, "a row from polling")
        wait_for(lambda: row.state.value == "ready", 120, "state ready from polling")
        assert p.events_seen == 0 and p.polls >= 1
        assert p.gpus.cpu.value.startswith("CPU: ")
    finally:
        p.close()
        remote.unload("polled")
